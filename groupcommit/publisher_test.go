package groupcommit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/groupcommit"
)

// checkStored fails unless each caller's acknowledgement names a
// sequence of the stream that holds that caller's message, with its id.
func checkStored(t *testing.T, b *bundle, msgs []message, res []result) {
	t.Helper()
	for i, r := range res {
		if r.err != nil {
			t.Fatalf("caller %d (%s): %v", i, msgs[i].id, r.err)
		}
		if r.ack.Stream != "EVENTS" || r.ack.Duplicate {
			t.Errorf("caller %d: ack %+v", i, r.ack)
		}
		got := b.stored(t, r.ack.Sequence)
		if got.Subject != msgs[i].subject || !bytes.Equal(got.Data, msgs[i].data) ||
			got.Header.Get(jetstream.MsgIDHeader) != msgs[i].id || got.Header.Get("Event-Kind") != "test" {
			t.Errorf("caller %d: seq %d holds %s %q id %q; want %s %q id %q", i, r.ack.Sequence,
				got.Subject, got.Data, got.Header.Get(jetstream.MsgIDHeader), msgs[i].subject, msgs[i].data, msgs[i].id)
		}
	}
}

// TestBatchCommit: concurrent messages are stored as one batch; each
// caller gets the acknowledgement of its own message, and its headers are
// left as they were.
func TestBatchCommit(t *testing.T) {
	b := setup(t)
	const n = 5
	pub := b.oneBatch(n)
	msgs := numbered("events.a", "commit", n)
	before := make([]nats.Header, n)
	for i, m := range msgs {
		before[i] = maps.Clone(m.header)
	}
	res := publishAll(t, pub, msgs)

	if s := pub.Stats(); s != (groupcommit.Stats{Batches: 1, BatchedMails: n}) {
		t.Fatalf("stats %+v, want one batch of %d", s, n)
	}
	checkStored(t, b, msgs, res)
	var seqs []uint64
	for i, r := range res {
		seqs = append(seqs, r.ack.Sequence)
		if !maps.EqualFunc(msgs[i].header, before[i], slices.Equal) {
			t.Errorf("caller %d: headers changed to %v", i, msgs[i].header)
		}
	}
	slices.Sort(seqs)
	if !slices.Equal(seqs, []uint64{1, 2, 3, 4, 5}) {
		t.Errorf("sequences %v, want 1..5", seqs)
	}
	if got := b.count(t); got != n {
		t.Errorf("stream holds %d messages, want %d", got, n)
	}
}

// TestBatchAcrossSubjects: messages on different subjects of one stream
// go in one batch, and every one is acknowledged with its own sequence.
func TestBatchAcrossSubjects(t *testing.T) {
	b := setup(t)
	var msgs []message
	for _, subject := range []string{"events.processed", "events.rejected", "events.dead.x", "events.processed"} {
		msgs = append(msgs, numbered(subject, subject, 2)...)
	}
	for i := range msgs {
		msgs[i].id += string(rune('a' + i))
	}
	pub := b.oneBatch(len(msgs))
	res := publishAll(t, pub, msgs)
	if s := pub.Stats(); s.Batches != 1 || s.BatchedMails != int64(len(msgs)) || s.Alone != 0 {
		t.Fatalf("stats %+v, want one batch of %d", s, len(msgs))
	}
	checkStored(t, b, msgs, res)
	if got := b.count(t); got != uint64(len(msgs)) {
		t.Errorf("stream holds %d messages, want %d", got, len(msgs))
	}
}

// TestEveryCallerAnswered: under many concurrent callers with the
// default settings every caller gets its own, distinct sequence, and the
// stream holds each message once.
func TestEveryCallerAnswered(t *testing.T) {
	b := setup(t)
	const n = 300
	pub := groupcommit.New(b.js, b.config(groupcommit.Config{}))
	msgs := numbered("events.load", "load", n)
	res := publishAll(t, pub, msgs)
	checkStored(t, b, msgs, res)
	seen := map[uint64]int{}
	for i, r := range res {
		if j, dup := seen[r.ack.Sequence]; dup {
			t.Fatalf("callers %d and %d both got sequence %d", j, i, r.ack.Sequence)
		}
		seen[r.ack.Sequence] = i
	}
	if got := b.count(t); got != n {
		t.Errorf("stream holds %d messages, want %d", got, n)
	}
	s := pub.Stats()
	if s.BatchedMails+s.Alone != n || s.Failed != 0 || s.Fallbacks != 0 {
		t.Errorf("stats %+v: want %d messages stored, no failure, no fallback", s, n)
	}
	t.Logf("stats %+v", s)
}

// TestBatchFailureFailsAll: a batch the server refuses fails every
// message in it, although some of them alone would have fitted; none is
// stored.
func TestBatchFailureFailsAll(t *testing.T) {
	b := setupWith(t, options{maxBytes: 4 << 10})
	const n = 5
	pub := b.oneBatch(n)
	msgs := numbered("events.big", "big", n)
	for i := range msgs {
		msgs[i].data = bytes.Repeat([]byte{'x'}, 1<<10)
	}
	for i, r := range publishAll(t, pub, msgs) {
		if !errors.Is(r.err, groupcommit.ErrNotStored) || r.ack != nil {
			t.Errorf("caller %d: ack %v err %v, want ErrNotStored", i, r.ack, r.err)
		}
	}
	if s := pub.Stats(); s.Failed != 1 || s.Batches != 0 {
		t.Errorf("stats %+v, want one failed batch", s)
	}
	if got := b.count(t); got != 0 {
		t.Errorf("stream holds %d messages, want none", got)
	}
}

// TestBatchDedup: the server refuses a batch holding an id it has seen
// (dedup does not work inside atomic batches); the publisher then stores
// the batch's messages one by one, where dedup does work: the repeated
// message is acknowledged as a duplicate of the stored one, the others
// stored.
func TestBatchDedup(t *testing.T) {
	b := setup(t)
	first, err := groupcommit.Single(b.js, b.config(groupcommit.Config{})).
		Publish(t.Context(), numbered("events.a", "dup", 1)[0].msg(), "dup-1")
	if err != nil {
		t.Fatal(err)
	}

	pub := b.oneBatch(5)
	msgs := numbered("events.a", "new", 5)
	msgs[0].id = "dup-1"
	for i, r := range publishAll(t, pub, msgs) {
		if r.err != nil {
			t.Fatalf("caller %d (%s): %v", i, msgs[i].id, r.err)
		}
		wantDup := msgs[i].id == "dup-1"
		if r.ack.Duplicate != wantDup || (wantDup && r.ack.Sequence != first.Sequence) {
			t.Errorf("caller %d (%s): ack %+v, want duplicate %v (of seq %d)", i, msgs[i].id, r.ack, wantDup, first.Sequence)
		}
	}
	if got := b.count(t); got != 5 {
		t.Errorf("stream holds %d messages, want 5", got)
	}

	// The same id twice in one batch: stored once, both callers answered.
	msgs = numbered("events.b", "more", 5)
	msgs[1].id = msgs[0].id
	dups := 0
	for i, r := range publishAll(t, pub, msgs) {
		if r.err != nil {
			t.Fatalf("caller %d (%s): %v", i, msgs[i].id, r.err)
		}
		if r.ack.Duplicate {
			dups++
		}
	}
	if dups != 1 {
		t.Errorf("%d duplicate acks, want 1", dups)
	}
	if got := b.count(t); got != 9 {
		t.Errorf("stream holds %d messages, want 9", got)
	}
	if s := pub.Stats(); s.Fallbacks != 2 || s.Failed != 0 {
		t.Errorf("stats %+v, want 2 fallbacks, no failure", s)
	}
}

// TestRepublishIsDuplicate: a message published again with the id of a
// stored one, by a single or a group-committing publisher, is
// acknowledged as a duplicate of it (Duplicate set, the stored sequence)
// and not stored twice.
func TestRepublishIsDuplicate(t *testing.T) {
	b := setup(t)
	m := numbered("events.a", "once", 1)[0]
	single := groupcommit.Single(b.js, b.config(groupcommit.Config{}))
	first, err := single.Publish(t.Context(), m.msg(), m.id)
	if err != nil {
		t.Fatal(err)
	}
	if first.Duplicate {
		t.Fatalf("first publish: ack %+v, want no duplicate", first)
	}
	for name, pub := range map[string]*groupcommit.Publisher{
		"single": single,
		"group":  groupcommit.New(b.js, b.config(groupcommit.Config{})),
	} {
		ack, err := pub.Publish(t.Context(), m.msg(), m.id)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !ack.Duplicate || ack.Sequence != first.Sequence {
			t.Errorf("%s: ack %+v, want a duplicate of seq %d", name, ack, first.Sequence)
		}
	}
	if got := b.count(t); got != 1 {
		t.Errorf("stream holds %d messages, want 1", got)
	}
}

// TestWithoutAtomicStream: a stream that does not allow atomic publish
// still gets every message, one by one, with one warning.
func TestWithoutAtomicStream(t *testing.T) {
	b := setupWith(t, options{noAtomic: true})
	pub := b.oneBatch(3)
	for round := range 2 {
		msgs := numbered("events.a", fmt.Sprint("round", round), 3)
		checkStored(t, b, msgs, publishAll(t, pub, msgs))
	}
	if got := b.count(t); got != 6 {
		t.Errorf("stream holds %d messages, want 6", got)
	}
	// The first batch is refused; then the publisher stops trying for a
	// while and publishes message by message at once.
	if s := pub.Stats(); s.Fallbacks != 1 || s.Alone != 6 || s.Batches != 0 {
		t.Errorf("stats %+v, want 1 fallback and 6 messages alone", s)
	}
	if got := strings.Count(b.logs.String(), "does not allow atomic publish"); got != 1 {
		t.Errorf("%d warnings logged, want 1: %q", got, b.logs.String())
	}
}

// TestLoneMessageWithWindow: with a window, a lone message is committed
// once the window has passed, without company.
func TestLoneMessageWithWindow(t *testing.T) {
	b := setup(t)
	pub := groupcommit.New(b.js, b.config(groupcommit.Config{Window: 5 * time.Millisecond}))
	msgs := numbered("events.a", "lone", 1)
	checkStored(t, b, msgs, publishAll(t, pub, msgs))
	if s := pub.Stats(); s.Alone != 1 {
		t.Errorf("stats %+v, want the message alone", s)
	}
}

// TestAbandonedLeavesBatch: a caller that gives up before its message is
// in a batch gets ErrNotStored at once, and its message is never stored.
func TestAbandonedLeavesBatch(t *testing.T) {
	b := setup(t)
	pub := b.oneBatch(3)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	gone := numbered("events.a", "gone", 1)[0]
	if ack, err := pub.Publish(ctx, gone.msg(), gone.id); !errors.Is(err, groupcommit.ErrNotStored) || !errors.Is(err, context.Canceled) {
		t.Fatalf("ack %v err %v, want ErrNotStored (context canceled)", ack, err)
	}
	// The batch fills with the abandoned message, which is dropped.
	msgs := numbered("events.a", "kept", 2)
	checkStored(t, b, msgs, publishAll(t, pub, msgs))
	if s := pub.Stats(); s != (groupcommit.Stats{Batches: 1, BatchedMails: 2}) {
		t.Errorf("stats %+v, want one batch of 2", s)
	}
	if got := b.count(t); got != 2 {
		t.Errorf("stream holds %d messages, want 2", got)
	}
}

// TestHeadersOwned: the publisher sets Nats-Msg-Id and the batch headers
// on what it sends, never on the caller's message, and never sends batch
// headers the caller's message carries (a copy of a stored message):
// with them the server would take it for part of a batch.
func TestHeadersOwned(t *testing.T) {
	b := setup(t)
	stale := func() nats.Header {
		return nats.Header{"Event-Kind": {"test"}, "Nats-Batch-Id": {"stale"}, "Nats-Batch-Sequence": {"7"}, "Nats-Batch-Commit": {"1"}}
	}
	for name, pub := range map[string]*groupcommit.Publisher{
		"single": groupcommit.Single(b.js, b.config(groupcommit.Config{})),
		"batch":  b.oneBatch(2),
	} {
		msgs := numbered("events."+name, name, 2)
		for i := range msgs {
			msgs[i].header = stale()
		}
		res := publishAll(t, pub, msgs)
		checkStored(t, b, msgs, res)
		for i, r := range res {
			if !maps.EqualFunc(msgs[i].header, stale(), slices.Equal) {
				t.Errorf("%s caller %d: headers changed to %v", name, i, msgs[i].header)
			}
			got := b.stored(t, r.ack.Sequence).Header
			if got.Get("Nats-Batch-Id") == "stale" || got.Get("Nats-Batch-Sequence") == "7" {
				t.Errorf("%s caller %d: stored with the caller's batch headers: %v", name, i, got)
			}
		}
	}
}
