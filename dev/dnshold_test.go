package dev_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mailscope/mailscope/auth"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/keyserver"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/testkit"
	"github.com/mailscope/mailscope/workers"
)

// TestDNSHoldIsBounded: a mail whose key lookups answer SERVFAIL on every
// attempt is held for DNS, and once it has been held for DNSHoldMax it is
// decided with dkim=temperror recorded, so that a rule on trust decides
// it and it gets an outcome instead of waiting forever. A mail held by
// mail.pause meanwhile stays held: pauses are not bounded.
func TestDNSHoldIsBounded(t *testing.T) {
	const bound = 300 * time.Millisecond
	b := setup(t, workers.Config{MaxAttempts: 2, BackoffBase: time.Millisecond, BackoffMax: time.Millisecond,
		HoldDelay: 20 * time.Millisecond, DNSHoldMax: bound, Auth: auth.Config{Timeout: 50 * time.Millisecond, Retries: -1}})
	k := newKey(t, "ed25519", b.keys, "broken", "example.com")
	b.keys.SetFault(testkit.DNSName("broken", "example.com"), keyserver.FaultServFail)
	b.putRules(t, rules.FlagHandler, "trust:none 10 quarantine\n")
	b.putRules(t, rules.FlagPause, "rcpt:^paused@ 10 true\n")

	b.sendSMTP(t, mail(t, "paused@example.org", "paused", nil, "", ""), "paused@example.org")
	start := time.Now()
	b.sendSMTP(t, mail(t, "servfail@example.org", "servfail", k, "example.com", "broken"), "servfail@example.org")
	o := b.outcomes.First(t, "servfail@example.org")
	if held := time.Since(start); held < bound {
		t.Errorf("decided %v after it was sent, before the DNS hold bound of %v", held, bound)
	}
	wantDKIM(t, o, "example.com", "broken", "ed25519-sha256", contracts.ResultTempError)
	if o.Auth.Trust != contracts.TrustNone {
		t.Errorf("trust %s, want none", o.Auth.Trust)
	}
	wantRule(t, o, rules.FlagHandler, "quarantine", 1)
	wantDisposition(t, o, contracts.Quarantined, "quarantine")
	if !strings.Contains(o.Auth.Note, "DNS hold bound") {
		t.Errorf("auth note %q does not say the DNS hold bound decided it", o.Auth.Note)
	}
	if n := b.streamCount(t, "MAIL_DEAD"); n != 0 {
		t.Errorf("%d dead letters: DNS must never dead-letter a mail", n)
	}

	// The paused mail is still held, for its own reason.
	systest.WaitFor(t, "only the paused mail to be held", func() bool { return b.sys.Worker.Held() == 1 })
	if got := len(b.outcomes.All()["paused@example.org"]); got != 0 {
		t.Errorf("the paused mail has %d outcomes while paused", got)
	}
}
