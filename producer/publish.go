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
	p := &Publisher{js: js, subject: subject, timeout: timeout}
	p.gc.Store(groupcommit.Single(js, Batching{}.config(timeout)))
	return p
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
			p.gc.Store(groupcommit.New(p.js, b.config(p.timeout)))
		}
	})
}

// Stats returns how the Publisher has stored its mail so far.
func (p *Publisher) Stats() PublishStats { return p.gc.Load().Stats() }

// NewID returns a new, unique mail id.
func NewID() string { return nuid.Next() }

// Publish stores one mail and returns once JetStream has acknowledged it.
// env.ID is set (to a new id) when empty; env.ReceivedAt likewise. A
// retry after a lost acknowledgement reuses the id, so the stream keeps
// one copy (acknowledged with Duplicate set). The returned error wraps
// ErrNotStored. With group commit the acknowledgement is that of the
// mail's batch: the mail is stored, and fsynced where the server is so
// configured, when Publish returns nil.
func (p *Publisher) Publish(ctx context.Context, env *contracts.Envelope, raw []byte) (*jetstream.PubAck, error) {
	if env.ID == "" {
		env.ID = NewID()
	}
	if env.ReceivedAt.IsZero() {
		env.ReceivedAt = time.Now().UTC()
	}
	msg := &nats.Msg{Subject: p.subject, Header: make(nats.Header, 8), Data: raw}
	env.Encode(msg.Header)
	return p.gc.Load().Publish(ctx, msg, env.ID)
}
