package groupcommit

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// bypassFor is how long a publisher whose stream does not allow atomic
// publish publishes message by message before it tries a batch again.
const bypassFor = time.Minute

// request is one caller's message waiting for its batch. Requests are
// pooled: one is reused once its caller has taken its result, never after
// the caller gave up (the batcher may still answer it).
type request struct {
	msg       *nats.Msg
	id        string
	size      int
	done      chan result // buffered: the batcher never blocks on it
	abandoned atomic.Bool // the caller gave up before the batch was formed
}

type result struct {
	ack *jetstream.PubAck
	err error
}

var requests = sync.Pool{New: func() any { return &request{done: make(chan result, 1)} }}

// release puts r, answered with res, back in the pool and returns res.
func (r *request) release(res result) (*jetstream.PubAck, error) {
	r.msg, r.id = nil, ""
	requests.Put(r)
	return res.ack, res.err
}

// batcher collects concurrent publishes into atomic batches.
type batcher struct {
	p     *Publisher
	cfg   Config
	timer *time.Timer

	bypassUntil atomic.Int64 // Unix nanoseconds; 0: never bypassed
	warned      atomic.Bool  // the warning about atomic publish was logged

	mu       sync.Mutex
	pending  []*request
	bytes    int  // of pending
	inflight int  // batches committing
	armed    bool // timer running for the oldest pending message
	due      bool // the pending messages have waited long enough
}

func newBatcher(p *Publisher) *batcher {
	b := &batcher{p: p, cfg: p.cfg}
	b.timer = time.AfterFunc(time.Hour, b.windowEnded)
	b.timer.Stop()
	return b
}

// bypassed reports whether messages are to be published alone for now.
func (b *batcher) bypassed() bool {
	until := b.bypassUntil.Load()
	return until != 0 && time.Now().UnixNano() < until
}

// bypass makes messages go alone for bypassFor, and reports whether it
// is the first time.
func (b *batcher) bypass() (first bool) {
	b.bypassUntil.Store(time.Now().Add(bypassFor).UnixNano())
	return b.warned.CompareAndSwap(false, true)
}

// publish hands msg to the next batch and waits for its answer.
func (b *batcher) publish(ctx context.Context, msg *nats.Msg, id string) (*jetstream.PubAck, error) {
	r := requests.Get().(*request)
	r.msg, r.id, r.size = msg, id, len(msg.Data)+headerSize(msg.Header)
	r.abandoned.Store(false)
	b.mu.Lock()
	b.pending = append(b.pending, r)
	b.bytes += r.size
	b.flushLocked()
	b.mu.Unlock()
	select {
	case res := <-r.done:
		return r.release(res)
	case <-ctx.Done():
		select {
		case res := <-r.done:
			// Answered as ctx ended: the answer holds.
			return r.release(res)
		default:
		}
		// Not yet in a batch: it never will be. Already committing: the
		// outcome is unknown, as with any publish whose ack is not waited
		// for; the caller has its message retried either way.
		r.abandoned.Store(true)
		return nil, fmt.Errorf("%w: %w", ErrNotStored, ctx.Err())
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

// flushLocked starts a commit for the pending messages while a commit
// slot is free: at once, or, with a Window, once the oldest pending
// message has waited it, the batch is full, or the messages have waited
// for a commit.
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

// takeLocked removes the next batch from pending: up to MaxMsgs messages
// and MaxBytes bytes, at least one message. Abandoned messages are
// dropped.
func (b *batcher) takeLocked() []*request {
	n, size := 0, 0
	for n < len(b.pending) && n < b.cfg.MaxMsgs {
		if n > 0 && size+b.pending[n].size > b.cfg.MaxBytes {
			break
		}
		size += b.pending[n].size
		n++
	}
	batch := make([]*request, 0, n)
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
