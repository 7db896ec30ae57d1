package producer

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/groupcommit"
)

// ErrNotStored is wrapped by every Publish error: JetStream did not
// acknowledge the mail, so it must stay with the sender (SMTP 4xx). It is
// groupcommit.ErrNotStored: errors.Is holds for either.
var ErrNotStored = groupcommit.ErrNotStored

// Publisher puts raw mail on the mail stream. It is safe for concurrent
// use; with group commit (NewBatchPublisher) concurrent publishes share
// the server's fsyncs.
type Publisher struct {
	js      jetstream.JetStream
	subject string
	timeout time.Duration

	// gc stores the mail. It is replaced once (useBatching), by New for a
	// producer without Batch.Off, before the first publish.
	gc        atomic.Pointer[groupcommit.Publisher]
	batchOnce sync.Once
}

// NewPublisher returns a Publisher on subject (default "mail.incoming")
// that stores each mail within timeout (default 5s) in total: an attempt
// waits up to attemptTimeout (2s, or timeout when shorter) for its
// acknowledgement, and one that failed for a reason that may pass (a
// timeout, no responders, the connection down or lost while waiting) is
// tried again with the same de-duplication id, with a short backoff,
// until timeout is spent (groupcommit.Config.RetryFor). So a nats-server
// restart or a stream leader change shorter than timeout delays the
// mail instead of failing it. Every mail is published on its own.
func NewPublisher(js jetstream.JetStream, subject string, timeout time.Duration) *Publisher {
	if subject == "" {
		subject = contracts.DefaultNames().MailSubject
	}
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	p := &Publisher{js: js, subject: subject, timeout: timeout}
	p.gc.Store(groupcommit.Single(js, retrying(Batching{}.config(timeout), timeout)))
	return p
}

// attemptTimeout bounds one attempt's wait for its acknowledgement, so
// that an answer lost without the connection (a stream leader gone in a
// cluster) leaves time for another attempt within the publish timeout.
// The store p99 in the load test is under 70ms (loadtest/README.md).
const attemptTimeout = 2 * time.Second

// retrying is c with the producer's retries: attempts of attemptTimeout
// (at most timeout), tried again until timeout is spent.
func retrying(c groupcommit.Config, timeout time.Duration) groupcommit.Config {
	c.Timeout = min(timeout, attemptTimeout)
	c.Tries = 1
	c.RetryFor = timeout
	return c
}

// NewBatchPublisher is NewPublisher with group commit (see Batching and
// package groupcommit): the mails that concurrent callers publish while
// a batch is committing are stored together as the next atomic batch,
// sharing its fsync, and each call returns once its batch is
// acknowledged (or failed: then every call of the batch fails). The
// stream must allow atomic publish (AllowAtomicPublish); where it does
// not, mail is published one by one, with a warning. b.Off is ignored:
// group commit is what NewBatchPublisher is for.
func NewBatchPublisher(js jetstream.JetStream, subject string, timeout time.Duration, b Batching) *Publisher {
	p := NewPublisher(js, subject, timeout)
	b.Off = false
	p.useBatching(b)
	return p
}

// useBatching turns group commit on with b unless b.Off; only the first
// call has an effect, and it must come before the first Publish.
func (p *Publisher) useBatching(b Batching) {
	p.batchOnce.Do(func() {
		if !b.Off {
			p.gc.Store(groupcommit.New(p.js, retrying(b.config(p.timeout), p.timeout)))
		}
	})
}

// Stats returns how the Publisher has stored its mail so far.
func (p *Publisher) Stats() PublishStats { return p.gc.Load().Stats() }

// NewID returns a new, random mail id: for a deliberate second store of
// a mail already stored (mailscope publish --new-id), which its content
// id would deduplicate.
func NewID() string { return nuid.Next() }

// Publish stores one mail and returns once JetStream has acknowledged it.
// env.ID, when empty, is set to the mail's content id
// (contracts.ContentID of the envelope and raw), so that the same mail
// stored again, by a retry or an MTA's resend inside the mail stream's
// duplicate window, is stored once: acknowledged with Duplicate set and
// the stored copy's sequence, which is success. env.ReceivedAt, when
// zero, is set to now. The trace context of ctx, if any, travels in the
// message's traceparent and tracestate headers. The returned error wraps ErrNotStored. With group
// commit the acknowledgement is that of the mail's batch: the mail is
// stored, and fsynced where the server is so configured, when Publish
// returns nil.
func (p *Publisher) Publish(ctx context.Context, env *contracts.Envelope, raw []byte) (*jetstream.PubAck, error) {
	if env.ID == "" {
		env.ID = contracts.ContentID(env.MailFrom, env.RcptTo, raw)
	}
	if env.ReceivedAt.IsZero() {
		env.ReceivedAt = time.Now().UTC()
	}
	msg := &nats.Msg{Subject: p.subject, Header: make(nats.Header, 8), Data: raw}
	env.Encode(msg.Header)
	contracts.InjectTrace(ctx, msg.Header)
	return p.gc.Load().Publish(ctx, msg, env.ID)
}
