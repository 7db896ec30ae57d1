package groupcommit_test

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/groupcommit"
	"github.com/mailscope/mailscope/systest"
)

// TestRetryForWaitsForTheStream: with RetryFor, a publish that finds no
// stream (no responders, as right after a server restart) is tried
// again, alone or in a batch, until the stream is there, and stored
// once; without RetryFor it fails at once.
func TestRetryForWaitsForTheStream(t *testing.T) {
	for name, group := range map[string]bool{"single": false, "group": true} {
		t.Run(name, func(t *testing.T) {
			b := setup(t)
			cfg := b.config(groupcommit.Config{Tries: 1})
			if _, err := groupcommit.Single(b.js, cfg).Publish(t.Context(), &nats.Msg{Subject: "late.a", Data: []byte("x")}, "no-retry"); !errors.Is(err, groupcommit.ErrNotStored) {
				t.Fatalf("without RetryFor: err %v, want ErrNotStored at once", err)
			}
			cfg.RetryFor = wait
			pub := groupcommit.Single(b.js, cfg)
			if group {
				pub = groupcommit.New(b.js, cfg)
			}
			type res struct {
				ack *jetstream.PubAck
				err error
			}
			done := make(chan res, 1)
			go func() {
				ack, err := pub.Publish(t.Context(), &nats.Msg{Subject: "late.a", Data: []byte("late")}, "late-1")
				done <- res{ack, err}
			}()
			systest.WaitFor(t, "a retry", func() bool { return pub.Stats().Retries > 0 })
			if _, err := b.js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "LATE", Subjects: []string{"late.>"},
				Storage: jetstream.FileStorage, AllowAtomicPublish: true}); err != nil {
				t.Fatal(err)
			}
			r := <-done
			if r.err != nil || r.ack.Stream != "LATE" || r.ack.Duplicate {
				t.Fatalf("ack %+v err %v, want stored in LATE once the stream exists", r.ack, r.err)
			}
			// Again, with the same id: a duplicate, success, no retry.
			retries := pub.Stats().Retries
			ack, err := pub.Publish(t.Context(), &nats.Msg{Subject: "late.a", Data: []byte("late")}, "late-1")
			if err != nil || !ack.Duplicate || ack.Sequence != r.ack.Sequence || pub.Stats().Retries != retries {
				t.Errorf("the same id again: ack %+v err %v retries %d (were %d), want a duplicate of seq %d without retry",
					ack, err, pub.Stats().Retries, retries, r.ack.Sequence)
			}
		})
	}
}

// TestRetryForNotOnRefusal: an answer from the server (here: a message
// over the stream's size cap) is not retried.
func TestRetryForNotOnRefusal(t *testing.T) {
	b := setupWith(t, options{maxBytes: 1 << 10})
	pub := groupcommit.Single(b.js, b.config(groupcommit.Config{RetryFor: wait}))
	_, err := pub.Publish(t.Context(), &nats.Msg{Subject: "events.big", Data: make([]byte, 4<<10)}, "big-1")
	var apiErr *jetstream.APIError
	if !errors.Is(err, groupcommit.ErrNotStored) || !errors.As(err, &apiErr) {
		t.Fatalf("err %v, want the server's refusal", err)
	}
	if r := pub.Stats().Retries; r != 0 {
		t.Errorf("%d retries of a refused message", r)
	}
	if groupcommit.Retryable(err) {
		t.Errorf("Retryable(%v) = true", err)
	}
}
