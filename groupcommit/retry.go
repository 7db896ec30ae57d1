package groupcommit

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Backoff between the attempts of a Publish with Config.RetryFor: the
// first wait, and the cap of its doubling.
const (
	retryFirst = 20 * time.Millisecond
	retryMax   = 500 * time.Millisecond
)

// publishRetrying stores msg, trying again while the error is Retryable,
// until RetryFor has passed (or ctx ends).
func (p *Publisher) publishRetrying(ctx context.Context, msg *nats.Msg, id string) (*jetstream.PubAck, error) {
	ctx, cancel := context.WithTimeout(ctx, p.cfg.RetryFor)
	defer cancel()
	wait := retryFirst
	for {
		ack, err := p.publishOnce(ctx, msg, id)
		if err == nil || !Retryable(err) || ctx.Err() != nil {
			return ack, err
		}
		p.stats.retries.Add(1)
		// Jittered, so that the callers of one failed batch do not all
		// come back in the same instant.
		d := wait/2 + rand.N(wait)
		wait = min(2*wait, retryMax)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, err
		case <-t.C:
		case <-p.conn.down():
			// The connection is back: try at once. (A nil channel, when
			// the connection is up, never fires.)
			t.Stop()
		}
	}
}

// Retryable reports whether a Publish error may pass on a retry with the
// same dedup id: a timeout, no responders (JetStream not up yet, no
// stream leader), the connection down or lost while the answer was
// awaited. An answer from the server (stream full, message too large, a
// refused batch) and an ended context are not. It is what Config.Tries
// and Config.RetryFor retry.
func Retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) && !errors.Is(err, errDisconnected) {
		return false
	}
	return retryable(err)
}
