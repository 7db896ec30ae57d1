package rules

import (
	"fmt"
	"testing"
)

// snap parses rules per flag and builds a Snapshot; it fails the test on
// any parse error.
func snap(t testing.TB, rules map[string]string) *Snapshot {
	t.Helper()
	sets := make(map[string]*RuleSet)
	rev := uint64(1)
	for flag, text := range rules {
		rs, err := Parse(flag, rev, []byte(text))
		if err != nil {
			t.Fatalf("Parse: %v", err)
		}
		sets[flag] = rs
		rev++
	}
	return NewSnapshot(sets)
}

// headers builds Facts.Headers from raw (name, value) pairs.
func headers(kv ...string) map[string][]string {
	return HeadersFromFields(func(yield func(k, v string) bool) {
		for i := 0; i+1 < len(kv); i += 2 {
			if !yield(kv[i], kv[i+1]) {
				return
			}
		}
	})
}

func TestEvalScopes(t *testing.T) {
	base := func() *Facts {
		return &Facts{
			Headers: headers(
				"Subject", "=?UTF-8?B?w5xiZXIgW2JldGFd?= news",
				"X-Tag", "first",
				"x-tag", "second\tunfolded", // as a header reader unfolds "second\r\n\tunfolded"
				"Received", "from a",
			),
			Rcpts:      []string{"alice@beta.example", "bob@other.example"},
			From:       "carol@example.com",
			DKIMPass:   []string{"example.com"},
			DKIMKnown:  true,
			Trust:      TrustWeak,
			TrustKnown: true,
			Env:        "staging",
			Release:    "v1.2.3",
		}
	}
	tests := []struct {
		name  string
		scope string
		facts func(*Facts)
		want  bool
	}{
		{"default", "default", nil, true},
		{"header decoded", `mail_header:Subject:^Über\s\[beta\]`, nil, true},
		{"header name any case", `mail_header:SUBJECT:news$`, nil, true},
		{"header case-sensitive regex", `mail_header:Subject:NEWS`, nil, false},
		{"header (?i)", `mail_header:Subject:(?i)NEWS`, nil, true},
		{"header second occurrence", `mail_header:X-Tag:^second`, nil, true},
		{"header unfolded", `mail_header:X-Tag:second\tunfolded`, nil, true},
		{"header fold not across lines", `mail_header:X-Tag:second\r`, nil, false},
		{"header missing", `mail_header:X-None:.`, nil, false},
		{"header raw encoded word not seen", `mail_header:Subject:=\?UTF-8`, nil, false},
		{"header regex with colon", `mail_header:Received:^from\x20a$`, nil, true},
		{"rcpt any", `rcpt:@beta\.example$`, nil, true},
		{"rcpt unanchored", `rcpt:other`, nil, true},
		{"rcpt none", `rcpt:@gamma\.example$`, nil, false},
		{"dkim", `dkim:EXAMPLE.com`, nil, true},
		{"dkim other", `dkim:example.org`, nil, false},
		{"dkim unknown", `dkim:example.com`, func(f *Facts) { f.DKIMKnown = false }, false},
		{"trust", `trust:weak`, nil, true},
		{"trust other", `trust:strong`, nil, false},
		{"trust unknown", `trust:weak`, func(f *Facts) { f.TrustKnown = false }, false},
		{"trust none unknown", `trust:none`, func(f *Facts) { f.TrustKnown = false; f.Trust = "" }, false},
		{"percent 100", `sender_percent:100`, nil, true},
		{"percent 0", `sender_percent:0`, nil, false},
		{"percent 100 no from", `sender_percent:100`, func(f *Facts) { f.From = "" }, true},
		{"percent 99.99 no from", `sender_percent:99.99`, func(f *Facts) { f.From = "" }, false},
		{"env", `env:staging`, nil, true},
		{"env exact", `env:Staging`, nil, false},
		{"release", `release:v1.2.3`, nil, true},
		{"release other", `release:v1.2`, nil, false},
		{"conjunction all", `rcpt:@beta\.example$&dkim:example.com&env:staging`, nil, true},
		{"conjunction one false", `rcpt:@beta\.example$&dkim:example.org`, nil, false},
		{"conjunction with unknown dkim", `env:staging&dkim:example.com`, func(f *Facts) { f.DKIMKnown = false }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := snap(t, map[string]string{FlagReject: tt.scope + " 1 matched"})
			f := base()
			if tt.facts != nil {
				tt.facts(f)
			}
			d := s.Eval(FlagReject, f)
			if got := d.Value == "matched"; got != tt.want {
				t.Errorf("matched = %v, want %v (decision %+v)", got, tt.want, d)
			}
			// A second evaluation hits the memo and agrees.
			if d2 := s.Eval(FlagReject, f); d2 != d {
				t.Errorf("memoized decision %+v != %+v", d2, d)
			}
		})
	}
}

func TestEvalPriorityAndDefault(t *testing.T) {
	s := snap(t, map[string]string{
		FlagHandler: `
default 0 publish
env:staging 10 quarantine
rcpt:@x\.example$ 20 discard
`,
		FlagPause: "env:prod 5 on",
	})
	f := &Facts{Env: "staging", Rcpts: []string{"a@x.example"}}
	d := s.Eval(FlagHandler, f)
	if d.Value != "discard" || d.Rule == nil || d.Rule.Priority != 20 || d.Revision == 0 || d.Flag != FlagHandler {
		t.Errorf("highest priority: %+v", d)
	}
	f = &Facts{Env: "staging"}
	if d := s.Eval(FlagHandler, f); d.Value != "quarantine" || d.Rule.Line != 3 {
		t.Errorf("next priority: %+v", d)
	}
	f = &Facts{Env: "dev"}
	if d := s.Eval(FlagHandler, f); d.Value != "publish" || d.Rule == nil || d.Rule.ScopeText != "default" {
		t.Errorf("default rule: %+v", d)
	}
	// No rule matches: registered default, no rule, revision 0.
	if d := s.Eval(FlagPause, f); d.Value != "false" || d.Rule != nil || d.Revision != 0 || d.Bool() {
		t.Errorf("registered default: %+v", d)
	}
	// No rules at all.
	if d := s.Eval(FlagDKIMVerify, f); d.Value != "true" || !d.Bool() || d.Rule != nil {
		t.Errorf("no rules: %+v", d)
	}
	// Unknown flag (it has no rules: Parse refuses them): "".
	if d := s.Eval("mail.new", f); d.Value != "" || d.Rule != nil {
		t.Errorf("unknown flag: %+v", d)
	}
	// A nil snapshot gives defaults.
	var none *Snapshot
	if d := none.Eval(FlagHandler, f); d.Value != "publish" || none.RuleSet(FlagHandler) != nil {
		t.Errorf("nil snapshot: %+v", d)
	}
	if rs := s.RuleSet(FlagHandler); rs == nil || len(rs.Rules) != 3 {
		t.Errorf("RuleSet = %+v", rs)
	}
	if got := fmt.Sprint(s.Flags()); got != "[mail.handler mail.pause]" {
		t.Errorf("Flags = %s", got)
	}
}

func TestEvalBoolLiterals(t *testing.T) {
	s := snap(t, map[string]string{FlagDryRun: "env:a 1 off\nenv:b 2 On\nenv:c 3 no\nenv:d 4 1"})
	for env, want := range map[string]bool{"a": false, "b": true, "c": false, "d": true, "e": false} {
		if got := s.Eval(FlagDryRun, &Facts{Env: env}).Bool(); got != want {
			t.Errorf("env %s: Bool = %v, want %v", env, got, want)
		}
	}
}

// Facts learned late: dkim and trust terms are not memoized while unknown.
func TestEvalUnknownNotMemoized(t *testing.T) {
	s := snap(t, map[string]string{
		FlagDKIMVerify: "dkim:example.com 1 off",
		FlagPause:      "dkim:example.com&env:prod 2 on",
		FlagDryRun:     "trust:none 1 on",
	})
	f := &Facts{Env: "prod", DKIMPass: []string{"example.com"}, Trust: TrustNone}
	if s.Eval(FlagDKIMVerify, f).Value != "true" || s.Eval(FlagPause, f).Bool() || s.Eval(FlagDryRun, f).Bool() {
		t.Fatal("dkim/trust terms matched before known")
	}
	f.DKIMKnown, f.TrustKnown = true, true
	if s.Eval(FlagDKIMVerify, f).Value != "off" || !s.Eval(FlagPause, f).Bool() || !s.Eval(FlagDryRun, f).Bool() {
		t.Fatal("dkim/trust terms not re-evaluated once known")
	}
}

// Memo slots are shared by equal terms across flags, kept apart for
// sender_percent (salted by flag), and reset for another snapshot.
func TestEvalMemo(t *testing.T) {
	s := snap(t, map[string]string{
		FlagPause:  "mail_header:subject:x 1 on\nsender_percent:50 2 on",
		FlagDryRun: "mail_header:SUBJECT:x&env:prod 1 on\nsender_percent:50 2 on",
	})
	// slots: mail_header (shared), env:prod, and one sender_percent per flag.
	if s.nterm != 4 {
		t.Errorf("nterm = %d, want 4", s.nterm)
	}
	f := &Facts{Headers: headers("Subject", "x"), Env: "prod"}
	if !s.Eval(FlagPause, f).Bool() {
		t.Fatal("pause")
	}
	// Change the facts behind the memo's back: the shared header slot
	// proves the second flag reused the first flag's result.
	f.Headers = nil
	if d := s.Eval(FlagDryRun, f); !d.Bool() || d.Rule.Priority != 1 {
		t.Errorf("dry_run did not reuse the memo: %+v", d)
	}
	// Another snapshot starts a fresh memo.
	s2 := snap(t, map[string]string{FlagDryRun: "mail_header:SUBJECT:x 1 on"})
	if s2.Eval(FlagDryRun, f).Bool() {
		t.Error("memo leaked across snapshots")
	}

	// sender_percent selects per flag: find a sender in for one flag and
	// out for the other; both evaluations must honour their own flag.
	s3 := snap(t, map[string]string{FlagPause: "sender_percent:50 1 on", FlagDryRun: "sender_percent:50 1 on"})
	found := false
	for i := range 1000 {
		from := fmt.Sprintf("u%d@example.com", i)
		inP, inD := percentMatch(FlagPause, from, 5000), percentMatch(FlagDryRun, from, 5000)
		if inP == inD {
			continue
		}
		found = true
		f := &Facts{From: from}
		if s3.Eval(FlagPause, f).Bool() != inP || s3.Eval(FlagDryRun, f).Bool() != inD {
			t.Errorf("%s: sender_percent memo shared across flags", from)
		}
		break
	}
	if !found {
		t.Error("no sender differs between flags")
	}
}

func TestSenderPercentMonotonic(t *testing.T) {
	steps := []uint64{0, 1, 10, 50, 100, 999, 1000, 2500, 5000, 7500, 9999, 10000}
	counts := make([]int, len(steps))
	for i := range 1000 {
		from := fmt.Sprintf("sender%d@domain%d.example", i, i%7)
		in := false
		for j, p := range steps {
			m := percentMatch(FlagHandler, from, p)
			if in && !m {
				t.Fatalf("%s in at a lower percent, out at %d", from, p)
			}
			in = m
			if m {
				counts[j]++
			}
		}
		// Case of From does not move a sender.
		if senderBucket(FlagHandler, from) != senderBucket(FlagHandler, "SENDER"+from[6:]) {
			t.Fatalf("%s: bucket depends on case", from)
		}
	}
	if counts[0] != 0 || counts[len(counts)-1] != 1000 {
		t.Errorf("0%% / 100%% counts: %v", counts)
	}
	// Rough uniformity: 50% should hold about half.
	if c := counts[8]; c < 400 || c > 600 {
		t.Errorf("50%% holds %d of 1000", c)
	}
	// Through the parser and Eval, too.
	for _, from := range []string{"a@b.example", "z@y.example", "x@x.example"} {
		in := false
		for _, p := range []string{"0", "0.01", "5", "33.33", "50", "99.99", "100"} {
			s := snap(t, map[string]string{FlagPause: "sender_percent:" + p + " 1 on"})
			m := s.Eval(FlagPause, &Facts{From: from}).Bool()
			if in && !m {
				t.Fatalf("%s out at %s%% after being in", from, p)
			}
			in = m
		}
		if !in {
			t.Errorf("%s not in at 100%%", from)
		}
	}
}

func TestEvalNoAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are not meaningful under the race detector")
	}
	s := snap(t, map[string]string{
		FlagHandler: `mail_header:Subject:(?i)beta 3 quarantine
rcpt:@beta\.example$&dkim:example.com 2 discard
sender_percent:25&trust:strong 1 publish`,
		FlagPause: "env:prod&release:v2 1 on",
	})
	f := &Facts{Headers: headers("Subject", "hello"), Rcpts: []string{"a@b.example"}, From: "a@c.example",
		DKIMKnown: true, TrustKnown: true, Trust: TrustWeak, Env: "prod", Release: "v1"}
	s.Eval(FlagHandler, f) // allocate the memo
	allocs := testing.AllocsPerRun(100, func() {
		clear(f.memo)
		s.Eval(FlagHandler, f)
		s.Eval(FlagPause, f)
		s.Eval(FlagDryRun, f)
	})
	if allocs != 0 {
		t.Errorf("Eval allocates %v times", allocs)
	}
}
