package workers

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/version"
)

// errDecided: the mail already has its outcome, of another disposition
// than dead; it gets no dead letter and is acked.
var errDecided = errors.New("the mail already has its outcome")

// deadLetter takes d the dead path. The outcome stream is the record of
// what became of a mail, and the first event stored under the mail id
// wins (docs/architecture.md, "Exactly one outcome per mail"):
//
//  1. the dead outcome is stored first. Stored, or a duplicate of a dead
//     outcome stored before (an earlier attempt that failed or crashed
//     after it): go on. A duplicate of any other disposition: the mail
//     was decided before (its ack was lost); errDecided, and no dead
//     letter.
//  2. the dead letter is stored under Nats-Msg-Id = the mail id, so that
//     storing it again is stored once.
//
// The caller terms d on nil, acks it on errDecided, and retries on any
// other error: a failure anywhere leaves exactly one of {an outcome, a
// dead outcome and its dead letter}.
func (w *Worker) deadLetter(ctx context.Context, d *delivery, cause error) error {
	reason := headerSafe(cause.Error())
	messageID := ""
	if m, err := ParseMail(d.env, d.msg.Data()); err == nil {
		messageID = m.MessageID
	}
	ack, err := w.publishOutcome(ctx, &contracts.Outcome{
		Schema:      contracts.OutcomeSchema,
		ID:          d.env.ID,
		MessageID:   messageID,
		Envelope:    d.env,
		ReceivedAt:  d.env.ReceivedAt,
		ProcessedAt: time.Now().UTC(),
		Disposition: contracts.Dead,
		Reason:      reason,
		Attempt:     d.attempt,
		Auth:        contracts.Auth{DKIM: []contracts.DKIMResult{}, Trust: contracts.TrustNone},
		Flags:       []contracts.FlagDecision{},
		Worker:      contracts.WorkerInfo{Name: w.cfg.Name, Version: version.Version, Env: w.cfg.Env},
		TraceID:     traceID(ctx),
	})
	if err != nil {
		return err
	}
	attempt := d.attempt
	if ack.Duplicate {
		first, err := w.storedOutcome(ctx, ack.Sequence)
		switch {
		case errors.Is(err, errOutcomeGone):
			// Aged out: whether it was dead is not known any more. A
			// dead letter too many is better than a mail lost.
			d.logger().Warn("the mail's first outcome is gone from the stream; storing its dead letter", slog.Uint64("seq", ack.Sequence))
		case err != nil:
			return err
		case first.Disposition != contracts.Dead:
			return errDecided
		default:
			reason, attempt = headerSafe(first.Reason), first.Attempt
		}
	}
	return w.storeDeadLetter(ctx, d, reason, ClassOf(cause), attempt)
}

// completeDead stores the dead letter of a mail whose dead outcome first
// was stored (by an attempt that failed or crashed before its dead
// letter), with that outcome's reason and attempt. The mail was processed
// again after it, so its failure was transient: a malformed mail fails
// the same way every time and takes the dead path itself.
func (w *Worker) completeDead(ctx context.Context, d *delivery, first *contracts.Outcome) error {
	return w.storeDeadLetter(ctx, d, headerSafe(first.Reason), Transient, first.Attempt)
}

// storeDeadLetter stores the raw mail with the reason on the dead-letter
// subject, under Nats-Msg-Id = the mail id.
func (w *Worker) storeDeadLetter(ctx context.Context, d *delivery, reason string, class Class, attempt int) error {
	h := nats.Header{}
	copyHeaders(h, d.msg.Headers())
	contracts.DeadLetter{Reason: reason, Class: class.String(), Attempts: attempt, OriginalID: d.env.ID}.Encode(h)
	h.Set(contracts.HeaderMsgID, d.env.ID)
	dctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	dctx, span := w.startPublish(dctx, w.cfg.Names.DeadSubject, &h)
	ack, err := w.js.PublishMsg(dctx, &nats.Msg{Subject: w.cfg.Names.DeadSubject, Header: h, Data: d.msg.Data()}, jetstream.WithMsgID(d.env.ID))
	endStage(span, err)
	if err == nil && !ack.Duplicate {
		w.met.deadLetter(ctx, class.String())
	}
	return err
}

// headerSafe makes s fit a NATS header value: one line, at most 1 KiB.
func headerSafe(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 1024 {
		s = s[:1024]
	}
	return s
}
