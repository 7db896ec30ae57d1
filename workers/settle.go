package workers

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/mailscope/mailscope/contracts"
)

// storeTimeout bounds one store (a dead letter, a held or resumed copy);
// outcomes are bounded by OutcomeCommit.Timeout.
const storeTimeout = 10 * time.Second

// settle carries out verdict v for delivery d. It is the only code that
// acks, naks, terms, parks or resumes a delivery (docs/architecture.md,
// "The settle path"); what to do was decided by decide, and when a store
// that v needs fails, decide is asked again (stepStoreFailed). out is the
// outcome of actStore. settle reports whether d left this worker's hands
// (acked, naked or termed); false only for a held mail kept in flight.
func (w *Worker) settle(ctx context.Context, d *delivery, v verdict, out *contracts.Outcome) bool {
	if v.cause != nil && v.act != actKeep && v.act != actRelease {
		w.met.failure(ctx, ClassOf(v.cause).String(), v.act.String())
	}
	switch v.act {
	case actStore:
		ack, err := w.publishOutcome(ctx, out)
		var first *contracts.Outcome
		if err == nil && ack.Duplicate {
			// Only a redelivery: the mail has an outcome already. A dead
			// one, stored by an attempt that ended before its dead
			// letter, decides: the dead path is completed instead.
			if first, err = w.storedOutcome(ctx, ack.Sequence); errors.Is(err, errOutcomeGone) {
				first, err = nil, nil
			}
		}
		if err != nil {
			return w.settle(ctx, d, w.policy.decide(event{step: stepStoreFailed, failed: actStore, err: err, attempt: d.attempt}), nil)
		}
		if first != nil && first.Disposition == contracts.Dead {
			d.logger().WarnContext(ctx, "the mail's outcome is dead (an earlier attempt ended before its dead letter); storing the dead letter")
			if err := w.completeDead(ctx, d, first); err != nil {
				d.logger().ErrorContext(ctx, "dead letter not stored", slog.Any("err", err))
				return w.settle(ctx, d, w.policy.decide(event{step: stepStoreFailed, failed: actDead, err: err, attempt: d.attempt}), nil)
			}
			w.term(d, Transient.String())
			return true
		}
		elapsed := time.Since(d.start)
		w.met.outcome(ctx, string(out.Disposition), elapsed.Seconds(), ack.Duplicate)
		if !ack.Duplicate {
			w.met.shadow(ctx, out)
			logOutcome(ctx, w.log, out, elapsed)
		}
		if !w.dropClaim(ctx, d) { // a claimed mail's object goes before the ack (claim.go)
			return true
		}
		w.ack(ctx, d, "if the mail is redelivered its outcome is deduplicated")
	case actRetry:
		d.logger().WarnContext(ctx, "will retry", slog.Any("err", v.cause), slog.Duration("delay", v.delay))
		w.met.retry(ctx, ClassOf(v.cause).String())
		w.nak(d, v.delay)
	case actDead:
		d.logger().ErrorContext(ctx, "dead-lettering mail", slog.String("class", ClassOf(v.cause).String()), slog.Any("err", v.cause))
		switch err := w.deadLetter(ctx, d, v.cause); {
		case errors.Is(err, errDecided):
			d.logger().WarnContext(ctx, "not dead-lettered: the mail already has its outcome (an earlier attempt's ack was lost)")
			w.ack(ctx, d, "its outcome stays the one stored first")
		case err != nil:
			d.logger().ErrorContext(ctx, "dead letter not stored", slog.Any("err", err))
			return w.settle(ctx, d, w.policy.decide(event{step: stepStoreFailed, failed: actDead, err: err, attempt: d.attempt}), nil)
		default:
			w.term(d, ClassOf(v.cause).String())
		}
	case actHold:
		if err := w.park(ctx, d, v.cause); err != nil {
			d.logger().WarnContext(ctx, "held mail not parked; will look again", slog.Any("err", err))
			return w.settle(ctx, d, w.policy.decide(event{step: stepStoreFailed, failed: actHold, err: err, attempt: d.attempt}), nil)
		}
		w.ack(ctx, d, "it will be parked again (deduplicated)")
	case actResume:
		if err := w.resume(ctx, d); err != nil {
			d.logger().WarnContext(ctx, "held mail not resumed; will try again", slog.Any("err", err))
			return w.settle(ctx, d, w.policy.decide(event{step: stepStoreFailed, failed: actResume, err: err, attempt: d.attempt}), nil)
		}
		w.ack(ctx, d, "it will be resumed again (deduplicated)")
	case actKeep:
		return false
	case actRelease:
		w.nak(d, 0)
	}
	return true
}

// logOutcome writes the info line of an outcome stored: the mail's id,
// disposition, handler, attempt, trust level, recipient count and time
// from delivery to stored, and (through ctx, see telemetry.TraceHandler)
// the trace id. Never the subject, the body or an address. Above info it
// costs one Enabled call and no allocation.
func logOutcome(ctx context.Context, l *slog.Logger, out *contracts.Outcome, elapsed time.Duration) {
	if !l.Enabled(ctx, slog.LevelInfo) {
		return
	}
	l.LogAttrs(ctx, slog.LevelInfo, "outcome",
		slog.String("id", out.ID),
		slog.String("disposition", string(out.Disposition)),
		slog.String("handler", out.Handler),
		slog.Int("attempt", out.Attempt),
		slog.String("trust", out.Auth.Trust),
		slog.Int("rcpts", len(out.Envelope.RcptTo)),
		slog.Duration("duration", elapsed))
}

// ack acknowledges d; after names what a lost ack leads to, for the log.
// The ack is not confirmed (no round trip is waited for): whatever it
// acknowledges is stored already, so a lost ack only means a redelivery,
// and the redelivered mail's outcome, held copy or resumed copy carries
// the same Nats-Msg-Id and is deduplicated (docs/architecture.md,
// "Exactly one outcome per mail"). Waiting would hold the mail's slot
// for the server's fsync of the ack's removal from the work queue, one
// mail at a time: in the load test the worker then spent most of its
// time there, at half the throughput (docs/performance.md).
func (w *Worker) ack(ctx context.Context, d *delivery, after string) {
	if err := d.msg.Ack(); err != nil {
		d.logger().WarnContext(ctx, "ack failed; "+after, slog.Any("err", err))
	}
}

// term ends d for good, once its dead letter is stored.
func (w *Worker) term(d *delivery, reason string) {
	if err := d.msg.TermWithReason(reason); err != nil {
		d.logger().Warn("term failed; the mail will be redelivered and dead-lettered again (deduplicated)", slog.Any("err", err))
	}
}

// nak hands d back to the server for redelivery after delay (0: now).
func (w *Worker) nak(d *delivery, delay time.Duration) {
	var err error
	if delay > 0 {
		err = d.msg.NakWithDelay(delay)
	} else {
		err = d.msg.Nak()
	}
	if err != nil {
		d.logger().Warn("nak failed; the server redelivers after AckWait", slog.Any("err", err))
	}
}
