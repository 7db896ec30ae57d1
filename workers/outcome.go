package workers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
// acknowledged, under Nats-Msg-Id = the mail id, and the first one stored
// wins. A mail processed again (its ack lost, its worker gone before
// acking, a redelivery after AckWait, a resend stored again after the
// mail stream's window) publishes the same id; inside the outcome
// stream's duplicate window (provision: the mail window plus the
// redelivery span, 1h10m) the server keeps the first and acknowledges the
// second as a duplicate with the first one's sequence
// (mailscope_mail_outcome_duplicates counts them), which storedOutcome
// reads: settle and deadLetter look at it to keep the dead path whole.
func (w *Worker) publishOutcome(ctx context.Context, out *contracts.Outcome) (*jetstream.PubAck, error) {
	data, err := encodeOutcome(out, w.maxOutcome)
	if err != nil {
		return nil, err
	}
	m := &nats.Msg{Subject: w.cfg.Names.OutcomeSubject(out.Disposition), Data: data}
	ctx, span := w.startPublish(ctx, m.Subject, &m.Header)
	ack, err := w.outcomes.Publish(ctx, m, out.ID)
	endStage(span, err)
	return ack, err
}

// errOutcomeGone: the outcome asked for is no longer in the stream (aged
// out or pushed out by the stream's limits).
var errOutcomeGone = errors.New("outcome no longer in the outcome stream")

// errCodeNoMessage is JetStream's "no message found".
const errCodeNoMessage jetstream.ErrorCode = 10037

// storedOutcome reads the outcome event at seq of the outcome stream: the
// first outcome of a mail whose publish was acknowledged as a duplicate.
// It asks $JS.API.STREAM.MSG.GET.<outcome stream> directly, the one
// lookup the worker role may make (no stream info, no other stream).
func (w *Worker) storedOutcome(ctx context.Context, seq uint64) (*contracts.Outcome, error) {
	req, _ := json.Marshal(struct {
		Seq uint64 `json:"seq"`
	}{seq})
	rctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	resp, err := w.js.Conn().RequestWithContext(rctx, "$JS.API.STREAM.MSG.GET."+w.cfg.Names.OutcomeStream, req)
	if err != nil {
		return nil, fmt.Errorf("look up outcome %d: %w", seq, err)
	}
	var r struct {
		Message *struct {
			Data []byte `json:"data"`
		} `json:"message"`
		Error *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		return nil, fmt.Errorf("look up outcome %d: %w", seq, err)
	}
	if r.Error != nil {
		if r.Error.ErrorCode == errCodeNoMessage {
			return nil, fmt.Errorf("outcome %d: %w", seq, errOutcomeGone)
		}
		return nil, fmt.Errorf("look up outcome %d: %w", seq, r.Error)
	}
	if r.Message == nil {
		return nil, fmt.Errorf("look up outcome %d: empty answer", seq)
	}
	var out contracts.Outcome
	if err := json.Unmarshal(r.Message.Data, &out); err != nil {
		return nil, fmt.Errorf("outcome %d: %w", seq, err)
	}
	return &out, nil
}

// maxOutcomeBytes is the largest outcome event stored on nc: the
// server's max_payload (known once connected: New is given a connected
// nc) less room for headers. The worker reads it once (New): the
// connection's lock is contended on every mail's path.
func maxOutcomeBytes(nc *nats.Conn) int {
	return int(nc.MaxPayload()) - 16<<10
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
