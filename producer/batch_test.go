package producer_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/producer"
	"github.com/mailscope/mailscope/provision"
)

// oneBatch makes a publisher whose batches hold exactly n mails: the
// window is long (a bound against hangs, never reached by a passing
// test), so a batch is committed when, and only when, it is full.
func (b *bundle) oneBatch(n int) *producer.Publisher {
	return producer.NewBatchPublisher(b.js, "", wait, producer.Batching{Window: wait, MaxMsgs: n, MinMsgs: 2})
}

// result is one concurrent caller's answer.
type result struct {
	env contracts.Envelope
	ack *jetstream.PubAck
	err error
}

// publishAll publishes one mail per envelope, all at once, and returns
// every caller's answer in the order of envs.
func publishAll(t *testing.T, pub *producer.Publisher, envs []contracts.Envelope, raw func(i int) []byte) []result {
	t.Helper()
	res := make([]result, len(envs))
	var wg sync.WaitGroup
	for i := range envs {
		res[i].env = envs[i]
		wg.Go(func() {
			res[i].ack, res[i].err = pub.Publish(t.Context(), &res[i].env, raw(i))
		})
	}
	wg.Wait()
	return res
}

func envelopes(ids ...string) []contracts.Envelope {
	envs := make([]contracts.Envelope, len(ids))
	for i, id := range ids {
		envs[i] = contracts.Envelope{ID: id, RcptTo: []string{fmt.Sprintf("rcpt%d@example.org", i)}, Protocol: "publish"}
	}
	return envs
}

func mailNumbered(i int) []byte {
	return []byte(fmt.Sprintf("Subject: mail %d\r\n\r\nbody %d\r\n", i, i))
}

// TestBatchCommit: concurrent mails are stored as one batch (package
// groupcommit tests the mechanism); each caller gets the acknowledgement
// of its own mail, stored with its envelope and its id as dedup id.
func TestBatchCommit(t *testing.T) {
	b := setup(t)
	const n = 5
	pub := b.oneBatch(n)
	res := publishAll(t, pub, envelopes("", "", "", "", ""), mailNumbered)

	if s := pub.Stats(); s.Batches != 1 || s.BatchedMails != n || s.Alone != 0 || s.Failed != 0 {
		t.Fatalf("stats %+v, want one batch of %d", s, n)
	}
	var seqs []uint64
	for i, r := range res {
		if r.err != nil {
			t.Fatalf("caller %d: %v", i, r.err)
		}
		if r.ack.Stream != b.names.MailStream || r.ack.Duplicate {
			t.Errorf("caller %d: ack %+v", i, r.ack)
		}
		seqs = append(seqs, r.ack.Sequence)
		// The acknowledged sequence holds this caller's mail.
		msg, err := b.streamObj.GetMsg(t.Context(), r.ack.Sequence)
		if err != nil {
			t.Fatalf("caller %d: seq %d: %v", i, r.ack.Sequence, err)
		}
		env, err := contracts.DecodeEnvelope(msg.Header)
		if err != nil {
			t.Fatalf("caller %d: stored envelope: %v", i, err)
		}
		if env.ID != r.env.ID || !slices.Equal(env.RcptTo, r.env.RcptTo) || !bytes.Equal(msg.Data, mailNumbered(i)) {
			t.Errorf("caller %d: seq %d holds id %q rcpt %q data %q; want id %q rcpt %q data %q",
				i, r.ack.Sequence, env.ID, env.RcptTo, msg.Data, r.env.ID, r.env.RcptTo, mailNumbered(i))
		}
	}
	slices.Sort(seqs)
	if !slices.Equal(seqs, []uint64{1, 2, 3, 4, 5}) {
		t.Errorf("sequences %v, want 1..5", seqs)
	}
	if got := b.count(t); got != n {
		t.Errorf("stream holds %d mails, want %d", got, n)
	}
}

// TestBatchFailureAnswers451: a batch the server refuses as a whole (a
// stream too small for it) answers every transaction of it 451 4.3.0,
// none 250, although some of the mails alone would have fitted.
func TestBatchFailureAnswers451(t *testing.T) {
	const n = 4
	b := setupWith(t, options{
		provision: provision.Config{MailMaxBytes: 3 << 10},
		producer:  producer.Config{Batch: producer.Batching{Window: wait, MaxMsgs: n, MinMsgs: 2}},
	})
	raw := mailOfSize(t, 1<<10)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			rcpt := fmt.Sprintf("rcpt%d@example.org", i)
			errs[i] = b.sendSMTP(t, "alice@example.com", []string{rcpt}, raw)
		})
	}
	wg.Wait()
	for i, err := range errs {
		wantReply(t, fmt.Sprintf("transaction %d of a failed batch", i), err, 451, smtp.EnhancedCode{4, 3, 0})
	}
	if got := b.count(t); got != 0 {
		t.Errorf("stream holds %d mails, want none", got)
	}
	if s := b.p.PublishStats(); s.Failed != 1 {
		t.Errorf("stats %+v, want one failed batch", s)
	}
}

// TestBatchDedup: a mail published again with its envelope's id, in a
// batch, is acknowledged as a duplicate of the stored one (the server
// refuses the batch; its mails are then stored one by one, where dedup
// works), and the others are stored.
func TestBatchDedup(t *testing.T) {
	b := setup(t)
	first, err := producer.NewPublisher(b.js, "", wait).Publish(t.Context(), &envelopes("dup-1")[0], mailNumbered(0))
	if err != nil {
		t.Fatal(err)
	}
	pub := b.oneBatch(5)
	res := publishAll(t, pub, envelopes("dup-1", "new-1", "new-2", "new-3", "new-4"), mailNumbered)
	for i, r := range res {
		if r.err != nil {
			t.Fatalf("caller %d (%s): %v", i, r.env.ID, r.err)
		}
		wantDup := r.env.ID == "dup-1"
		if r.ack.Duplicate != wantDup || (wantDup && r.ack.Sequence != first.Sequence) {
			t.Errorf("caller %d (%s): ack %+v, want duplicate %v (of seq %d)", i, r.env.ID, r.ack, wantDup, first.Sequence)
		}
	}
	if got := b.count(t); got != 5 {
		t.Errorf("stream holds %d mails, want 5", got)
	}
	if s := pub.Stats(); s.Fallbacks != 1 || s.Failed != 0 {
		t.Errorf("stats %+v, want 1 fallback, no failure", s)
	}
}

// TestBatchingDefaults: the effective configuration states the group
// commit defaults, and the producer's logger.
func TestBatchingDefaults(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	got := producer.Config{Logger: logger}.WithDefaults(0).Batch
	want := producer.Batching{Inflight: 1, MinMsgs: 8, MaxMsgs: 100, MaxBytes: 4 << 20, Logger: logger}
	if got != want {
		t.Errorf("Batch %+v, want %+v", got, want)
	}
	if got := (producer.Config{Batch: producer.Batching{MinMsgs: 1}}).WithDefaults(0).Batch.MinMsgs; got != 2 {
		t.Errorf("MinMsgs 1 became %d, want 2", got)
	}
}

// TestBatchingOff: with Batch.Off every mail is stored on its own.
func TestBatchingOff(t *testing.T) {
	b := setupWith(t, options{producer: producer.Config{Batch: producer.Batching{Off: true}}})
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			if err := b.sendSMTP(t, "alice@example.com", []string{fmt.Sprintf("r%d@example.org", i)}, sample("bob@example.org")); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if s := b.p.PublishStats(); s.Alone != 10 || s.Batches != 0 {
		t.Errorf("stats %+v, want 10 mails alone", s)
	}
}
