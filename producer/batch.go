package producer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Group commit.
//
// With sync_interval always a single-node server fsyncs every stored
// message before it acknowledges it, one message after the other, so
// mails published one by one cost one fsync each however many SMTP
// transactions wait at once. nats-server 2.12+ stores an atomic batch
// (headers Nats-Batch-Id, Nats-Batch-Sequence, Nats-Batch-Commit; stream
// setting AllowAtomicPublish) with one fsync of the stream for the whole
// batch, and acknowledges the batch as a unit. The batcher commits mail
// as it comes while a commit slot is free; the mail that arrives while
// the slots are busy waits and goes as the next batch, so batches grow
// with the load. Each caller is answered once its batch is acknowledged;
// a batch that fails fails every mail in it.
//
// The server refuses a whole batch when any message in it repeats a
// Nats-Msg-Id in the duplicate window (or in the batch): dedup does not
// work inside atomic batches, it rejects them. A retry of a batch whose
// acknowledgement was lost is refused that way, and so is a mail the
// caller publishes again; the batcher then publishes the batch's mails
// one by one, where dedup works as ever (a repeated mail is acknowledged
// as a duplicate of the stored one).
//
// The server stores the batch headers with each message (it reads them on
// restart to complete a batch a crash interrupted). Whoever republishes a
// stored mail with its headers (a dead letter, a held copy) must drop
// Nats-Batch-Id, Nats-Batch-Sequence and Nats-Batch-Commit, or the server
// takes the copy for part of a batch: refused on a stream without atomic
// publish (error 10174), an incomplete batch on one with it.

// Batching configures the group commit of concurrent publishes. The zero
// value is group commit off; with GroupCommit set, the defaults below
// measured best on a single-node server with sync_interval always (see
// loadtest/README.md).
type Batching struct {
	// GroupCommit turns group commit on. Default off: every mail is
	// published on its own (one fsync each with sync_interval always).
	// It needs a mail stream that allows atomic publish (mailscope
	// provision --atomic-publish); see loadtest/README.md for when it
	// pays.
	GroupCommit bool
	// Inflight is how many batches may be committing at once. Mail that
	// arrives while every slot is busy waits, and is committed as the next
	// batch as soon as a slot frees: the busier the server, the larger the
	// batches. Default 1; the server allows 50 open batches per stream
	// (max_batch_inflight_per_stream).
	Inflight int
	// Window is how long mail waits for more mail while a commit slot is
	// free. Default 0: mail that finds a slot free is committed at once,
	// so that a lone transaction never waits for company that does not
	// come. In the load test (loadtest/README.md) a 1ms window lost
	// throughput at every concurrency: -65% with 1 client, -55% with 8,
	// -27% with 32, -21% with 128.
	Window time.Duration
	// MinMsgs: a group of fewer mails is published mail by mail rather
	// than as an atomic batch, which has a fixed cost (on a single-node
	// file stream the server stages the batch in a store of its own:
	// about four fsyncs and twenty file operations, as much as ~10 single
	// publishes on the test machine). Default 8.
	MinMsgs int
	// MaxMsgs caps the mails of one batch. Default 100; the server
	// refuses batches over its max_batch_size (default 1000).
	MaxMsgs int
	// MaxBytes caps the bytes of one batch (a larger mail is stored on
	// its own). Default 4 MiB. The server stages a batch, and holds it in
	// memory while it commits.
	MaxBytes int
	// Logger receives the batcher's warnings. Default slog.Default().
	Logger *slog.Logger
}

func (b Batching) withDefaults() Batching {
	if b.Inflight <= 0 {
		b.Inflight = 1
	}
	if b.Window < 0 {
		b.Window = 0
	}
	if b.MinMsgs <= 0 {
		b.MinMsgs = 8
	}
	b.MinMsgs = max(b.MinMsgs, 2)
	if b.MaxMsgs <= 0 {
		b.MaxMsgs = 100
	}
	if b.MaxBytes <= 0 {
		b.MaxBytes = 4 << 20
	}
	if b.Logger == nil {
		b.Logger = slog.Default()
	}
	return b
}

// Headers of atomic batch publishing (nats-server 2.12+).
const (
	hdrBatchID     = "Nats-Batch-Id"
	hdrBatchSeq    = "Nats-Batch-Sequence"
	hdrBatchCommit = "Nats-Batch-Commit"
)

// JetStream error codes the batcher answers by publishing mail by mail.
const (
	errCodeAtomicDisabled      jetstream.ErrorCode = 10174 // the stream does not allow atomic publish
	errCodeAtomicIncomplete    jetstream.ErrorCode = 10176 // a message of the batch went missing
	errCodeAtomicTooLarge      jetstream.ErrorCode = 10199 // over the server's max_batch_size
	errCodeAtomicDuplicate     jetstream.ErrorCode = 10201 // a Nats-Msg-Id seen before, or twice in the batch
	errCodeAtomicTooMany       jetstream.ErrorCode = 10210 // too many open batches
	errCodeDuplicateInProgress jetstream.ErrorCode = 10158 // a Nats-Msg-Id being stored by another publish
)

// bypassFor is how long a publisher whose stream does not allow atomic
// publish publishes mail by mail before it tries a batch again.
const bypassFor = time.Minute

// errInvalidBatchAck: the answer to a commit is no batch acknowledgement
// (a server without atomic batches stores each message as it comes).
var errInvalidBatchAck = errors.New("invalid batch acknowledgement")

// PublishStats counts how a Publisher stored its mail.
type PublishStats struct {
	// Batches counts atomic batches stored; BatchedMails the mails in
	// them.
	Batches, BatchedMails int64
	// Alone counts mails published on their own: a batch of one, group
	// commit off or bypassed, or a fallback.
	Alone int64
	// Fallbacks counts batches the server refused for a reason that
	// publishing mail by mail avoids (a duplicate id, atomic publish not
	// allowed); their mails were then published alone.
	Fallbacks int64
	// Failed counts batches that failed as a whole: every mail in them
	// was answered ErrNotStored.
	Failed int64
}

type publishCounters struct {
	batches, batchedMails, alone, fallbacks, failed atomic.Int64
}

// pubReq is one caller's mail waiting for its batch.
type pubReq struct {
	msg       *nats.Msg
	id        string
	size      int
	done      chan pubResult // buffered: the batcher never blocks on it
	abandoned atomic.Bool    // the caller gave up before the batch was formed
}

type pubResult struct {
	ack *jetstream.PubAck
	err error
}

// batcher collects concurrent publishes into atomic batches.
type batcher struct {
	p     *Publisher
	cfg   Batching
	timer *time.Timer
	met   batchMetrics

	mu       sync.Mutex
	pending  []*pubReq
	bytes    int  // of pending
	inflight int  // batches committing
	armed    bool // timer running for the oldest pending mail
	due      bool // the pending mails have waited long enough
	bypass   time.Time
}

func newBatcher(p *Publisher, cfg Batching) *batcher {
	b := &batcher{p: p, cfg: cfg.withDefaults(), met: newBatchMetrics()}
	b.timer = time.AfterFunc(time.Hour, b.windowEnded)
	b.timer.Stop()
	return b
}

// bypassed reports whether mail is to be published alone for now.
func (b *batcher) bypassed() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return !b.bypass.IsZero() && time.Now().Before(b.bypass)
}

// publish hands msg to the next batch and waits for its answer.
func (b *batcher) publish(ctx context.Context, msg *nats.Msg, id string) (*jetstream.PubAck, error) {
	r := &pubReq{msg: msg, id: id, size: len(msg.Data) + headerSize(msg.Header), done: make(chan pubResult, 1)}
	b.mu.Lock()
	b.pending = append(b.pending, r)
	b.bytes += r.size
	b.flushLocked()
	b.mu.Unlock()
	select {
	case res := <-r.done:
		return res.ack, res.err
	case <-ctx.Done():
		// Not yet in a batch: it never will be. Already committing: the
		// outcome is unknown, as with any publish whose ack is not waited
		// for; the caller tells its client to retry either way.
		r.abandoned.Store(true)
		return nil, fmt.Errorf("%w: %v", ErrNotStored, ctx.Err())
	}
}

func (b *batcher) windowEnded() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.armed = false
	if len(b.pending) > 0 {
		b.due = true
	}
	b.flushLocked()
}

// flushLocked starts a commit for the pending mail while a commit slot
// is free: at once, or, with a Window, once the oldest pending mail has
// waited it, the batch is full, or the mail has waited for a commit.
func (b *batcher) flushLocked() {
	for len(b.pending) > 0 && b.inflight < b.cfg.Inflight {
		full := len(b.pending) >= b.cfg.MaxMsgs || b.bytes >= b.cfg.MaxBytes
		if b.cfg.Window > 0 && !full && !b.due {
			if !b.armed {
				b.armed = true
				b.timer.Reset(b.cfg.Window)
			}
			return
		}
		batch := b.takeLocked()
		if len(batch) == 0 {
			continue
		}
		b.inflight++
		go b.commit(batch)
	}
	if len(b.pending) == 0 {
		b.due = false
	}
}

// takeLocked removes the next batch from pending: up to MaxMsgs mails and
// MaxBytes bytes, at least one mail. Abandoned mails are dropped.
func (b *batcher) takeLocked() []*pubReq {
	n, size := 0, 0
	for n < len(b.pending) && n < b.cfg.MaxMsgs {
		if n > 0 && size+b.pending[n].size > b.cfg.MaxBytes {
			break
		}
		size += b.pending[n].size
		n++
	}
	batch := make([]*pubReq, 0, n)
	for _, r := range b.pending[:n] {
		if !r.abandoned.Load() {
			batch = append(batch, r)
		}
	}
	clear(b.pending[:n])
	b.pending = b.pending[n:]
	b.bytes -= size
	return batch
}

// commit stores one batch and answers every mail in it.
func (b *batcher) commit(batch []*pubReq) {
	defer func() {
		b.mu.Lock()
		b.inflight--
		if len(b.pending) > 0 {
			// They waited for this commit: store them now.
			b.due = true
		}
		b.flushLocked()
		b.mu.Unlock()
	}()
	if len(batch) < b.cfg.MinMsgs {
		// Too few to pay for a batch's fixed cost.
		b.alone(batch)
		return
	}
	start := time.Now()
	acks, err := b.store(batch)
	switch {
	case err == nil:
		b.p.stats.batches.Add(1)
		b.p.stats.batchedMails.Add(int64(len(batch)))
		b.met.committed(len(batch), start)
		for i, r := range batch {
			r.done <- pubResult{ack: acks[i]}
		}
	case byOneByOne(err):
		b.p.stats.fallbacks.Add(1)
		b.met.fellBack(reason(err))
		if isAPIError(err, errCodeAtomicDisabled) {
			b.mu.Lock()
			first := b.bypass.IsZero()
			b.bypass = time.Now().Add(bypassFor)
			b.mu.Unlock()
			if first {
				b.cfg.Logger.Warn("the mail stream does not allow atomic publish (AllowAtomicPublish): no group commit, every mail is stored on its own; trying again every minute",
					slog.String("subject", b.p.subject))
			}
		}
		b.alone(batch)
	default:
		b.p.stats.failed.Add(1)
		b.met.failed()
		err = fmt.Errorf("%w: batch of %d: %v", ErrNotStored, len(batch), err)
		for _, r := range batch {
			r.done <- pubResult{err: err}
		}
	}
}

// alone publishes every mail of batch on its own, concurrently, with the
// retries and dedup of a single publish.
func (b *batcher) alone(batch []*pubReq) {
	var wg sync.WaitGroup
	for _, r := range batch {
		wg.Go(func() {
			ack, err := b.p.publishOne(context.Background(), r.msg, r.id)
			r.done <- pubResult{ack: ack, err: err}
		})
	}
	wg.Wait()
}

// store publishes batch as one atomic batch, trying again (with the same
// dedup ids) after a timeout or a missing responder, and returns one
// acknowledgement per mail.
func (b *batcher) store(batch []*pubReq) ([]*jetstream.PubAck, error) {
	var err error
	for try := 0; try < b.p.tries; try++ {
		var acks []*jetstream.PubAck
		if acks, err = b.send(batch); err == nil {
			return acks, nil
		}
		if !retryable(err) || errors.Is(err, errInvalidBatchAck) {
			break
		}
	}
	return nil, err
}

// batchAck is the server's answer to a batch commit.
type batchAck struct {
	Error    *jetstream.APIError `json:"error,omitempty"`
	Stream   string              `json:"stream"`
	Sequence uint64              `json:"seq"`
	Domain   string              `json:"domain,omitempty"`
	BatchID  string              `json:"batch,omitempty"`
	Count    int                 `json:"count,omitempty"`
}

// send makes one attempt: every mail but the last published without a
// reply (the server stages them), the last with the commit header as a
// request, whose answer acknowledges the whole batch. The messages are
// copies: the caller's headers stay free of batch headers, for a retry
// under a new batch id or a fallback to single publishes.
func (b *batcher) send(batch []*pubReq) ([]*jetstream.PubAck, error) {
	nc := b.p.js.Conn()
	id := nuid.Next()
	last := len(batch) - 1
	for i, r := range batch {
		m := &nats.Msg{Subject: r.msg.Subject, Data: r.msg.Data, Header: maps.Clone(r.msg.Header)}
		m.Header.Set(hdrBatchID, id)
		m.Header.Set(hdrBatchSeq, strconv.Itoa(i+1))
		if i < last {
			if err := nc.PublishMsg(m); err != nil {
				return nil, err
			}
			continue
		}
		m.Header.Set(hdrBatchCommit, "1")
		ctx, cancel := context.WithTimeout(context.Background(), b.p.timeout)
		resp, err := nc.RequestMsgWithContext(ctx, m)
		cancel()
		if err != nil {
			return nil, err
		}
		var ack batchAck
		if err := json.Unmarshal(resp.Data, &ack); err != nil {
			return nil, fmt.Errorf("%w: %v", errInvalidBatchAck, err)
		}
		if ack.Error != nil {
			return nil, ack.Error
		}
		if ack.Stream == "" || ack.BatchID != id || ack.Count != len(batch) || ack.Sequence < uint64(len(batch)) {
			return nil, fmt.Errorf("%w: %s", errInvalidBatchAck, resp.Data)
		}
		// A batch is stored contiguously and ends at ack.Sequence.
		acks := make([]*jetstream.PubAck, len(batch))
		first := ack.Sequence - uint64(len(batch)) + 1
		for j := range batch {
			acks[j] = &jetstream.PubAck{Stream: ack.Stream, Sequence: first + uint64(j), Domain: ack.Domain}
		}
		return acks, nil
	}
	return nil, errors.New("empty batch")
}

// byOneByOne reports whether the mails of a batch refused with err may
// still be stored one by one: refusals that concern batching itself,
// not the mail or the stream.
func byOneByOne(err error) bool {
	if errors.Is(err, errInvalidBatchAck) {
		return true
	}
	for _, code := range []jetstream.ErrorCode{errCodeAtomicDisabled, errCodeAtomicIncomplete, errCodeAtomicTooLarge,
		errCodeAtomicDuplicate, errCodeAtomicTooMany, errCodeDuplicateInProgress} {
		if isAPIError(err, code) {
			return true
		}
	}
	return false
}

func isAPIError(err error, code jetstream.ErrorCode) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == code
}

// reason names a fallback's cause for the metric.
func reason(err error) string {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return strconv.Itoa(int(apiErr.ErrorCode))
	}
	return "invalid_ack"
}

// headerSize estimates the bytes of h on the wire.
func headerSize(h nats.Header) int {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

// batchMetrics are the batcher's instruments.
type batchMetrics struct {
	size      metric.Int64Histogram
	duration  metric.Float64Histogram
	fallbacks metric.Int64Counter
	failures  metric.Int64Counter
}

func newBatchMetrics() batchMetrics {
	m := otel.Meter("github.com/mailscope/mailscope/producer")
	var bm batchMetrics
	bm.size, _ = m.Int64Histogram("mailscope.producer.batch.size",
		metric.WithDescription("mails per atomic batch stored (group commit)"),
		metric.WithExplicitBucketBoundaries(2, 4, 8, 16, 32, 64, 128, 256, 512, 1000))
	bm.duration, _ = m.Float64Histogram("mailscope.producer.batch.duration",
		metric.WithUnit("s"), metric.WithDescription("time to store one atomic batch"))
	bm.fallbacks, _ = m.Int64Counter("mailscope.producer.batch.fallbacks",
		metric.WithDescription("batches refused for a batching reason and published mail by mail, by JetStream error code"))
	bm.failures, _ = m.Int64Counter("mailscope.producer.batch.failures",
		metric.WithDescription("batches that failed as a whole (every mail answered 451)"))
	return bm
}

func (bm batchMetrics) committed(n int, since time.Time) {
	bm.size.Record(context.Background(), int64(n))
	bm.duration.Record(context.Background(), time.Since(since).Seconds())
}

func (bm batchMetrics) fellBack(reason string) {
	bm.fallbacks.Add(context.Background(), 1, metric.WithAttributes(attribute.String("reason", reason)))
}

func (bm batchMetrics) failed() { bm.failures.Add(context.Background(), 1) }
