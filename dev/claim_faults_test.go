package dev_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/producer"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/workers"
)

// A claimed mail whose object cannot be its body is dead-lettered at
// once as malformed, never retried: the object is not in the claim
// bucket (a message published again after its mail was done, or by a
// producer that never wrote it), or it is not of the size the message
// says.
func TestClaimWithoutItsBodyIsDeadLettered(t *testing.T) {
	b := setup(t, workers.Config{})
	js := b.js(t, access.Producer)
	obs, err := js.ObjectStore(t.Context(), b.sys.Config.Worker.Names.ClaimBucket)
	if err != nil {
		t.Fatal(err)
	}
	pub := producer.NewPublisher(js, "", 0)
	send := func(rcpt string, claim contracts.Claim) {
		t.Helper()
		env := contracts.Envelope{MailFrom: "alice@example.com", RcptTo: []string{rcpt}, ReceivedAt: time.Now(), Protocol: "smtp", Claim: &claim}
		if _, err := pub.Publish(t.Context(), &env, nil); err != nil {
			t.Fatal(err)
		}
	}

	send("missing@example.org", contracts.Claim{Object: producer.NewClaimName(), Size: 4 << 20})

	raw := sizedMail(t, "resized@example.org", 2<<20)
	name := producer.NewClaimName()
	if _, err := obs.Put(t.Context(), jetstream.ObjectMeta{Name: name}, bytes.NewReader(raw)); err != nil {
		t.Fatal(err)
	}
	send("resized@example.org", contracts.Claim{Object: name, Size: int64(len(raw)) + 7})

	for _, c := range []struct{ rcpt, reason string }{
		{"missing@example.org", "not in bucket"},
		{"resized@example.org", fmt.Sprintf("object of %d bytes, the message says %d", len(raw), len(raw)+7)},
	} {
		o := b.outcomes.First(t, c.rcpt)
		if o.Disposition != contracts.Dead || o.Attempt != 1 || !strings.Contains(o.Reason, c.reason) {
			t.Errorf("%s: %s at attempt %d, reason %q; want dead at once saying %q", c.rcpt, o.Disposition, o.Attempt, o.Reason, c.reason)
		}
	}
	// The dead letter of the claimed mail refers to its object, which
	// stays for the operator (docs/architecture.md, "Large mail").
	dead, err := b.sys.JS.Stream(t.Context(), "MAIL_DEAD")
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	systest.WaitFor(t, "the dead letters", func() bool {
		info, err := dead.Info(t.Context())
		if err != nil || info.State.Msgs < 2 {
			return false
		}
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
			if m, err := dead.GetMsg(t.Context(), seq); err == nil && m.Header.Get(contracts.HeaderClaim) == name {
				found = true
			}
		}
		return true
	})
	if !found {
		t.Errorf("no dead letter refers to object %s", name)
	}
	if list, _ := b.claimObjects(t); len(list) != 1 || list[0].Name != name {
		t.Errorf("claim bucket holds %d objects, want only %s, kept with its dead letter", len(list), name)
	}
}
