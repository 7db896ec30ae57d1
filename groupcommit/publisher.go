package groupcommit

import (
	"context"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Publisher stores messages on one JetStream stream, group-committing
// concurrent publishes (New) or every message on its own (Single). It is
// safe for concurrent use.
type Publisher struct {
	js    jetstream.JetStream
	cfg   Config
	batch *batcher // nil: every message alone
	stats counters
	met   *metrics
	conn  *connWatch
}

// New returns a Publisher that group-commits concurrent Publish calls:
// the messages published while a batch is committing are stored together
// as the next atomic batch, sharing its fsync, and each call returns once
// its batch is acknowledged (or failed: then every call of the batch
// fails). All messages it is given must go to ONE stream (any subjects
// of it); the stream must allow atomic publish (AllowAtomicPublish), or
// the publisher warns once and publishes one by one, trying batches again
// every minute. cfg's zero fields take their defaults (see Config).
func New(js jetstream.JetStream, cfg Config) *Publisher {
	p := newPublisher(js, cfg)
	p.batch = newBatcher(p)
	return p
}

// Single returns a Publisher that never batches: every message is
// published alone, with Config.Timeout, Config.Tries and dedup. The
// batching fields of cfg are ignored.
func Single(js jetstream.JetStream, cfg Config) *Publisher {
	return newPublisher(js, cfg)
}

func newPublisher(js jetstream.JetStream, cfg Config) *Publisher {
	cfg = cfg.WithDefaults()
	return &Publisher{js: js, cfg: cfg, met: newMetrics(cfg.Name), conn: watchConn(js.Conn())}
}

// Config returns the Publisher's configuration, defaults applied.
func (p *Publisher) Config() Config { return p.cfg }

// Publish stores msg with Nats-Msg-Id id (an empty id leaves msg's own
// Nats-Msg-Id, if any) and returns its acknowledgement once it is stored:
// fsynced, where the server is so configured. With group commit that is
// the acknowledgement of its batch, with the message's own sequence. A
// message the server recognises as a duplicate of a stored one is
// acknowledged with Duplicate set and the stored one's sequence: it is
// stored, and no error. With Config.RetryFor, a store that failed for a
// reason that may pass (see Retryable) is tried again with the same id
// until RetryFor has passed since the call (see Config.RetryFor). The
// error wraps ErrNotStored when the message is not known to be stored;
// when ctx ends first the message may still be stored, as with any
// publish whose acknowledgement is not waited for, and a retry with the
// same id stores it once. msg's headers are not modified, and batch
// headers in them are never sent. Safe for concurrent use.
func (p *Publisher) Publish(ctx context.Context, msg *nats.Msg, id string) (*jetstream.PubAck, error) {
	if p.cfg.RetryFor <= 0 {
		return p.publishOnce(ctx, msg, id)
	}
	return p.publishRetrying(ctx, msg, id)
}

// publishOnce stores msg in its batch, or alone.
func (p *Publisher) publishOnce(ctx context.Context, msg *nats.Msg, id string) (*jetstream.PubAck, error) {
	if b := p.batch; b != nil && !b.bypassed() {
		return b.publish(ctx, msg, id)
	}
	return p.publishOne(ctx, msg, id)
}
