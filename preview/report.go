package preview

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/workers"
)

// Examples is how many example mail ids a Report keeps per group.
const Examples = 5

// Report is the impact of a proposed rule change on the replayed mail.
type Report struct {
	// Flag is the flag whose rules are proposed.
	Flag string `json:"flag"`
	// Replayed is how many mails were evaluated under both rule sets.
	Replayed int `json:"replayed"`
	// Changed is how many of them would change decision.
	Changed int `json:"changed"`
	// Values has one entry per value the flag takes under the proposed
	// rules, sorted by value.
	Values []Value `json:"values"`
	// Transitions has one entry per change of decision (from, to), the
	// most frequent first.
	Transitions []Transition `json:"transitions"`
	// Skipped lists the mails that could not be replayed.
	Skipped []Skipped `json:"skipped,omitempty"`
}

// Value is what the proposed rules do to the mails that take one value.
type Value struct {
	// Value is the flag's proposed value.
	Value string `json:"value"`
	// Mails is how many replayed mails take it.
	Mails int `json:"mails"`
	// Changed is how many of them would change decision.
	Changed int `json:"changed"`
	// Examples are up to Examples ids of mails that would change.
	Examples []string `json:"examples,omitempty"`
}

// Transition counts the mails whose decision would go from From to To.
type Transition struct {
	From     string   `json:"from"`
	To       string   `json:"to"`
	Mails    int      `json:"mails"`
	Examples []string `json:"examples"`
}

// Run evaluates every mail under live and under live with flag's rules
// replaced by proposed, with no side effect, and reports what would
// change. A mail that does not evaluate (not RFC 5322, a DNS lookup that
// did not answer) under either rule set is Skipped with the reason. It
// fails for a context that ends.
func Run(ctx context.Context, pipe *workers.Pipeline, live *rules.Snapshot, flag string, proposed *rules.RuleSet, mails []Mail) (*Report, error) {
	next := live.With(flag, proposed)
	r := &Report{Flag: flag}
	values := map[string]*Value{}
	trans := map[[2]string]*Transition{}
	for _, m := range mails {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		before, err := pipe.Verdict(ctx, live, m.Envelope, m.Raw)
		if err == nil {
			var after workers.Verdict
			after, err = pipe.Verdict(ctx, next, m.Envelope, m.Raw)
			if err == nil {
				r.add(values, trans, m.Envelope.ID, before, after)
				continue
			}
		}
		if errors.Is(err, ctx.Err()) && ctx.Err() != nil {
			return nil, err
		}
		r.Skipped = append(r.Skipped, Skipped{ID: m.Envelope.ID, Reason: fmt.Sprintf("%v (%s)", err, workers.ClassOf(err))})
	}
	for _, v := range values {
		r.Values = append(r.Values, *v)
	}
	slices.SortFunc(r.Values, func(a, b Value) int { return strings.Compare(a.Value, b.Value) })
	for _, t := range trans {
		r.Transitions = append(r.Transitions, *t)
	}
	slices.SortFunc(r.Transitions, func(a, b Transition) int {
		if a.Mails != b.Mails {
			return b.Mails - a.Mails
		}
		return strings.Compare(a.From+"\x00"+a.To, b.From+"\x00"+b.To)
	})
	return r, nil
}

func (r *Report) add(values map[string]*Value, trans map[[2]string]*Transition, id string, before, after workers.Verdict) {
	r.Replayed++
	val := after.Value(r.Flag)
	v := values[val]
	if v == nil {
		v = &Value{Value: val}
		values[val] = v
	}
	v.Mails++
	if before.Decision == after.Decision {
		return
	}
	r.Changed++
	v.Changed++
	if len(v.Examples) < Examples {
		v.Examples = append(v.Examples, id)
	}
	k := [2]string{before.Decision, after.Decision}
	t := trans[k]
	if t == nil {
		t = &Transition{From: k[0], To: k[1]}
		trans[k] = t
	}
	t.Mails++
	if len(t.Examples) < Examples {
		t.Examples = append(t.Examples, id)
	}
}
