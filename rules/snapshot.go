package rules

import (
	"slices"
	"strconv"
)

// Snapshot is an immutable set of rule sets, one per flag. Each mail is
// evaluated against one Snapshot, so a rule change never applies to half
// a mail. A Snapshot is safe for concurrent use by many mails; a nil
// *Snapshot holds no rules, so every flag has its default.
type Snapshot struct {
	flags map[string]*flagRules
	nterm int // number of distinct memo slots
}

// flagRules is a flag's rules compiled against the snapshot's memo slots.
type flagRules struct {
	set   *RuleSet
	def   string
	rules []compiledRule // parallel to set.Rules
}

type compiledRule struct {
	rule  *Rule
	terms []*term
	slots []int32 // memo slot of each term
}

// NewSnapshot builds a Snapshot from rule sets keyed by flag name. Nil
// entries are skipped. The rule sets are shared, not copied; they must not
// be changed afterwards (Parse's results never are).
func NewSnapshot(sets map[string]*RuleSet) *Snapshot {
	s := &Snapshot{flags: make(map[string]*flagRules, len(sets))}
	slot := make(map[string]int32)
	for name, rs := range sets {
		if rs == nil {
			continue
		}
		fr := &flagRules{set: rs, rules: make([]compiledRule, len(rs.Rules))}
		if f, ok := lookup(name); ok {
			fr.def = f.Default
		}
		for i := range rs.Rules {
			r := &rs.Rules[i]
			cr := compiledRule{rule: r, terms: r.scope.terms, slots: make([]int32, len(r.scope.terms))}
			for j, t := range r.scope.terms {
				n, ok := slot[t.key]
				if !ok {
					n = int32(len(slot))
					slot[t.key] = n
				}
				cr.slots[j] = n
			}
			fr.rules[i] = cr
		}
		s.flags[name] = fr
	}
	s.nterm = len(slot)
	return s
}

// With returns a new Snapshot holding s's rule sets with flag's replaced
// by rs (removed when rs is nil): the rules as they would be after a
// change of one key, for a preview. s is not changed.
func (s *Snapshot) With(flag string, rs *RuleSet) *Snapshot {
	sets := map[string]*RuleSet{}
	for _, name := range s.Flags() {
		sets[name] = s.RuleSet(name)
	}
	sets[flag] = rs
	return NewSnapshot(sets)
}

// RuleSet returns the rule set of flag in the snapshot, nil if none.
func (s *Snapshot) RuleSet(flag string) *RuleSet {
	if s == nil {
		return nil
	}
	if fr := s.flags[flag]; fr != nil {
		return fr.set
	}
	return nil
}

// Flags returns the names of the flags that have rules, sorted.
func (s *Snapshot) Flags() []string {
	if s == nil {
		return nil
	}
	out := make([]string, 0, len(s.flags))
	for name := range s.flags {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// Decision is the value of one flag for one mail, and why.
type Decision struct {
	// Flag is the flag name.
	Flag string
	// Value is the matching rule's value, or the flag's registered
	// default when no rule matched ("" for an unknown flag).
	Value string
	// Rule is the rule that decided, nil when the default applied.
	Rule *Rule
	// Revision is the KV revision of the key that decided, 0 when the
	// default applied.
	Revision uint64
}

// Bool returns the value of a bool flag. Values are validated when parsed,
// so for a bool flag this is exact; any value that is not a bool literal
// (see ParseBool) reads as false.
func (d Decision) Bool() bool {
	b, _ := ParseBool(d.Value)
	return b
}

// Canonical returns the value in its one spelling: "true" or "false" for
// a bool flag, whatever literal the rule used ("on", "yes", "1"...); the
// value as it is for every other flag.
func (d Decision) Canonical() string {
	if f, ok := lookup(d.Flag); ok && f.Type == TypeBool {
		return strconv.FormatBool(d.Bool())
	}
	return d.Value
}

// Eval decides flag for the mail described by f: the rules of flag are
// tried from the highest priority down and the first whose scope matches
// decides; with no match, or no rules, the registered default applies.
// Term results are memoized in f, shared by all flags of s. Eval does not
// allocate, except once per Facts for its memo.
func (s *Snapshot) Eval(flag string, f *Facts) Decision {
	var fr *flagRules
	if s != nil {
		fr = s.flags[flag]
	}
	if fr == nil {
		d := Decision{Flag: flag}
		if def, ok := lookup(flag); ok {
			d.Value = def.Default
		}
		return d
	}
	memo := s.memo(f)
	for i := range fr.rules {
		cr := &fr.rules[i]
		if cr.match(f, memo) {
			return Decision{Flag: flag, Value: cr.rule.Value, Rule: cr.rule, Revision: fr.set.Revision}
		}
	}
	return Decision{Flag: flag, Value: fr.def}
}

// memo returns f's memo, (re)sized for s. A Facts evaluated against a
// second snapshot starts a fresh memo.
func (s *Snapshot) memo(f *Facts) []uint8 {
	if f.memoFor != s {
		f.memoFor = s
		if cap(f.memo) >= s.nterm {
			f.memo = f.memo[:s.nterm]
			clear(f.memo)
		} else {
			f.memo = make([]uint8, s.nterm)
		}
	}
	return f.memo
}

func (cr *compiledRule) match(f *Facts, memo []uint8) bool {
	for j, t := range cr.terms {
		slot := cr.slots[j]
		switch memo[slot] {
		case memoTrue:
			continue
		case memoFalse:
			return false
		}
		ok, keep := t.match(f)
		if keep {
			if ok {
				memo[slot] = memoTrue
			} else {
				memo[slot] = memoFalse
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
