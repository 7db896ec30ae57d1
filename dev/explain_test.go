package dev_test

import (
	"context"
	"testing"
	"time"

	"github.com/mailscope/mailscope/auth"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/keyserver"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/testkit"
	"github.com/mailscope/mailscope/workers"
)

// `mailscope flags explain` evaluates a mail as a worker would, against
// the rules in the bucket, with no side effect: for every flag it names
// the value and the deciding rule the worker's outcome records for the
// same mail, and the same DKIM verdict; a held mail is explained with
// the pause that holds it; a mail that is not RFC 5322, or whose key
// lookup times out, is an error of its class.
func TestExplainPredictsTheOutcome(t *testing.T) {
	b := setup(t, workers.Config{})
	b.putRules(t, rules.FlagHandler, "rcpt:^explained@ 10 quarantine\ndefault 0 publish\n")
	b.putRules(t, rules.FlagDKIMStrong, "dkim:example.com 10 true\n")
	b.putRules(t, rules.FlagPause, "rcpt:^held@ 10 true\n")
	// A key that names no flag is never in force: not explained.
	if _, err := b.kv.PutString(t.Context(), "mail.handlr", "default 0 discard\n"); err != nil {
		t.Fatal(err)
	}

	// The command's own view of the rules: a store of its own, as the
	// operator, loaded once.
	store := rules.NewStore(b.kv, nil)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if err := store.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// The command's own configuration: no logger, DNS on the test's
	// server, a short lookup timeout.
	cfg := b.sys.Config.Worker
	cfg.Logger = nil
	cfg.Auth = auth.Config{DNSServers: []string{b.keys.Addr()}, Timeout: 50 * time.Millisecond, Retries: -1}
	pipe := workers.NewPipeline(cfg)
	explain := func(rcpt string, raw []byte) (*workers.Explanation, error) {
		env := contracts.Envelope{ID: "explain", MailFrom: "alice@example.com", RcptTo: []string{rcpt}, ReceivedAt: time.Now(), Protocol: "publish"}
		return pipe.Explain(t.Context(), store.Snapshot(), env, raw)
	}

	raw := mail(t, "explained@example.org", "explain me", b.rsaKey, "example.com", "s1")
	e, err := explain("explained@example.org", raw)
	if err != nil {
		t.Fatal(err)
	}
	b.sendSMTP(t, raw, "explained@example.org")
	o := b.outcomes.First(t, "explained@example.org")
	wantDisposition(t, o, contracts.Quarantined, "quarantine")

	if e.From != "alice@example.com" || e.FromDomain != "example.com" || len(e.Rcpts) != 1 || e.Env != "e2e" {
		t.Errorf("explanation facts from %q (%q) rcpts %v env %q", e.From, e.FromDomain, e.Rcpts, e.Env)
	}
	if got := e.Headers["subject"]; len(got) != 1 || got[0] != "explain me" {
		t.Errorf("subject fact %q", got)
	}
	if e.Auth.Trust != o.Auth.Trust || e.Auth.Trust != contracts.TrustStrong || len(e.Auth.DKIM) != 1 || e.Auth.DKIM[0].Result != contracts.ResultPass {
		t.Errorf("explained auth %+v, outcome's %+v", e.Auth, o.Auth)
	}
	explained := map[string]contracts.FlagDecision{}
	for _, f := range e.Flags {
		explained[f.Flag] = f
	}
	for _, f := range rules.Known() {
		if _, ok := explained[f.Name]; !ok {
			t.Errorf("flag %s not explained", f.Name)
		}
	}
	if len(e.Flags) != len(rules.Known()) {
		t.Errorf("%d flags explained, want the %d known ones: %+v", len(e.Flags), len(rules.Known()), e.Flags)
	}
	for _, got := range o.Flags {
		want := explained[got.Flag]
		if want.Value != got.Value || (want.Rule == nil) != (got.Rule == nil) || (want.Rule != nil && *want.Rule != *got.Rule) {
			t.Errorf("%s: explained %+v, the worker decided %+v", got.Flag, want, got)
		}
	}

	held, err := explain("held@example.org", mail(t, "held@example.org", "held", b.rsaKey, "example.com", "s1"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range held.Flags {
		if f.Flag == rules.FlagPause && (f.Value != "true" || f.Rule == nil || f.Rule.Line != 1) {
			t.Errorf("held mail: mail.pause explained %+v, want the rule on line 1", f)
		}
	}

	if _, err := explain("bad@example.org", []byte("not a header\r\n\r\nbody\r\n")); workers.ClassOf(err) != workers.Malformed {
		t.Errorf("explaining a mail that is not RFC 5322: %v, want a malformed error", err)
	}

	// A key whose DNS server does not answer: no explanation, a DNS error
	// (a worker would hold the mail).
	silent := newKey(t, "ed25519", b.keys, "silent", "example.com")
	b.keys.SetFault(testkit.DNSName("silent", "example.com"), keyserver.FaultTimeout)
	if _, err := explain("silent@example.org", mail(t, "silent@example.org", "silent", silent, "example.com", "silent")); workers.ClassOf(err) != workers.DNS {
		t.Errorf("explaining a mail whose key lookup times out: %v (class %v), want a DNS error", err, workers.ClassOf(err))
	}
}
