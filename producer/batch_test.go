package producer_test

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/producer"
	"github.com/mailscope/mailscope/provision"
)

// allowAtomic lets the mail stream take atomic batches, whatever
// provisioning set.
func (b *bundle) allowAtomic(t *testing.T) {
	t.Helper()
	info, err := b.streamObj.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	cfg := info.Config
	cfg.AllowAtomicPublish = true
	if _, err := b.js.UpdateStream(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
}

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

// TestBatchCommit: concurrent mails are stored as one batch; each caller
// gets the acknowledgement of its own mail.
func TestBatchCommit(t *testing.T) {
	b := setup(t)
	b.allowAtomic(t)
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

// TestBatchEveryCallerAnswered: under many concurrent callers with the
// default settings every caller gets its own, distinct sequence, and the
// stream holds each mail once.
func TestBatchEveryCallerAnswered(t *testing.T) {
	b := setup(t)
	b.allowAtomic(t)
	const n = 300
	pub := producer.NewBatchPublisher(b.js, "", wait, producer.Batching{})
	res := publishAll(t, pub, make([]contracts.Envelope, n), func(int) []byte { return sample("bob@example.org") })
	seen := map[uint64]int{}
	for i, r := range res {
		if r.err != nil {
			t.Fatalf("caller %d: %v", i, r.err)
		}
		if j, dup := seen[r.ack.Sequence]; dup {
			t.Fatalf("callers %d and %d both got sequence %d", j, i, r.ack.Sequence)
		}
		seen[r.ack.Sequence] = i
	}
	if got := b.count(t); got != n {
		t.Errorf("stream holds %d mails, want %d", got, n)
	}
	s := pub.Stats()
	if s.BatchedMails+s.Alone != n || s.Failed != 0 || s.Fallbacks != 0 {
		t.Errorf("stats %+v: want %d mails stored, no failure, no fallback", s, n)
	}
	t.Logf("stats %+v", s)
}

// TestBatchFailureFailsAll: a batch the server refuses fails every mail
// in it, although some of them alone would have fitted; none is stored.
func TestBatchFailureFailsAll(t *testing.T) {
	b := setupWith(t, options{provision: provision.Config{MailMaxBytes: 4 << 10}})
	b.allowAtomic(t)
	const n = 5
	pub := b.oneBatch(n)
	raw := mailOfSize(t, 1<<10)
	res := publishAll(t, pub, make([]contracts.Envelope, n), func(int) []byte { return raw })
	for i, r := range res {
		if !errors.Is(r.err, producer.ErrNotStored) || r.ack != nil {
			t.Errorf("caller %d: ack %v err %v, want ErrNotStored", i, r.ack, r.err)
		}
	}
	if s := pub.Stats(); s.Failed != 1 || s.Batches != 0 {
		t.Errorf("stats %+v, want one failed batch", s)
	}
	if got := b.count(t); got != 0 {
		t.Errorf("stream holds %d mails, want none", got)
	}
}

// TestBatchFailureAnswers451 is TestBatchFailureFailsAll through SMTP:
// every transaction of the failed batch gets 451 4.3.0, none 250.
func TestBatchFailureAnswers451(t *testing.T) {
	const n = 4
	b := setupWith(t, options{
		provision: provision.Config{MailMaxBytes: 3 << 10},
		producer:  producer.Config{Batch: producer.Batching{GroupCommit: true, Window: wait, MaxMsgs: n, MinMsgs: 2}},
	})
	b.allowAtomic(t)
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

// TestBatchDedup: the server refuses a batch holding an id it has seen
// (dedup does not work inside atomic batches); the publisher then stores
// the batch's mails one by one, where dedup does work: the repeated mail
// is acknowledged as a duplicate of the stored one, the others stored.
func TestBatchDedup(t *testing.T) {
	b := setup(t)
	b.allowAtomic(t)
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

	// The same id twice in one batch: stored once, both callers answered.
	res = publishAll(t, pub, envelopes("dup-2", "dup-2", "new-5", "new-6", "new-7"), mailNumbered)
	dups := 0
	for i, r := range res {
		if r.err != nil {
			t.Fatalf("caller %d (%s): %v", i, r.env.ID, r.err)
		}
		if r.ack.Duplicate {
			dups++
		}
	}
	if dups != 1 {
		t.Errorf("%d duplicate acks, want 1", dups)
	}
	if got := b.count(t); got != 9 {
		t.Errorf("stream holds %d mails, want 9", got)
	}
	if s := pub.Stats(); s.Fallbacks != 2 || s.Failed != 0 {
		t.Errorf("stats %+v, want 2 fallbacks, no failure", s)
	}
}

// TestBatchWithoutAtomicStream: a stream that does not allow atomic
// publish still gets every mail, one by one, with a warning.
func TestBatchWithoutAtomicStream(t *testing.T) {
	b := setup(t)
	info, err := b.streamObj.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.AllowAtomicPublish {
		cfg := info.Config
		cfg.AllowAtomicPublish = false
		if _, err := b.js.UpdateStream(t.Context(), cfg); err != nil {
			t.Fatal(err)
		}
	}
	var logs syncBuffer
	pub := producer.NewBatchPublisher(b.js, "", wait, producer.Batching{Window: wait, MaxMsgs: 3, MinMsgs: 2,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for round := range 2 {
		for i, r := range publishAll(t, pub, make([]contracts.Envelope, 3), mailNumbered) {
			if r.err != nil {
				t.Fatalf("round %d caller %d: %v", round, i, r.err)
			}
		}
	}
	if got := b.count(t); got != 6 {
		t.Errorf("stream holds %d mails, want 6", got)
	}
	// The first batch is refused; then the publisher stops trying for a
	// while and publishes mail by mail at once.
	if s := pub.Stats(); s.Fallbacks != 1 || s.Alone != 6 || s.Batches != 0 {
		t.Errorf("stats %+v, want 1 fallback and 6 mails alone", s)
	}
	if !strings.Contains(logs.String(), "does not allow atomic publish") {
		t.Errorf("no warning logged: %q", logs.String())
	}
}

// syncBuffer is a bytes.Buffer safe for a logger used from goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestBatchingOff: without Batch.GroupCommit every mail is stored on its own.
func TestBatchingOff(t *testing.T) {
	b := setupWith(t, options{producer: producer.Config{}})
	b.allowAtomic(t)
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

// TestBatchLoneMailWithWindow: with a window, a lone mail is committed
// once the window has passed, without company.
func TestBatchLoneMailWithWindow(t *testing.T) {
	b := setup(t)
	b.allowAtomic(t)
	pub := producer.NewBatchPublisher(b.js, "", wait, producer.Batching{Window: 5 * time.Millisecond})
	env := envelopes("")[0]
	if _, err := pub.Publish(t.Context(), &env, mailNumbered(0)); err != nil {
		t.Fatal(err)
	}
	if s := pub.Stats(); s.Alone != 1 {
		t.Errorf("stats %+v, want the mail alone", s)
	}
}
