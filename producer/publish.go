package producer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/mailscope/mailscope/contracts"
)

// ErrNotStored is wrapped by every Publish error: JetStream did not
// acknowledge the mail, so it must stay with the sender (SMTP 4xx).
var ErrNotStored = errors.New("mail not stored")

// Publisher puts raw mail on the mail stream. It is safe for concurrent
// use; with group commit (NewBatchPublisher) concurrent publishes share
// the server's fsyncs.
type Publisher struct {
	js      jetstream.JetStream
	subject string
	timeout time.Duration
	tries   int

	// batch, when set, group-commits concurrent publishes. It is set once
	// (useBatching), by New for a producer with Batch.GroupCommit.
	batch     atomic.Pointer[batcher]
	batchOnce sync.Once
	stats     publishCounters
}

// NewPublisher returns a Publisher on subject (default "mail.incoming")
// that waits up to timeout (default 5s) for each acknowledgement and
// tries twice, with the same de-duplication id, before giving up. Every
// mail is published on its own.
func NewPublisher(js jetstream.JetStream, subject string, timeout time.Duration) *Publisher {
	if subject == "" {
		subject = contracts.DefaultNames().MailSubject
	}
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &Publisher{js: js, subject: subject, timeout: timeout, tries: 2}
}

// NewBatchPublisher is NewPublisher with group commit (see Batching): the
// mails that concurrent callers publish while a batch is committing are
// stored together as the next atomic batch, sharing its fsync, and each
// call returns once its batch is acknowledged (or failed: then every call
// of the batch fails). The stream must allow atomic publish
// (AllowAtomicPublish); where it does not, mail is published one by one,
// with a warning. b.GroupCommit is implied.
func NewBatchPublisher(js jetstream.JetStream, subject string, timeout time.Duration, b Batching) *Publisher {
	p := NewPublisher(js, subject, timeout)
	b.GroupCommit = true
	p.useBatching(b)
	return p
}

// useBatching turns group commit on with b if b.GroupCommit; only the first
// call has an effect.
func (p *Publisher) useBatching(b Batching) {
	p.batchOnce.Do(func() {
		if b.GroupCommit {
			p.batch.Store(newBatcher(p, b))
		}
	})
}

// Stats returns how the Publisher has stored its mail so far.
func (p *Publisher) Stats() PublishStats {
	return PublishStats{
		Batches:      p.stats.batches.Load(),
		BatchedMails: p.stats.batchedMails.Load(),
		Alone:        p.stats.alone.Load(),
		Fallbacks:    p.stats.fallbacks.Load(),
		Failed:       p.stats.failed.Load(),
	}
}

// NewID returns a new, unique mail id.
func NewID() string { return nuid.Next() }

// Publish stores one mail and returns once JetStream has acknowledged it.
// env.ID is set (to a new id) when empty; env.ReceivedAt likewise. A
// retry after a lost acknowledgement reuses the id, so the stream keeps
// one copy. The returned error wraps ErrNotStored. With group commit the
// acknowledgement is that of the mail's batch: the mail is stored, and
// fsynced where the server is so configured, when Publish returns nil.
func (p *Publisher) Publish(ctx context.Context, env *contracts.Envelope, raw []byte) (*jetstream.PubAck, error) {
	if env.ID == "" {
		env.ID = NewID()
	}
	if env.ReceivedAt.IsZero() {
		env.ReceivedAt = time.Now().UTC()
	}
	msg := &nats.Msg{Subject: p.subject, Header: nats.Header{}, Data: raw}
	env.Encode(msg.Header)
	if b := p.batch.Load(); b != nil && !b.bypassed() {
		return b.publish(ctx, msg, env.ID)
	}
	return p.publishOne(ctx, msg, env.ID)
}

// publishOne publishes msg on its own, trying p.tries times with the
// same dedup id. The returned error wraps ErrNotStored.
func (p *Publisher) publishOne(ctx context.Context, msg *nats.Msg, id string) (*jetstream.PubAck, error) {
	p.stats.alone.Add(1)
	var err error
	for try := 0; try < p.tries; try++ {
		var ack *jetstream.PubAck
		pctx, cancel := context.WithTimeout(ctx, p.timeout)
		ack, err = p.js.PublishMsg(pctx, msg, jetstream.WithMsgID(id))
		cancel()
		if err == nil {
			return ack, nil
		}
		if ctx.Err() != nil || !retryable(err) {
			break
		}
	}
	return nil, fmt.Errorf("%w: %v", ErrNotStored, err)
}

// retryable reports whether a publish error may go away on an immediate
// retry: a timeout or a missing responder may, while an answer from the
// server (stream full, message too large) will not.
func retryable(err error) bool {
	var apiErr *jetstream.APIError
	return !errors.As(err, &apiErr) && !errors.Is(err, nats.ErrMaxPayload)
}
