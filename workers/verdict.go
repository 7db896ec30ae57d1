package workers

import (
	"context"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/rules"
)

// Verdict is what a worker would do with one mail under a rule snapshot,
// decided with no side effect: the comparable result of a rule change.
type Verdict struct {
	// Decision says what becomes of the mail: "held" (mail.pause),
	// "rejected: REASON" (mail.reject), or the handler mail.handler
	// chooses, with the endpoint for the webhook ("webhook tickets") or
	// the service for the service handler ("service triage"), and
	// " (dry run)" when mail.dry_run is on. A shadow handler never
	// changes it.
	Decision string
	// Flags has every registered flag's decision, as Explain gives it.
	Flags []contracts.FlagDecision
}

// Value returns the value of flag in v ("" if it is not registered).
func (v Verdict) Value(flag string) string {
	for _, f := range v.Flags {
		if f.Flag == flag {
			return f.Value
		}
	}
	return ""
}

// handlerParameter is, for a handler, the flag whose value says where it
// acts: a change of it is a change of decision.
var handlerParameter = map[string]string{WebhookHandler: rules.FlagWebhookEndpoint, ServiceHandler: rules.FlagService}

// Verdict evaluates one mail against snap, as Explain does (no side
// effect; the same errors), and says what a worker would do with it.
func (p *Pipeline) Verdict(ctx context.Context, snap *rules.Snapshot, env contracts.Envelope, raw []byte) (Verdict, error) {
	e, err := p.Explain(ctx, snap, env, raw)
	if err != nil {
		return Verdict{}, err
	}
	v := Verdict{Flags: e.Flags}
	switch {
	case v.Value(rules.FlagPause) == "true":
		v.Decision = "held"
	case v.Value(rules.FlagReject) != "":
		v.Decision = "rejected: " + v.Value(rules.FlagReject)
	default:
		h := v.Value(rules.FlagHandler)
		v.Decision = h
		if f, ok := handlerParameter[h]; ok {
			v.Decision += " " + v.Value(f)
		}
		if v.Value(rules.FlagDryRun) == "true" {
			v.Decision += " (dry run)"
		}
	}
	return v, nil
}
