package dev_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/workers"
)

// refusedLines are rule lines an operator may get wrong, each with what
// the worker's status must say about it. They are put as one key: every
// bad line is reported, and the key's last good rules stay in force.
var refusedLines = []struct{ line, says string }{
	{"default", `want SCOPE PRIORITY VALUE, got only "default"`},
	{"default 1x true", `priority "1x": want a non-negative integer`},
	{"default 99999999999999999999 true", "more than"},
	{"default 1", "missing value: bool flag mail.pause needs one"},
	{"rcpt 2 true", "want KIND:ARGUMENT or default"},
	{"mail_header:Subject 3 true", "want mail_header:NAME:REGEX"},
	{"mail_header::x 4 true", `bad header name ""`},
	{"mail_header:Sübject:x 5 true", `bad header name "Sübject"`},
	{"mail_header:Subject:( 6 true", "missing closing )"},
	{"rcpt:( 7 true", "missing closing )"},
	{"rcpt:" + strings.Repeat("a", rules.MaxRegexLen+1) + " 8 true", fmt.Sprintf("more than %d", rules.MaxRegexLen)},
	{"dkim:alice@example.com 9 true", "want dkim:DOMAIN"},
	{"dkim: 10 true", "want dkim:DOMAIN"},
	{"trust:medium 11 true", "trust level must be strong, weak or none"},
	{"sender_percent:ten 12 true", "percent must be a number"},
	{"sender_percent:1x.5 13 true", "percent must be a number"},
	{"sender_percent:1.5x 14 true", "percent must be a number"},
	{"sender_percent:1. 15 true", "percent must be a number"},
	{"sender_percent:100.01 16 true", "percent must be a number"},
	{"env: 17 true", `empty env`},
	{"release: 18 true", `empty release`},
	{"country:fr 19 true", `unknown scope kind "country"`},
	{"default&&rcpt:x 20 true", "empty term around '&'"},
	{"default 21 maybe", `value "maybe"`},
	{"rcpt:^a@ 22 true", ""}, // good by itself
	{"rcpt:^b@ 22 true", "priority 22 already used on line"},
}

// An operator's rule key with bad lines is refused as a whole: the
// worker's status entry (what `nats kv get mail_status` shows) lists every
// bad line with what is wrong, the last good revision stays in force, and
// mail is decided by it.
func TestRefusedRuleLinesAreEachReported(t *testing.T) {
	b := setup(t, workers.Config{})
	good := b.putRules(t, rules.FlagPause, "rcpt:^never@ 10 true\n")

	var text strings.Builder
	text.WriteString("# every line below but one is wrong\n")
	for _, l := range refusedLines {
		text.WriteString(l.line + "\n")
	}
	bad, err := b.kv.PutString(t.Context(), rules.FlagPause, text.String())
	if err != nil {
		t.Fatal(err)
	}
	var problem contracts.RuleProblem
	b.waitStatus(t, func(st contracts.WorkerStatus) bool {
		for _, p := range st.Problems {
			if p.Flag == rules.FlagPause && p.Revision == bad {
				problem = p
				return true
			}
		}
		return false
	})
	if problem.Cause != rules.CauseParse || problem.KeptRevision != good {
		t.Errorf("problem cause %q kept revision %d, want %q and %d", problem.Cause, problem.KeptRevision, rules.CauseParse, good)
	}
	var want []string
	for i, l := range refusedLines {
		if l.says != "" {
			want = append(want, fmt.Sprintf("line %d: ", i+2))
		}
	}
	if len(problem.Errors) != len(want) {
		t.Fatalf("%d errors reported, want %d: %q", len(problem.Errors), len(want), problem.Errors)
	}
	j := 0
	for i, l := range refusedLines {
		if l.says == "" {
			continue
		}
		got := problem.Errors[j]
		if !strings.HasPrefix(got, fmt.Sprintf("line %d: ", i+2)) || !strings.Contains(got, l.says) {
			t.Errorf("line %q reported as %q, want line %d saying %q", l.line, got, i+2, l.says)
		}
		j++
	}

	// The kept revision decides: never@ is held, others are not.
	b.sendSMTP(t, mail(t, "other@example.org", "kept rules", b.rsaKey, "example.com", "s1"), "other@example.org")
	o := b.outcomes.First(t, "other@example.org")
	wantDisposition(t, o, contracts.Processed, "publish")
	if f := flag(t, o, rules.FlagPause); f.Value != "false" || f.Rule != nil {
		t.Errorf("mail.pause decided %+v, want the default of the kept revision's rules", f)
	}
	if st := b.sys.Worker.Status(); st.Rules[rules.FlagPause] != good {
		t.Errorf("rules in force %v, want mail.pause at revision %d", st.Rules, good)
	}
}

// A worker that starts while a key's newest value is bad never saw its
// good rules: it takes the last good revision from the key's history, as
// every other worker of the fleet keeps it; and a key deleted before its
// bad value has no rules in force (its default applies), on every worker.
func TestNewWorkerKeepsLastGoodRulesFromHistory(t *testing.T) {
	b := setup(t, workers.Config{})
	good := b.putRules(t, rules.FlagReject, "rcpt:^blocked@ 10 blocked by rule\n")
	if _, err := b.kv.PutString(t.Context(), rules.FlagReject, "rcpt:^blocked@ ten blocked\n"); err != nil {
		t.Fatal(err)
	}
	older := b.putRules(t, rules.FlagPause, "rcpt:^never@ 10 true\n")
	if err := b.kv.Delete(t.Context(), rules.FlagPause); err != nil {
		t.Fatal(err)
	}
	badPause, err := b.kv.PutString(t.Context(), rules.FlagPause, "rcpt:^never@ 10 perhaps\n")
	if err != nil {
		t.Fatal(err)
	}
	// Two bad values after a good one: the history is searched past both.
	goodDry := b.putRules(t, rules.FlagDryRun, "rcpt:^dry@ 10 true\n")
	for _, v := range []string{"sometimes", "often"} {
		if _, err := b.kv.PutString(t.Context(), rules.FlagDryRun, "rcpt:^dry@ 10 "+v+"\n"); err != nil {
			t.Fatal(err)
		}
	}

	nc := b.conn(t, access.Worker)
	cfg := workers.Config{Name: "late-worker", Env: "e2e", Names: b.sys.Config.Worker.Names,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	cfg.Auth.DNSServers = []string{b.keys.Addr()}
	late, err := workers.New(t.Context(), cfg, nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- late.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("late worker: %v", err)
		}
	})
	systest.WaitFor(t, "the late worker takes mail", func() bool {
		select {
		case err := <-done:
			t.Fatalf("late worker stopped: %v", err)
		default:
		}
		return late.Ready()
	})

	st := late.Status()
	if st.Rules[rules.FlagReject] != good {
		t.Errorf("late worker has mail.reject at revision %d, want the last good %d", st.Rules[rules.FlagReject], good)
	}
	if rev, ok := st.Rules[rules.FlagPause]; ok {
		t.Errorf("late worker has mail.pause at revision %d (put before its delete, %d), want none", rev, older)
	}
	if rev := st.Rules[rules.FlagDryRun]; rev != goodDry {
		t.Errorf("late worker has mail.dry_run at revision %d, want %d (the good one before two bad ones)", rev, goodDry)
	}
	probs := map[string]contracts.RuleProblem{}
	for _, p := range st.Problems {
		probs[p.Flag] = p
	}
	for _, f := range []string{rules.FlagReject, rules.FlagPause, rules.FlagDryRun} {
		if probs[f].Cause != rules.CauseParse {
			t.Errorf("late worker's problems %+v lack %s", st.Problems, f)
		}
	}
	if p := probs[rules.FlagPause]; p.Revision != badPause || p.KeptRevision != 0 {
		t.Errorf("mail.pause problem %+v, want revision %d with none kept", p, badPause)
	}
	// The running worker agrees with the late one.
	run := b.sys.Worker.Status()
	for _, f := range []string{rules.FlagReject, rules.FlagPause, rules.FlagDryRun} {
		if run.Rules[f] != st.Rules[f] {
			t.Errorf("%s: running worker keeps revision %d, late worker %d", f, run.Rules[f], st.Rules[f])
		}
	}
	if !slices.Equal(sortedFlags(run.Rules), sortedFlags(st.Rules)) {
		t.Errorf("rules in force differ: running %v, late %v", run.Rules, st.Rules)
	}
}

func sortedFlags(m map[string]uint64) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
