package dev_test

import (
	"bytes"
	"crypto"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/dev"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/workers"
)

// The nats CLI is built once per test binary, from the version pinned in
// go.mod (tool github.com/nats-io/natscli/nats), and removed by TestMain.
var natsCLI struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, dir := range []string{natsCLI.dir, exampleService.dir} {
		if dir != "" {
			os.RemoveAll(dir)
		}
	}
	os.Exit(code)
}

// natsBinary returns the path of the nats CLI, building it on first use.
func natsBinary(t testing.TB) string {
	t.Helper()
	natsCLI.once.Do(func() {
		gomod, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil || strings.TrimSpace(string(gomod)) == "" {
			natsCLI.err = fmt.Errorf("go env GOMOD: %v (%q)", err, gomod)
			return
		}
		if natsCLI.dir, natsCLI.err = os.MkdirTemp("", "mailscope-natscli-"); natsCLI.err != nil {
			return
		}
		path := filepath.Join(natsCLI.dir, "nats")
		cmd := exec.Command("go", "build", "-o", path, "github.com/nats-io/natscli/nats")
		cmd.Dir = filepath.Dir(strings.TrimSpace(string(gomod)))
		if out, err := cmd.CombinedOutput(); err != nil {
			natsCLI.err = fmt.Errorf("go build natscli: %v\n%s", err, out)
			return
		}
		natsCLI.path = path
	})
	if natsCLI.err != nil {
		t.Fatal(natsCLI.err)
	}
	return natsCLI.path
}

// cli runs the real nats CLI against a running system, as an operator
// would: through the operator's context that the system wrote (as
// `mailscope dev` does), selected with `nats context select`, isolated
// from any nats context of the user running the tests.
type cli struct {
	bin string
	env []string
}

func newCLI(t *testing.T, b *bundle) *cli {
	t.Helper()
	home := t.TempDir()
	if _, err := b.sys.WriteNATSContext(home); err != nil {
		t.Fatal(err)
	}
	return newCLIContext(t, home, dev.NATSContextName)
}

// newCLIAs is the CLI with a context of role r, written as an operator
// of a deployment would make one (nats context save with the role's
// NKey and inbox prefix).
func newCLIAs(t *testing.T, b *bundle, r access.Role) *cli {
	t.Helper()
	home := t.TempDir()
	if _, err := b.sys.Credentials.NATSContext(r, b.sys.URL, string(r)).Write(home, string(r)); err != nil {
		t.Fatal(err)
	}
	return newCLIContext(t, home, string(r))
}

// newCLIContext is the CLI with home as its configuration directory and
// the context name selected.
func newCLIContext(t *testing.T, home, name string) *cli {
	t.Helper()
	env := []string{"HOME=" + home, "XDG_CONFIG_HOME=" + home}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "NATS_") && !strings.HasPrefix(kv, "HOME=") && !strings.HasPrefix(kv, "XDG_CONFIG_HOME=") {
			env = append(env, kv)
		}
	}
	c := &cli{bin: natsBinary(t), env: env}
	c.run(t, "context", "select", name)
	return c
}

// run runs `nats ARGS...` and returns its standard output; a non-zero exit
// fails the test.
func (c *cli) run(t *testing.T, args ...string) string {
	t.Helper()
	stdout, stderr, err := c.try(t, args...)
	if err != nil {
		t.Fatalf("nats %s: %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), err, stdout, stderr)
	}
	return stdout
}

// try runs `nats ARGS...` and returns its output and how it exited.
func (c *cli) try(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), c.bin, args...)
	cmd.Env = c.env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

var cliRevisionRE = regexp.MustCompile(`(?m)^mail_flags > (\S+) revision: (\d+) `)

// put is `nats kv put mail_flags FLAG TEXT`; it returns the revision
// stored, read back with `nats kv get mail_flags FLAG` (kv put does not
// print it).
func (c *cli) put(t *testing.T, flag, text string) uint64 {
	t.Helper()
	c.run(t, "kv", "put", "mail_flags", flag, text)
	return c.revision(t, flag)
}

// revision is the latest revision of flag's key, from `nats kv get`.
func (c *cli) revision(t *testing.T, flag string) uint64 {
	t.Helper()
	out := c.run(t, "kv", "get", "mail_flags", flag)
	m := cliRevisionRE.FindStringSubmatch(out)
	if m == nil || m[1] != flag {
		t.Fatalf("nats kv get mail_flags %s: no revision in %q", flag, out)
	}
	rev, err := strconv.ParseUint(m[2], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// status reads a worker's status entry with the CLI, as an operator does.
func (c *cli) status(t *testing.T, key string) contracts.WorkerStatus {
	t.Helper()
	raw := c.run(t, "kv", "get", "mail_status", key, "--raw")
	var st contracts.WorkerStatus
	if err := json.Unmarshal([]byte(raw), &st); err != nil {
		t.Fatalf("nats kv get mail_status %s --raw: not a status: %v\n%s", key, err, raw)
	}
	return st
}

// waitRevision waits until the worker's snapshot holds rev of flag.
func (b *bundle) waitRevision(t *testing.T, flag string, rev uint64) {
	t.Helper()
	b.waitStore(t, fmt.Sprintf("%s at revision %d", flag, rev), func(s *rules.Store) bool {
		rs := s.Snapshot().RuleSet(flag)
		return rs != nil && rs.Revision >= rev
	})
}

// decision is the expected decision of one flag: rev 0 means the flag's
// default decided (no rule).
type decision struct {
	value string
	rev   uint64
	line  int
}

// wantDecision checks one flag's value and the revision and line of the
// rule that decided it.
func wantDecision(t *testing.T, o contracts.Outcome, name string, want decision) {
	t.Helper()
	f := flag(t, o, name)
	if f.Value != want.value {
		t.Errorf("mail to %v: %s = %q, want %q", o.Envelope.RcptTo, name, f.Value, want.value)
	}
	switch {
	case want.rev == 0 && f.Rule != nil:
		t.Errorf("mail to %v: %s decided by %+v, want the default", o.Envelope.RcptTo, name, *f.Rule)
	case want.rev != 0 && f.Rule == nil:
		t.Errorf("mail to %v: %s decided by the default, want revision %d line %d", o.Envelope.RcptTo, name, want.rev, want.line)
	case want.rev != 0 && (f.Rule.Revision != want.rev || f.Rule.Line != want.line):
		t.Errorf("mail to %v: %s decided by revision %d line %d, want revision %d line %d",
			o.Envelope.RcptTo, name, f.Rule.Revision, f.Rule.Line, want.rev, want.line)
	}
}

// cliRules are the end-to-end rules (e2e_test.go): every scope kind and
// every known flag, put with the CLI.
var cliRules = []struct{ flag, text string }{
	{rules.FlagHandler, handlerRules},
	{rules.FlagReject, rejectRules},
	{rules.FlagDKIMStrong, strongRules},
	{rules.FlagDKIMVerify, verifyRules},
	{rules.FlagDryRun, dryRunRules},
	{rules.FlagPause, pauseRules},
	{rules.FlagWebhookEndpoint, webhookEndpointRules},
	{rules.FlagShadowHandler, shadowRules},
	{rules.FlagService, serviceRules},
}

// TestNATSCLI drives the running system with the real nats CLI, the way
// operators change rules: put, delete, revert, a value that does not
// parse, and the worker status read back with the CLI. Every outcome is
// checked against the revision and line of the rule that decided it.
func TestNATSCLI(t *testing.T) {
	b := setup(t, workers.Config{Release: "e2e-release"})
	nats := newCLI(t, b)
	statusKey := workers.StatusKey(b.sys.Worker.Status().Worker.Name)

	rev := map[string]uint64{}
	for _, r := range cliRules {
		rev[r.flag] = nats.put(t, r.flag, r.text)
		b.waitRevision(t, r.flag, rev[r.flag])
	}
	for _, f := range rules.Known() {
		if rev[f.Name] == 0 {
			t.Fatalf("known flag %s has no rule put by this test", f.Name)
		}
	}

	// send sends a mail to rcpt (the mail's only recipient) and returns
	// its outcome; outcomes are counted per recipient.
	sentTo := map[string]int{}
	send := func(t *testing.T, rcpt, subject string, key crypto.Signer, domain, selector string, extra ...string) contracts.Outcome {
		t.Helper()
		sentTo[rcpt]++
		// A header of its own per send: each send is a distinct mail
		// (the same bytes to the same envelope are one, stored once).
		extra = append(extra, fmt.Sprintf("X-Test-Send: %d", sentTo[rcpt]))
		b.sendSMTP(t, mail(t, rcpt, subject, key, domain, selector, extra...), rcpt)
		return b.outcomes.Nth(t, rcpt, sentTo[rcpt])
	}
	rsa := func(t *testing.T, rcpt string, extra ...string) contracts.Outcome {
		t.Helper()
		return send(t, rcpt, "Hello", b.rsaKey, "example.com", "s1", extra...)
	}
	def := func(value string) decision { return decision{value: value} }
	by := func(flag, value string, line int) decision { return decision{value, rev[flag], line} }

	t.Run("rules put with the CLI decide, every scope kind and every flag", func(t *testing.T) {
		// The mail's decisions for every flag, by default unless a case
		// says otherwise; the handler decides each case.
		base := map[string]decision{
			rules.FlagDKIMVerify:      by(rules.FlagDKIMVerify, "true", 2),
			rules.FlagDKIMStrong:      by(rules.FlagDKIMStrong, "true", 2),
			rules.FlagPause:           def("false"),
			rules.FlagReject:          def(""),
			rules.FlagDryRun:          def("false"),
			rules.FlagWebhookEndpoint: def(""),
			rules.FlagShadowHandler:   def(rules.ShadowNone),
			rules.FlagService:         def(""),
		}
		cases := []struct {
			name        string
			send        func(t *testing.T) contracts.Outcome
			disposition contracts.Disposition
			handler     string
			trust       string
			flags       map[string]decision
		}{
			{"default", func(t *testing.T) contracts.Outcome { return rsa(t, "route@example.org") },
				contracts.Processed, "publish", contracts.TrustStrong,
				map[string]decision{rules.FlagHandler: by(rules.FlagHandler, "publish", 11)}},
			{"rcpt", func(t *testing.T) contracts.Outcome { return rsa(t, "review@example.org") },
				contracts.Quarantined, "quarantine", contracts.TrustStrong,
				map[string]decision{rules.FlagHandler: by(rules.FlagHandler, "quarantine", 2)}},
			{"dkim", func(t *testing.T) contracts.Outcome {
				return send(t, "partner@example.org", "Partner", b.edKey, "partner.example", "ed")
			}, contracts.Discarded, "discard", contracts.TrustWeak,
				map[string]decision{rules.FlagHandler: by(rules.FlagHandler, "discard", 3),
					rules.FlagDKIMStrong: def("false")}},
			{"mail_header, RFC 2047-decoded", func(t *testing.T) contracts.Outcome {
				return rsa(t, "bulk@example.org", "X-Route: =?UTF-8?B?QlVMSw==?=")
			}, contracts.Discarded, "discard", contracts.TrustStrong,
				map[string]decision{rules.FlagHandler: by(rules.FlagHandler, "discard", 4)}},
			{"trust & rcpt", func(t *testing.T) contracts.Outcome { return rsa(t, "trusted@example.org") },
				contracts.Quarantined, "quarantine", contracts.TrustStrong,
				map[string]decision{rules.FlagHandler: by(rules.FlagHandler, "quarantine", 5)}},
			{"env & rcpt", func(t *testing.T) contracts.Outcome { return rsa(t, "envtest@example.org") },
				contracts.Discarded, "discard", contracts.TrustStrong,
				map[string]decision{rules.FlagHandler: by(rules.FlagHandler, "discard", 6)}},
			{"release & rcpt", func(t *testing.T) contracts.Outcome { return rsa(t, "canary@example.org") },
				contracts.Quarantined, "quarantine", contracts.TrustStrong,
				map[string]decision{rules.FlagHandler: by(rules.FlagHandler, "quarantine", 7)}},
			{"sender_percent & rcpt", func(t *testing.T) contracts.Outcome { return rsa(t, "pct@example.org") },
				contracts.Quarantined, "quarantine", contracts.TrustStrong,
				map[string]decision{rules.FlagHandler: by(rules.FlagHandler, "quarantine", 9)}},
			{"trust:weak by mail.auth.dkim_strong off", func(t *testing.T) contracts.Outcome { return rsa(t, "weak@example.org") },
				contracts.Quarantined, "quarantine", contracts.TrustWeak,
				map[string]decision{rules.FlagHandler: by(rules.FlagHandler, "quarantine", 10),
					rules.FlagDKIMStrong: by(rules.FlagDKIMStrong, "false", 1)}},
			{"mail.reject by mail_header", func(t *testing.T) contracts.Outcome {
				return send(t, "spam@example.org", "FREE money", b.rsaKey, "example.com", "s1")
			}, contracts.Rejected, "", contracts.TrustStrong,
				map[string]decision{rules.FlagReject: by(rules.FlagReject, "spam subject", 1)}},
			{"mail.dkim.verify off", func(t *testing.T) contracts.Outcome { return rsa(t, "noverify@example.org") },
				contracts.Processed, "publish", contracts.TrustNone,
				map[string]decision{rules.FlagHandler: by(rules.FlagHandler, "publish", 11),
					rules.FlagDKIMVerify: by(rules.FlagDKIMVerify, "false", 1), rules.FlagDKIMStrong: def("false")}},
			{"mail.dry_run on", func(t *testing.T) contracts.Outcome { return rsa(t, "dry@example.org") },
				contracts.Processed, "publish", contracts.TrustStrong,
				map[string]decision{rules.FlagHandler: by(rules.FlagHandler, "publish", 11),
					rules.FlagDryRun: by(rules.FlagDryRun, "true", 1)}},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				o := c.send(t)
				wantDisposition(t, o, c.disposition, c.handler)
				if o.Auth.Trust != c.trust {
					t.Errorf("trust %s, want %s", o.Auth.Trust, c.trust)
				}
				for _, f := range o.Flags {
					want, ok := c.flags[f.Flag]
					if !ok {
						want, ok = base[f.Flag]
					}
					if !ok {
						t.Errorf("consulted %s, which the test does not expect", f.Flag)
						continue
					}
					wantDecision(t, o, f.Flag, want)
				}
				if c.disposition != contracts.Rejected {
					for _, f := range rules.Known() {
						flag(t, o, f.Name) // every known flag consulted, with its rule
					}
				}
				if got := o.DryRun; got != (c.flags[rules.FlagDryRun].value == "true") {
					t.Errorf("dry_run %v", got)
				}
			})
		}
	})

	routed := "rcpt:^route@ 60 discard\n" + handlerRules
	var routedRev uint64
	t.Run("kv put changes the routing of the next mail", func(t *testing.T) {
		routedRev = nats.put(t, rules.FlagHandler, routed)
		b.waitRevision(t, rules.FlagHandler, routedRev)
		o := rsa(t, "route@example.org")
		wantDisposition(t, o, contracts.Discarded, "discard")
		wantDecision(t, o, rules.FlagHandler, decision{"discard", routedRev, 1})
		// The whole key was swapped: the other rules moved down a line.
		o = rsa(t, "review@example.org")
		wantDisposition(t, o, contracts.Quarantined, "quarantine")
		wantDecision(t, o, rules.FlagHandler, decision{"quarantine", routedRev, 3})
	})

	t.Run("kv del -f makes the default apply", func(t *testing.T) {
		nats.run(t, "kv", "del", "-f", "mail_flags", rules.FlagHandler)
		b.waitStore(t, "mail.handler deleted", func(s *rules.Store) bool {
			return s.Snapshot().RuleSet(rules.FlagHandler) == nil
		})
		o := rsa(t, "route@example.org")
		wantDisposition(t, o, contracts.Processed, "publish")
		wantDecision(t, o, rules.FlagHandler, def("publish"))
		o = rsa(t, "review@example.org")
		wantDisposition(t, o, contracts.Processed, "publish")
		wantDecision(t, o, rules.FlagHandler, def("publish"))
		// The other flags keep their rules.
		wantDecision(t, o, rules.FlagDKIMStrong, by(rules.FlagDKIMStrong, "true", 2))
	})

	var revertedRev uint64
	t.Run("kv revert brings back an older rule set, which decides", func(t *testing.T) {
		out := nats.run(t, "kv", "revert", "--force", "mail_flags", rules.FlagHandler, strconv.FormatUint(routedRev, 10))
		if !strings.Contains(out, "DELETE") {
			t.Errorf("kv revert printed no history with the delete:\n%s", out)
		}
		revertedRev = nats.revision(t, rules.FlagHandler)
		if revertedRev <= routedRev {
			t.Fatalf("revision after revert %d, want a new revision after %d", revertedRev, routedRev)
		}
		if got := nats.run(t, "kv", "get", "mail_flags", rules.FlagHandler, "--raw"); got != routed {
			t.Errorf("value after revert %q, want revision %d's %q", got, routedRev, routed)
		}
		b.waitRevision(t, rules.FlagHandler, revertedRev)
		o := rsa(t, "route@example.org")
		wantDisposition(t, o, contracts.Discarded, "discard")
		wantDecision(t, o, rules.FlagHandler, decision{"discard", revertedRev, 1})

		// Back to the very first rule set.
		nats.run(t, "kv", "revert", "--force", "mail_flags", rules.FlagHandler, strconv.FormatUint(rev[rules.FlagHandler], 10))
		first := nats.revision(t, rules.FlagHandler)
		b.waitRevision(t, rules.FlagHandler, first)
		o = rsa(t, "route@example.org")
		wantDisposition(t, o, contracts.Processed, "publish")
		wantDecision(t, o, rules.FlagHandler, decision{"publish", first, 11})
		o = rsa(t, "review@example.org")
		wantDisposition(t, o, contracts.Quarantined, "quarantine")
		wantDecision(t, o, rules.FlagHandler, decision{"quarantine", first, 2})
		rev[rules.FlagHandler] = first

		// The audit trail lists every change, the delete included.
		hist := nats.run(t, "kv", "history", "mail_flags", rules.FlagHandler)
		ops := historyOps(hist, rules.FlagHandler)
		for _, want := range []struct {
			rev uint64
			op  string
		}{{routedRev, "PUT"}, {routedRev + 1, "DELETE"}, {revertedRev, "PUT"}, {first, "PUT"}} {
			if ops[want.rev] != want.op {
				t.Errorf("kv history: revision %d is %q, want %s\n%s", want.rev, ops[want.rev], want.op, hist)
			}
		}
	})

	t.Run("a value that does not parse keeps the last good rules and shows in mail_status", func(t *testing.T) {
		goodHandler, goodVerify := rev[rules.FlagHandler], rev[rules.FlagDKIMVerify]
		badHandler := nats.put(t, rules.FlagHandler, "rcpt:^route@ 60 no-such-handler\ndefault 0 publish\n")
		badVerify := nats.put(t, rules.FlagDKIMVerify, "rcpt:^noverify@ 10 false\ndefault 0 maybe\n")
		b.waitStatus(t, func(st contracts.WorkerStatus) bool {
			seen := map[uint64]bool{}
			for _, p := range st.Problems {
				seen[p.Revision] = true
			}
			return len(st.Problems) == 2 && seen[badHandler] && seen[badVerify]
		})

		if keys := nats.run(t, "kv", "ls", "mail_status"); !strings.Contains(keys, statusKey) {
			t.Errorf("nats kv ls mail_status does not list %s:\n%s", statusKey, keys)
		}
		st := nats.status(t, statusKey)
		if !st.Ready || st.Schema != contracts.StatusSchema || st.Worker.Env != "e2e" {
			t.Errorf("status %+v", st)
		}
		if st.Rules[rules.FlagHandler] != goodHandler || st.Rules[rules.FlagDKIMVerify] != goodVerify {
			t.Errorf("status rules %v, want %s at %d and %s at %d", st.Rules, rules.FlagHandler, goodHandler, rules.FlagDKIMVerify, goodVerify)
		}
		wantProblems := []struct {
			flag      string
			rev, kept uint64
			line      string
		}{
			{rules.FlagDKIMVerify, badVerify, goodVerify, `line 2: value "maybe"`},
			{rules.FlagHandler, badHandler, goodHandler, `line 1: value "no-such-handler"`},
		}
		if len(st.Problems) != len(wantProblems) {
			t.Fatalf("status problems %+v, want %d", st.Problems, len(wantProblems))
		}
		for i, w := range wantProblems {
			p := st.Problems[i]
			if p.Flag != w.flag || p.Revision != w.rev || p.KeptRevision != w.kept || len(p.Errors) != 1 || !strings.HasPrefix(p.Errors[0], w.line) {
				t.Errorf("status problem %+v, want %s revision %d kept %d error %q...", p, w.flag, w.rev, w.kept, w.line)
			}
		}

		// Mail is still decided by the last good rules.
		o := rsa(t, "route@example.org")
		wantDisposition(t, o, contracts.Processed, "publish")
		wantDecision(t, o, rules.FlagHandler, decision{"publish", goodHandler, 11})
		wantDecision(t, o, rules.FlagDKIMVerify, decision{"true", goodVerify, 2})
		o = rsa(t, "noverify@example.org")
		wantDecision(t, o, rules.FlagDKIMVerify, decision{"false", goodVerify, 1})

		// Rolling the bad keys back clears the problems.
		nats.run(t, "kv", "revert", "--force", "mail_flags", rules.FlagHandler, strconv.FormatUint(goodHandler, 10))
		nats.run(t, "kv", "revert", "--force", "mail_flags", rules.FlagDKIMVerify, strconv.FormatUint(goodVerify, 10))
		fixedHandler, fixedVerify := nats.revision(t, rules.FlagHandler), nats.revision(t, rules.FlagDKIMVerify)
		b.waitStatus(t, func(st contracts.WorkerStatus) bool {
			return len(st.Problems) == 0 && st.Rules[rules.FlagHandler] == fixedHandler && st.Rules[rules.FlagDKIMVerify] == fixedVerify
		})
		if st := nats.status(t, statusKey); len(st.Problems) != 0 {
			t.Errorf("status problems after the rollback: %+v", st.Problems)
		}
		rev[rules.FlagHandler], rev[rules.FlagDKIMVerify] = fixedHandler, fixedVerify
		o = rsa(t, "route@example.org")
		wantDecision(t, o, rules.FlagHandler, decision{"publish", fixedHandler, 11})
	})

	t.Run("mail.pause holds mail until the CLI switches it off", func(t *testing.T) {
		const rcpt = "held@paused.invalid"
		b.sendSMTP(t, mail(t, rcpt, "hold me", b.rsaKey, "example.com", "s1"), rcpt)
		systest.WaitFor(t, "the worker to hold the mail", func() bool { return b.sys.Worker.Held() == 1 })
		off := nats.put(t, rules.FlagPause, `rcpt:@paused\.invalid$ 10 off`)
		o := b.outcomes.First(t, rcpt)
		wantDisposition(t, o, contracts.Processed, "publish")
		wantDecision(t, o, rules.FlagPause, decision{"false", off, 1}) // written "off"; outcomes give bools as true/false
		wantDecision(t, o, rules.FlagHandler, by(rules.FlagHandler, "publish", 11))
		if o.Attempt != 1 {
			t.Errorf("attempt %d after a hold, want 1", o.Attempt)
		}
	})

	systest.WaitDrained(t, b.sys.JS)
}

// historyOps reads the table `nats kv history` prints: revision -> op.
func historyOps(table, key string) map[uint64]string {
	ops := map[uint64]string{}
	re := regexp.MustCompile(`^\W*` + regexp.QuoteMeta(key) + `\W+(\d+)\W+(PUT|DELETE|PURGE)\W`)
	for _, line := range strings.Split(table, "\n") {
		if m := re.FindStringSubmatch(line); m != nil {
			n, _ := strconv.ParseUint(m[1], 10, 64)
			ops[n] = m[2]
		}
	}
	return ops
}
