package workers

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/contracts"
)

// Mail that mail.pause holds is parked: copied to the held stream and
// acknowledged on the mail stream. Workers watch held mail
// through their own consumer, keep it in flight, look at it again on
// every rule change and every HoldDelay, and resume it (a copy back on
// the mail subject) as soon as the pause no longer applies. So held mail
// is kept safely, never takes a slot of the main consumer from other
// mail, never counts toward the attempt limit (the attempts used before
// the hold travel in a header), and resumes at once when switched off.

// priorAttempts returns the attempts a resumed mail used before its hold.
func priorAttempts(h nats.Header) int {
	n, err := strconv.Atoi(h.Get(contracts.HeaderPriorAttempts))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// copyMsg returns a copy of msg for subject with the mail's identity kept
// and a de-duplication id of its own: the mail id, a tag and the stream
// sequence of msg, so that repeating the copy after a lost ack stores it
// once.
func copyMsg(msg jetstream.Msg, subject, mailID, tag string) (*nats.Msg, string) {
	h := nats.Header{}
	copyHeaders(h, msg.Headers())
	var seq uint64
	if md, err := msg.Metadata(); err == nil {
		seq = md.Sequence.Stream
	}
	id := mailID + "." + tag + "." + strconv.FormatUint(seq, 10)
	h.Set(contracts.HeaderMailID, mailID)
	h.Set(contracts.HeaderMsgID, id)
	return &nats.Msg{Subject: subject, Header: h, Data: msg.Data()}, id
}

// park moves a held mail to the held subject, then acknowledges it.
func (w *Worker) park(ctx context.Context, msg jetstream.Msg, env contracts.Envelope, attempt int, why error) error {
	m, id := copyMsg(msg, w.cfg.Names.HeldSubject, env.ID, "held")
	m.Header.Set(contracts.HeaderPriorAttempts, strconv.Itoa(attempt-1))
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := w.js.PublishMsg(pctx, m, jetstream.WithMsgID(id)); err != nil {
		return err
	}
	w.log.Info("mail held", slog.String("id", env.ID), slog.Any("reason", why))
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := msg.DoubleAck(actx); err != nil {
		w.log.Warn("ack of a parked mail failed; it will be parked again (deduplicated)", slog.String("id", env.ID), slog.Any("err", err))
	}
	return nil
}

// resume puts a held mail back on the mail subject, then acknowledges the
// held copy.
func (w *Worker) resume(ctx context.Context, msg jetstream.Msg, env contracts.Envelope) error {
	m, id := copyMsg(msg, w.cfg.Names.MailSubject, env.ID, "resume")
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := w.js.PublishMsg(pctx, m, jetstream.WithMsgID(id)); err != nil {
		return err
	}
	w.log.Info("held mail resumed", slog.String("id", env.ID))
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := msg.DoubleAck(actx); err != nil {
		w.log.Warn("ack of a resumed mail failed; it will be resumed again (deduplicated)", slog.String("id", env.ID), slog.Any("err", err))
	}
	return nil
}

// watchHeldMail takes held mail from the held consumer, up to MaxHeld at
// once, until ctx is done. It returns an error when the consumer is gone.
func (w *Worker) watchHeldMail(ctx context.Context, cons jetstream.Consumer) error {
	it, err := cons.Messages(jetstream.PullMaxMessages(min(w.cfg.MaxHeld, 16)))
	if err != nil {
		return fmt.Errorf("worker: consume held mail: %w", err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
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
				return nil
			}
			if fatalConsumeError(err) {
				return fmt.Errorf("worker: consumer %s: %w", w.cfg.Names.HeldConsumer, err)
			}
			w.log.Warn("consume held mail", slog.Any("err", err))
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			w.watchHeld(ctx, msg)
		}()
	}
	return nil
}

// stillHeld reports whether the mail must stay held under the current
// rules: mail.pause holds it, or DNS still does not answer (a transient
// failure while held keeps it held rather than releasing it to spend its
// attempts). It is looked at as on its last attempt, so a DNS temperror
// reads as held.
func (w *Worker) stillHeld(ctx context.Context, env contracts.Envelope, raw []byte) bool {
	_, err := w.pipe.Process(ctx, w.store.Snapshot(), env, raw, w.cfg.MaxAttempts)
	return err != nil && ClassOf(err) != Malformed
}

// watchHeld keeps one held mail in flight until the pause no longer
// applies to it, then resumes it. On shutdown it hands the mail back to
// the server at once.
func (w *Worker) watchHeld(runCtx context.Context, msg jetstream.Msg) {
	w.held.Add(1)
	defer w.held.Add(-1)
	ctx := context.WithoutCancel(runCtx)
	env, err := contracts.DecodeEnvelope(msg.Headers())
	if err != nil {
		env = partialEnvelope(msg)
	}
	progress := time.NewTicker(w.progressEvery)
	defer progress.Stop()
	recheck := time.NewTicker(w.cfg.HoldDelay)
	defer recheck.Stop()
	for {
		changed := w.store.Changed()
		// A held mail whose envelope no longer decodes is resumed too:
		// the main flow dead-letters it with the reason.
		if err != nil || !w.stillHeld(ctx, env, msg.Data()) {
			rerr := w.resume(ctx, msg, env)
			if rerr == nil {
				return
			}
			w.log.Warn("held mail not resumed; will try again", slog.String("id", env.ID), slog.Any("err", rerr))
		}
	wait:
		for {
			select {
			case <-runCtx.Done():
				if nerr := msg.Nak(); nerr != nil {
					w.log.Warn("nak of a held mail failed; the server redelivers it after AckWait", slog.String("id", env.ID), slog.Any("err", nerr))
				}
				return
			case <-progress.C:
				if perr := msg.InProgress(); perr != nil {
					w.log.Warn("in-progress of a held mail failed", slog.String("id", env.ID), slog.Any("err", perr))
				}
			case <-changed:
				break wait
			case <-recheck.C:
				break wait
			}
		}
	}
}

// copyHeaders copies the input's headers into h, less the server's atomic
// batch headers: a message the producer stored in a batch carries them,
// and a copy published with them would be refused as part of a batch.
func copyHeaders(h, from nats.Header) {
	for k, v := range from {
		if strings.HasPrefix(k, "Nats-Batch-") {
			continue
		}
		h[k] = append([]string(nil), v...)
	}
}
