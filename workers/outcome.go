package workers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/contracts"
)

// publishOutcome stores the outcome, deduplicated by the mail id, group-
// committed with the outcomes of the other mails in flight: the call
// returns once the batch holding it is stored.
//
// Exactly one outcome per mail: the outcome is stored before the input is
// acknowledged, under Nats-Msg-Id = the mail id. A mail processed again
// (its ack lost, its worker gone before acking, a redelivery after
// AckWait) publishes the same id; inside the outcome stream's duplicate
// window (provision: 10 minutes, 20 times the default AckWait) the server
// keeps the first and acknowledges the second as a duplicate
// (mailscope_mail_outcome_duplicates counts them).
func (w *Worker) publishOutcome(ctx context.Context, out *contracts.Outcome) (*jetstream.PubAck, error) {
	data, err := encodeOutcome(out, w.maxOutcome)
	if err != nil {
		return nil, err
	}
	m := &nats.Msg{Subject: w.cfg.Names.OutcomeSubject(out.Disposition), Data: data}
	return w.outcomes.Publish(ctx, m, out.ID)
}

// maxOutcomeBytes is the largest outcome event stored on nc: the
// server's max_payload less room for headers. The worker reads it once
// (New): the connection's lock is contended on every mail's path.
func maxOutcomeBytes(nc *nats.Conn) int {
	if mp := nc.MaxPayload(); mp > 0 {
		return int(mp) - 16<<10
	}
	return 1<<20 - 16<<10
}

// encodeBuffers are reused between outcomes: encoding is on every mail's
// path.
var encodeBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// encodeOutcome returns out as JSON of at most limit bytes: when the
// summary makes it larger, its text is dropped, then the summary itself,
// and Summary.Truncated or the outcome's Note says so. A mail is never
// failed because its outcome would be too large.
func encodeOutcome(out *contracts.Outcome, limit int) ([]byte, error) {
	encode := func() ([]byte, error) {
		buf := encodeBuffers.Get().(*bytes.Buffer)
		defer encodeBuffers.Put(buf)
		buf.Reset()
		enc := json.NewEncoder(buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(out); err != nil {
			return nil, err
		}
		return bytes.Clone(bytes.TrimSuffix(buf.Bytes(), []byte("\n"))), nil
	}
	data, err := encode()
	if err != nil || len(data) <= limit || out.Summary == nil {
		return data, err
	}
	size := len(data)
	s := *out.Summary
	s.TextParts = []contracts.TextPart{}
	s.Truncated = joinReasons(s.Truncated, fmt.Sprintf("outcome of %d bytes over the %d-byte limit: text parts dropped", size, limit))
	out.Summary = &s
	if data, err = encode(); err != nil || len(data) <= limit {
		return data, err
	}
	out.Summary = nil
	out.Note = fmt.Sprintf("outcome of %d bytes over the %d-byte limit: summary dropped", size, limit)
	return encode()
}
