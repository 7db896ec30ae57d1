package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// consume takes mail from the mail consumer, Concurrency at once, and
// watches held mail, until ctx is done or a consumer is gone.
func (w *Worker) consume(ctx context.Context) error {
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	it, err := w.cons.Messages(jetstream.PullMaxMessages(w.cfg.Prefetch))
	if err != nil {
		return fmt.Errorf("worker: consume: %w", err)
	}
	// Drain, not Stop: the mail the iterator buffers stays readable, to
	// be handed back (release) rather than left to wait out AckWait.
	stop := context.AfterFunc(runCtx, it.Drain)
	defer stop()
	w.ready.Store(true)
	defer w.ready.Store(false)
	if w.status != nil {
		statusDone := make(chan struct{})
		go func() {
			defer close(statusDone)
			w.reportStatus(runCtx, w.status, w.store)
		}()
		defer func() { cancel(nil); <-statusDone }()
	}
	w.log.Info("worker taking mail", slog.String("stream", w.cfg.Names.MailStream),
		slog.String("consumer", w.cfg.Names.Consumer), slog.Int("concurrency", w.cfg.Concurrency),
		slog.Int("prefetch", w.cfg.Prefetch))

	var wg sync.WaitGroup
	wg.Go(func() {
		if err := w.watchHeldMail(runCtx); err != nil {
			cancel(err)
		}
	})
	wg.Go(func() {
		if err := checkConsumers(runCtx, w.cons, w.heldCons); err != nil {
			cancel(err)
		}
	})
	// A slot is taken before a mail is, so that at most Prefetch mails
	// wait in the client while their AckWait runs.
	sem := make(chan struct{}, w.cfg.Concurrency)
	for runCtx.Err() == nil {
		select {
		case sem <- struct{}{}:
		case <-runCtx.Done():
			continue
		}
		msg, err := it.Next()
		if err != nil {
			<-sem
			if runCtx.Err() != nil {
				break
			}
			if fatalConsumeError(err) {
				cancel(fmt.Errorf("worker: consumer %s: %w", w.cfg.Names.Consumer, err))
				break
			}
			w.log.Warn("consume", slog.Any("err", err))
			continue
		}
		if runCtx.Err() != nil {
			<-sem
			w.releaseOne(msg)
			break
		}
		wg.Go(func() {
			defer func() { <-sem }()
			w.handle(runCtx, msg)
		})
	}
	// Not ready from here: no new mail is taken; mail in progress ends.
	w.ready.Store(false)
	w.release(it)
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return context.Cause(runCtx)
}

// release hands back the mail the stopped iterator still buffers, so
// that another worker takes it at once instead of after AckWait.
func (w *Worker) release(it jetstream.MessagesContext) {
	for {
		msg, err := it.Next()
		if err != nil {
			return
		}
		w.releaseOne(msg)
	}
}

func (w *Worker) releaseOne(msg jetstream.Msg) {
	d := w.newDelivery(msg)
	w.settle(context.Background(), d, w.policy.decide(event{step: stepStopping, attempt: d.attempt}), nil)
}

// consumerCheckInterval is how often a worker checks that its consumers
// still exist: a pull iterator may only notice a deleted consumer through
// missed heartbeats, much later.
const consumerCheckInterval = 10 * time.Second

// checkConsumers returns an error once one of the consumers is gone (not
// found twice in a row, so that a moment of a cluster electing a leader
// does not restart the fleet), or nil when ctx ends.
func checkConsumers(ctx context.Context, cs ...jetstream.Consumer) error {
	t := time.NewTicker(consumerCheckInterval)
	defer t.Stop()
	missing := make([]int, len(cs))
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for i, c := range cs {
			_, err := c.Info(ctx)
			if !errors.Is(err, jetstream.ErrConsumerNotFound) {
				missing[i] = 0
				continue
			}
			if missing[i]++; missing[i] >= 2 {
				return fmt.Errorf("worker: consumer %s: %w", c.CachedInfo().Name, err)
			}
		}
	}
}

// fatalConsumeError reports whether a consumer iterator error means the
// worker can take no more mail: the consumer is gone or the iterator
// closed. The process then ends with an error, so that it is restarted
// (and reports not ready meanwhile) rather than idling as if healthy.
func fatalConsumeError(err error) bool {
	return errors.Is(err, jetstream.ErrMsgIteratorClosed) ||
		errors.Is(err, jetstream.ErrConsumerDeleted) ||
		errors.Is(err, jetstream.ErrConsumerNotFound)
}
