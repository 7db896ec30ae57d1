package dev_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/producer"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/workers"
)

// A large mail's body that a producer wrote to the claim bucket but never
// referenced (it stopped before storing the message) is deleted by the
// workers' orphan collector once it is older than OrphanAge and the mail
// stream holds nothing that could still reference it; a claimed mail
// sent meanwhile is processed from its own object, which it deletes.
func TestOrphanedClaimIsCollected(t *testing.T) {
	b := setup(t, workers.Config{OrphanAge: 200 * time.Millisecond})
	bucket := b.sys.Config.Worker.Names.ClaimBucket
	obs, err := b.js(t, access.Producer).ObjectStore(t.Context(), bucket)
	if err != nil {
		t.Fatal(err)
	}
	name := producer.NewClaimName()
	if _, err := obs.Put(t.Context(), jetstream.ObjectMeta{Name: name,
		Headers: nats.Header{contracts.HeaderMailFrom: []string{"alice@example.com"}}},
		bytes.NewReader(sizedMail(t, "never@example.org", 2<<20))); err != nil {
		t.Fatal(err)
	}

	b.sendSMTP(t, sizedMail(t, "claimed@example.org", 9<<20), "claimed@example.org")
	o := b.outcomes.First(t, "claimed@example.org")
	wantDisposition(t, o, contracts.Processed, "publish")

	op, err := b.js(t, access.Operator).ObjectStore(t.Context(), bucket)
	if err != nil {
		t.Fatal(err)
	}
	systest.WaitFor(t, "the orphaned object deleted", func() bool {
		_, err := op.GetInfo(t.Context(), name)
		return errors.Is(err, jetstream.ErrObjectNotFound)
	})
	// The claimed mail's object goes after its outcome is stored, before
	// its ack: nothing is left once the mail is done.
	systest.WaitDrained(t, b.sys.JS)
	if list, chunks := b.claimObjects(t); len(list) != 0 || chunks != 0 {
		t.Errorf("claim bucket holds %d objects, %d chunks after the collection; want none", len(list), chunks)
	}
}
