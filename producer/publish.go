package producer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/mailscope/mailscope/contracts"
)

// ErrNotStored is wrapped by every Publish error: JetStream did not
// acknowledge the mail, so it must stay with the sender (SMTP 4xx).
var ErrNotStored = errors.New("mail not stored")

// Publisher puts raw mail on the mail stream.
type Publisher struct {
	js      jetstream.JetStream
	subject string
	timeout time.Duration
	tries   int
}

// NewPublisher returns a Publisher on subject (default "mail.incoming")
// that waits up to timeout (default 5s) for each acknowledgement and
// tries twice, with the same de-duplication id, before giving up.
func NewPublisher(js jetstream.JetStream, subject string, timeout time.Duration) *Publisher {
	if subject == "" {
		subject = contracts.DefaultNames().MailSubject
	}
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &Publisher{js: js, subject: subject, timeout: timeout, tries: 2}
}

// NewID returns a new, unique mail id.
func NewID() string { return nuid.Next() }

// Publish stores one mail and returns once JetStream has acknowledged it.
// env.ID is set (to a new id) when empty; env.ReceivedAt likewise. A
// retry after a lost acknowledgement reuses the id, so the stream keeps
// one copy. The returned error wraps ErrNotStored.
func (p *Publisher) Publish(ctx context.Context, env *contracts.Envelope, raw []byte) (*jetstream.PubAck, error) {
	if env.ID == "" {
		env.ID = NewID()
	}
	if env.ReceivedAt.IsZero() {
		env.ReceivedAt = time.Now().UTC()
	}
	msg := &nats.Msg{Subject: p.subject, Header: nats.Header{}, Data: raw}
	env.Encode(msg.Header)
	var err error
	for try := 0; try < p.tries; try++ {
		var ack *jetstream.PubAck
		pctx, cancel := context.WithTimeout(ctx, p.timeout)
		ack, err = p.js.PublishMsg(pctx, msg, jetstream.WithMsgID(env.ID))
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
