package groupcommit

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// publishOne publishes msg on its own with Nats-Msg-Id id, trying
// Config.Tries times with the same id, so that a retry after a lost
// acknowledgement is stored once (and acknowledged as a duplicate). An
// attempt ends at Config.Timeout, or as soon as the connection is lost.
// The returned error wraps ErrNotStored.
func (p *Publisher) publishOne(ctx context.Context, msg *nats.Msg, id string) (*jetstream.PubAck, error) {
	p.stats.alone.Add(1)
	m := msg
	if !sendsAsIs(msg.Header, id) {
		// A copy: jetstream's WithMsgID would write the caller's headers.
		m = &nats.Msg{Subject: msg.Subject, Data: msg.Data, Header: make(nats.Header, len(msg.Header)+1)}
		copyHeader(m.Header, msg.Header)
		if id != "" {
			m.Header[hdrMsgID] = []string{id}
		}
	}
	var err error
	for try := 0; try < p.cfg.Tries; try++ {
		var ack *jetstream.PubAck
		pctx, finish := p.conn.attempt(ctx, p.cfg.Timeout)
		ack, err = p.js.PublishMsg(pctx, m)
		err = finish(err)
		if err == nil {
			return ack, nil
		}
		if ctx.Err() != nil || !retryable(err) {
			break
		}
	}
	return nil, fmt.Errorf("%w: %w", ErrNotStored, err)
}
