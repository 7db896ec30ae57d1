package dev_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailscope/mailscope/auth"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/testkit"
	"github.com/mailscope/mailscope/workers"
)

// differentialDir is package auth's corpus signed by dkimpy, with its
// DNS zone (see gen.py there).
const differentialDir = "../auth/testdata/differential"

// Rules of the differential test: the verdict of a.example.test, the
// corpus's signing domain, decides the handler and whether the mail is
// strongly authenticated. Line numbers are checked.
const (
	differentialHandler = "dkim:a.example.test 10 publish\ndefault 0 quarantine\n"
	differentialStrong  = "dkim:a.example.test 10 true\ndefault 0 false\n"
)

// TestDifferentialCorpus sends every mail of the dkimpy corpus over SMTP
// through the whole system (producer, stream, worker), with its zone
// served by the test's DNS server on loopback and rules in the bucket
// that turn on the verdict, and checks each signature's result (the one
// RFC 6376 asks for, or the corpus's known deviation), the rule that
// decided the handler and the trust level.
func TestDifferentialCorpus(t *testing.T) {
	c, err := testkit.LoadCorpus(differentialDir)
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, workers.Config{Auth: auth.Config{Timeout: 2 * time.Second}})
	for _, r := range c.Zone {
		b.keys.SetTXT(r.Name, r.TTL, r.Value)
	}
	b.putRules(t, rules.FlagHandler, differentialHandler)
	b.putRules(t, rules.FlagDKIMStrong, differentialStrong)

	rcpt := func(i int) string { return fmt.Sprintf("case%02d@differential.test", i) }
	for i, cc := range c.Cases {
		b.sendSMTP(t, cc.Raw, rcpt(i))
	}
	for i, cc := range c.Cases {
		t.Run(cc.Name, func(t *testing.T) {
			o := b.outcomes.First(t, rcpt(i))
			want, reasons := cc.Expected()
			if len(o.Auth.DKIM) != len(want) {
				t.Fatalf("%d DKIM results %+v, want %d", len(o.Auth.DKIM), o.Auth.DKIM, len(want))
			}
			for j, got := range o.Auth.DKIM {
				if got.Domain != "a.example.test" || got.Result != want[j] || !strings.Contains(got.Reason, reasons[j]) {
					t.Errorf("signature %d: %+v, want d=a.example.test %s with a reason containing %q (dkimpy: %s; note: %s)",
						j, got, want[j], reasons[j], cc.DKIMPy[j], cc.Note)
				}
				if (got.Result == contracts.ResultPass) != (got.Reason == "") {
					t.Errorf("signature %d: %s with reason %q: only a pass has none", j, got.Result, got.Reason)
				}
			}
			if n := strings.Count(o.Auth.AuthenticationResults, "dkim="); n != len(want) {
				t.Errorf("Authentication-Results %q has %d dkim= results, want %d", o.Auth.AuthenticationResults, n, len(want))
			}
			if cc.Deviation != nil {
				t.Logf("known deviation: RFC 6376 asks for %v; %s", cc.Want, cc.Deviation.Why)
			}
			if pass := slices.Contains(want, contracts.ResultPass); pass {
				wantRule(t, o, rules.FlagHandler, "publish", 1)
				wantRule(t, o, rules.FlagDKIMStrong, "true", 1)
				if o.Handler != "publish" || o.Auth.Trust != contracts.TrustStrong {
					t.Errorf("handler %q trust %s, want publish and strong", o.Handler, o.Auth.Trust)
				}
			} else {
				wantRule(t, o, rules.FlagHandler, "quarantine", 2)
				if o.Handler != "quarantine" || o.Auth.Trust != contracts.TrustNone {
					t.Errorf("handler %q trust %s, want quarantine and none", o.Handler, o.Auth.Trust)
				}
			}
			for _, w := range want {
				if !strings.Contains(o.Auth.AuthenticationResults, "dkim="+w) {
					t.Errorf("Authentication-Results %q lacks dkim=%s", o.Auth.AuthenticationResults, w)
				}
			}
		})
	}
}
