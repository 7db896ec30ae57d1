package dev_test

import (
	"testing"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/workers"
)

// A large (claimed) mail held by mail.pause keeps its body in the claim
// bucket while held, is read from it at every look, and once resumed is
// processed from the object it adopted on its first delivery, which is
// then deleted.
func TestHeldClaimedMailResumes(t *testing.T) {
	b := setup(t, workers.Config{})
	b.putRules(t, rules.FlagPause, "rcpt:^big-held@ 10 true\n")
	b.sendSMTP(t, sizedMail(t, "big-held@example.org", 9<<20), "big-held@example.org")
	systest.WaitFor(t, "the large mail held", func() bool { return b.sys.Worker.Held() == 1 })
	if list, _ := b.claimObjects(t); len(list) != 1 || list[0].Headers.Get(contracts.ClaimAdopted) == "" {
		t.Fatalf("claim bucket while held: %d objects, want the held mail's, adopted", len(list))
	}
	checks := b.sys.Worker.HeldChecks()
	b.putRules(t, rules.FlagPause, "rcpt:^big-held@ 20 true\n")
	systest.WaitFor(t, "a look at the held mail", func() bool { return b.sys.Worker.HeldChecks() > checks })

	b.putRules(t, rules.FlagPause, "rcpt:^big-held@ 10 false\n")
	o := b.outcomes.First(t, "big-held@example.org")
	wantDisposition(t, o, contracts.Processed, "publish")
	if o.Summary == nil || o.Summary.Size != 9<<20 {
		t.Errorf("summary %+v, want the whole mail of %d bytes", o.Summary, 9<<20)
	}
	systest.WaitDrained(t, b.sys.JS)
	if list, chunks := b.claimObjects(t); len(list) != 0 || chunks != 0 {
		t.Errorf("claim bucket after the outcome: %d objects, %d chunks; want none", len(list), chunks)
	}
}
