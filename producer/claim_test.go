package producer_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/emersion/go-smtp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/producer"
	"github.com/mailscope/mailscope/provision"
)

// claims returns the claim bucket and its stream as the operator sees
// them (the operator may read both).
func (b *bundle) claims(t *testing.T) (jetstream.ObjectStore, jetstream.Stream) {
	t.Helper()
	js := b.sys.JetStream(t, access.Operator)
	obs, err := js.ObjectStore(t.Context(), b.names.ClaimBucket)
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(t.Context(), "OBJ_"+b.names.ClaimBucket)
	if err != nil {
		t.Fatal(err)
	}
	return obs, s
}

// objects returns the live objects of the claim bucket.
func objects(t *testing.T, obs jetstream.ObjectStore) []*jetstream.ObjectInfo {
	t.Helper()
	list, err := obs.List(t.Context())
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return list
}

// chunks returns how many chunk messages the claim bucket's stream holds.
func chunks(t *testing.T, s jetstream.Stream, bucket string) uint64 {
	t.Helper()
	info, err := s.Info(t.Context(), jetstream.WithSubjectFilter("$O."+bucket+".C.>"))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n
}

const threshold = 64 << 10

// TestClaimThresholdBoundary: a mail of exactly ClaimThreshold bytes is
// stored inline; one byte more goes by claim check: empty data, the
// reference in the headers, the mail's content id as its id, and the
// object holding the mail byte for byte, in full chunks.
func TestClaimThresholdBoundary(t *testing.T) {
	b := setupWith(t, options{producer: producer.Config{ClaimThreshold: threshold}})
	obs, _ := b.claims(t)
	rcpts := []string{"bob@example.org", "carol@example.net"}

	inline := mailOfSize(t, threshold)
	if err := b.sendSMTP(t, "alice@example.com", rcpts, inline); err != nil {
		t.Fatal(err)
	}
	if msg, env := b.last(t); !bytes.Equal(msg.Data, inline) || env.Claim != nil {
		t.Fatalf("mail of the threshold: %d bytes inline, claim %+v; want inline", len(msg.Data), env.Claim)
	}
	if n := len(objects(t, obs)); n != 0 {
		t.Fatalf("%d objects for an inline mail", n)
	}

	for _, size := range []int{threshold + 1, 3 << 20} {
		raw := mailOfSize(t, size)
		if err := b.sendSMTP(t, "alice@example.com", rcpts, raw); err != nil {
			t.Fatalf("%d bytes: %v", size, err)
		}
		msg, env := b.last(t)
		if len(msg.Data) != 0 || env.Claim == nil || env.Claim.Size != int64(size) {
			t.Fatalf("%d bytes: data %d bytes, claim %+v; want a claim", size, len(msg.Data), env.Claim)
		}
		if want := contracts.ContentID("alice@example.com", rcpts, raw); env.ID != want {
			t.Errorf("%d bytes: id %s, want the content id %s", size, env.ID, want)
		}
		got, err := obs.GetBytes(t.Context(), env.Claim.Object)
		if err != nil || !bytes.Equal(got, raw) {
			t.Fatalf("%d bytes: object %s holds %d bytes (%v), want the mail", size, env.Claim.Object, len(got), err)
		}
		info, err := obs.GetInfo(t.Context(), env.Claim.Object)
		if err != nil {
			t.Fatal(err)
		}
		if want := (size + 128<<10 - 1) / (128 << 10); int(info.Chunks) != want {
			t.Errorf("%d bytes in %d chunks, want %d full ones", size, info.Chunks, want)
		}
	}
	if n := len(objects(t, obs)); n != 2 {
		t.Errorf("%d objects, want one per claimed mail", n)
	}
}

// TestClaimDuplicate: the same large mail sent twice (an MTA that did
// not see the first 250) is stored once, and the second object is
// deleted at once: the stored message references the first.
func TestClaimDuplicate(t *testing.T) {
	b := setupWith(t, options{producer: producer.Config{ClaimThreshold: threshold}})
	obs, s := b.claims(t)
	raw := mailOfSize(t, 300<<10)
	for range 2 {
		if err := b.sendSMTP(t, "alice@example.com", []string{"bob@example.org"}, raw); err != nil {
			t.Fatal(err)
		}
	}
	if n := b.count(t); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
	_, env := b.last(t)
	list := objects(t, obs)
	if len(list) != 1 || list[0].Name != env.Claim.Object {
		t.Errorf("objects %v, want only %s, the stored message's", list, env.Claim.Object)
	}
	if n := chunks(t, s, b.names.ClaimBucket); n != 3 {
		t.Errorf("%d chunks stored, want the 3 of one object", n)
	}
}

// TestClaimOverMaxSize: a large mail over MaxSize is refused 552 5.3.4
// and what was written of its object is gone; the connection goes on.
func TestClaimOverMaxSize(t *testing.T) {
	const max = 1 << 20
	b := setupWith(t, options{producer: producer.Config{ClaimThreshold: threshold, MaxSize: max}})
	obs, s := b.claims(t)
	c, _ := b.dial(t, false, "client.test")
	err := c.SendMail("alice@example.com", []string{"bob@example.org"}, bytes.NewReader(mailOfSize(t, max+512<<10)))
	wantReply(t, "claimed over-size", err, 552, smtp.EnhancedCode{5, 3, 4})
	if err := c.SendMail("alice@example.com", []string{"bob@example.org"}, bytes.NewReader(mailOfSize(t, max-1))); err != nil {
		t.Errorf("large mail under MaxSize after the refused one: %v", err)
	}
	if n := b.count(t); n != 1 {
		t.Errorf("%d messages, want the accepted mail's", n)
	}
	_, env := b.last(t)
	if list := objects(t, obs); len(list) != 1 || list[0].Name != env.Claim.Object {
		t.Errorf("objects %v, want only the accepted mail's", list)
	}
	if n := chunks(t, s, b.names.ClaimBucket); n != 8 {
		t.Errorf("%d chunks stored, want the 8 of the accepted mail", n)
	}
}

// TestClaimNotStored: when the server refuses the mail's message (here a full
// mail stream), the MTA gets 451 and the object written for it is
// deleted: nothing is left that no message references.
func TestClaimNotStored(t *testing.T) {
	b := setupWith(t, options{producer: producer.Config{ClaimThreshold: threshold}, provision: provision.Config{MailMaxBytes: 64}})
	obs, s := b.claims(t)
	err := b.sendSMTP(t, "alice@example.com", []string{"bob@example.org"}, mailOfSize(t, 200<<10))
	wantReply(t, "claimed mail, message refused", err, 451, smtp.EnhancedCode{4, 3, 0})
	if list := objects(t, obs); len(list) != 0 {
		t.Errorf("objects left: %v", list)
	}
	if n := chunks(t, s, b.names.ClaimBucket); n != 0 {
		t.Errorf("%d chunks left", n)
	}
}

// TestClaimBucketMissing: without the claim bucket, a large mail gets
// 451 (the MTA keeps it) and small mail still goes through.
func TestClaimBucketMissing(t *testing.T) {
	b := setupWith(t, options{producer: producer.Config{ClaimThreshold: threshold}})
	if err := b.sys.Admin(t).DeleteObjectStore(t.Context(), b.names.ClaimBucket); err != nil {
		t.Fatal(err)
	}
	err := b.sendSMTP(t, "alice@example.com", []string{"bob@example.org"}, mailOfSize(t, 200<<10))
	wantReply(t, "large mail without a claim bucket", err, 451, smtp.EnhancedCode{4, 3, 0})
	if err := b.sendSMTP(t, "alice@example.com", []string{"bob@example.org"}, sample("bob@example.org")); err != nil {
		t.Errorf("small mail: %v", err)
	}
}
