package workers

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/contracts"
)

// Mail that is held (mail.pause, or DNS silent past the attempt limit) is
// parked: copied to the held stream and acknowledged on the mail stream.
// Workers watch held mail through their own consumer, keep it in flight,
// evaluate it again (Evaluate only: no handler runs, no side effect) on
// every rule change and every HoldDelay, and resume it (a copy back on
// the mail stream, under the resume subject) as soon as it is no longer held. So held mail is kept
// safely, never takes a slot of the main consumer from other mail, never
// counts toward the attempt limit (the attempts used before the hold
// travel in a header), and resumes at once when switched off.

// park copies a held mail to the held subject; settle acknowledges it.
func (w *Worker) park(ctx context.Context, d *delivery, why error) error {
	m, id := copyMsg(d.msg, w.cfg.Names.HeldSubject, d.env.ID, "held")
	m.Header.Set(contracts.HeaderPriorAttempts, strconv.Itoa(d.attempt-1))
	nextHold(d.hold, holdReason(why), time.Now()).encode(m.Header)
	pctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if _, err := w.js.PublishMsg(pctx, m, jetstream.WithMsgID(id)); err != nil {
		return err
	}
	d.logger().Info("mail held", slog.Any("reason", why))
	return nil
}

// resume copies a held mail back onto the mail stream, on the resume
// subject (workers may not publish on the mail subject); settle
// acknowledges the held copy.
func (w *Worker) resume(ctx context.Context, d *delivery) error {
	m, id := copyMsg(d.msg, w.cfg.Names.ResumeSubject, d.env.ID, "resume")
	pctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if _, err := w.js.PublishMsg(pctx, m, jetstream.WithMsgID(id)); err != nil {
		return err
	}
	d.logger().Info("held mail resumed")
	return nil
}

// watchHeldMail takes held mail from the held consumer, up to MaxHeld at
// once, until ctx is done. It returns an error when the consumer is gone.
func (w *Worker) watchHeldMail(ctx context.Context) error {
	it, err := w.heldCons.Messages(jetstream.PullMaxMessages(min(w.cfg.MaxHeld, 16)))
	if err != nil {
		return fmt.Errorf("worker: consume held mail: %w", err)
	}
	stop := context.AfterFunc(ctx, it.Drain)
	defer stop()
	sem := make(chan struct{}, w.cfg.MaxHeld)
	var wg sync.WaitGroup
	defer wg.Wait()
	for ctx.Err() == nil {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			continue
		}
		msg, err := it.Next()
		if err != nil {
			<-sem
			if ctx.Err() != nil {
				break
			}
			if fatalConsumeError(err) {
				return fmt.Errorf("worker: consumer %s: %w", w.cfg.Names.HeldConsumer, err)
			}
			w.log.Warn("consume held mail", slog.Any("err", err))
			continue
		}
		if ctx.Err() != nil {
			<-sem
			w.releaseOne(msg)
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			w.watchHeld(ctx, msg)
		})
	}
	w.release(it)
	return nil
}

// recheck evaluates a held mail again under the current rules, with no
// side effect, and returns why it is still held (nil: it may go on).
func (w *Worker) recheck(ctx context.Context, d *delivery) error {
	if d.envErr != nil {
		return d.envErr
	}
	defer w.heldChecks.Add(1)
	defer w.claimSlot(d)()
	raw, err := w.mailBytes(ctx, d) // a claimed mail is read from its object, each time (claim.go)
	if err != nil {
		return err
	}
	_, err = w.pipe.Evaluate(w.dnsContext(ctx, d), w.store.Snapshot(), d.env, raw, d.attempt)
	return err
}

// watchHeld keeps one held mail in flight until it is no longer held,
// then resumes it. On shutdown it hands the mail back to the server at
// once.
func (w *Worker) watchHeld(runCtx context.Context, msg jetstream.Msg) {
	ctx := context.WithoutCancel(runCtx)
	d := w.newDelivery(msg)
	w.held.Add(1)
	w.heldMail.Store(d, d.hold)
	defer func() {
		w.heldMail.Delete(d)
		w.held.Add(-1)
	}()
	progress := time.NewTicker(w.progressEvery)
	defer progress.Stop()
	recheck := time.NewTicker(w.cfg.HoldDelay)
	defer recheck.Stop()
	for {
		changed := w.store.Changed()
		rctx, span := w.startProcess(ctx, d, "recheck", w.cfg.Names.HeldConsumer)
		v := w.policy.decide(event{step: stepHeldChecked, err: w.recheck(rctx, d), attempt: d.attempt})
		done := w.settle(rctx, d, v, nil)
		endProcess(span, v, nil)
		if done {
			return
		}
	wait:
		for {
			select {
			case <-runCtx.Done():
				w.settle(ctx, d, w.policy.decide(event{step: stepStopping, attempt: d.attempt}), nil)
				return
			case <-progress.C:
				if perr := msg.InProgress(); perr != nil {
					d.logger().Warn("in-progress of a held mail failed", slog.Any("err", perr))
				}
			case <-changed:
				break wait
			case <-recheck.C:
				break wait
			}
		}
	}
}
