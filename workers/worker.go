// Package workers consumes mail from the mail stream and processes it:
// decode the envelope, parse, verify DKIM, evaluate flag rules, run the
// handler, publish the outcome, and only then acknowledge. Workers are
// stateless; any number of replicas share one durable consumer.
package workers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/auth"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/rules"
)

// Worker is one worker process's consumer loop.
type Worker struct {
	cfg   Config
	js    jetstream.JetStream
	pipe  *Pipeline
	store *rules.Store
	ready atomic.Bool
	held  atomic.Int64
	log   *slog.Logger
	met   metrics
	// progressEvery is how often a held mail is reported in progress:
	// a third of the consumer's AckWait.
	progressEvery time.Duration
}

// New returns a Worker using nc. It does nothing until Run.
func New(cfg Config, nc *nats.Conn) (*Worker, error) {
	cfg = cfg.WithDefaults()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	w := &Worker{cfg: cfg, js: js, pipe: NewPipeline(cfg), log: cfg.Logger}
	w.met = newMetrics(w)
	return w, nil
}

// Ready reports whether the worker has loaded the flag rules and takes
// mail.
func (w *Worker) Ready() bool { return w.ready.Load() }

// Held returns how many mails the worker holds for mail.pause.
func (w *Worker) Held() int { return int(w.held.Load()) }

// Rules returns the live rule store, nil before Run loaded it.
func (w *Worker) Rules() *rules.Store { return w.store }

// Run loads every flag rule, then takes mail until ctx is done. Mail in
// progress when ctx ends is finished (bounded by HandlerTimeout) before
// Run returns. Run fails when the bucket or the consumer does not exist
// (run `mailscope provision`), or Names.KeyBucket is set and that bucket
// does not exist.
func (w *Worker) Run(ctx context.Context) error {
	kv, err := w.js.KeyValue(ctx, w.cfg.Names.FlagsBucket)
	if err != nil {
		return fmt.Errorf("worker: flag bucket %s: %w", w.cfg.Names.FlagsBucket, err)
	}
	// Everything Run starts ends with it, also when it fails.
	storeCtx, stopStore := context.WithCancel(ctx)
	defer stopStore()
	w.store = rules.NewStore(kv, w.log)
	if err := w.store.Start(storeCtx); err != nil {
		return fmt.Errorf("worker: load flag rules: %w", err)
	}
	// A KV watcher notices a restarted server only after missing
	// heartbeats (up to ~20s), serving stale rules meanwhile: watch again
	// as soon as the connection is back.
	nc := w.js.Conn()
	reconnected := nc.StatusChanged(nats.CONNECTED)
	defer nc.RemoveStatusListener(reconnected)
	go func() {
		for range reconnected {
			w.store.Rewatch()
		}
	}()
	if name := w.cfg.Names.KeyBucket; name != "" {
		// The staging key source: DKIM keys read before DNS.
		keys, err := w.js.KeyValue(ctx, name)
		if err != nil {
			return fmt.Errorf("worker: key bucket %s: %w", name, err)
		}
		w.log.Warn("DKIM keys are read from a staging key bucket before DNS; not for production", slog.String("bucket", name))
		cfg := w.cfg
		cfg.Auth.KeySource = auth.NewKVKeys(keys)
		w.pipe = NewPipeline(cfg)
	}
	cons, err := w.js.Consumer(ctx, w.cfg.Names.MailStream, w.cfg.Names.Consumer)
	if err != nil {
		return fmt.Errorf("worker: consumer %s on %s: %w", w.cfg.Names.Consumer, w.cfg.Names.MailStream, err)
	}
	w.progressEvery = w.cfg.ProgressInterval
	if w.progressEvery <= 0 {
		w.progressEvery = 10 * time.Second
		if ci := cons.CachedInfo(); ci != nil && ci.Config.AckWait > 0 {
			w.progressEvery = ci.Config.AckWait / 3
		}
	}
	heldCons, err := w.js.Consumer(ctx, w.cfg.Names.HeldStream, w.cfg.Names.HeldConsumer)
	if err != nil {
		return fmt.Errorf("worker: consumer %s on %s: %w", w.cfg.Names.HeldConsumer, w.cfg.Names.HeldStream, err)
	}
	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	it, err := cons.Messages(jetstream.PullMaxMessages(w.cfg.Concurrency))
	if err != nil {
		return fmt.Errorf("worker: consume: %w", err)
	}
	stop := context.AfterFunc(runCtx, it.Stop)
	defer stop()
	w.ready.Store(true)
	defer w.ready.Store(false)
	if skv, err := w.js.KeyValue(ctx, w.cfg.Names.StatusBucket); err != nil {
		w.log.Warn("no status bucket; status not reported (run mailscope provision)",
			slog.String("bucket", w.cfg.Names.StatusBucket), slog.Any("err", err))
	} else {
		statusDone := make(chan struct{})
		go func() {
			defer close(statusDone)
			w.reportStatus(runCtx, skv, w.store)
		}()
		defer func() { cancel(nil); <-statusDone }()
	}
	w.log.Info("worker taking mail", slog.String("stream", w.cfg.Names.MailStream),
		slog.String("consumer", w.cfg.Names.Consumer), slog.Int("concurrency", w.cfg.Concurrency))

	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := w.watchHeldMail(runCtx, heldCons); err != nil {
			cancel(err)
		}
	}()
	go func() {
		defer wg.Done()
		if err := checkConsumers(runCtx, cons, heldCons); err != nil {
			cancel(err)
		}
	}()
	// A slot is taken before a mail is, so no mail waits in the client
	// for a slot while its AckWait runs.
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
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			w.handle(runCtx, msg)
		}()
	}
	// Not ready from here: no new mail is taken; mail in progress ends.
	w.ready.Store(false)
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return context.Cause(runCtx)
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

// handle takes one input message to its end: an outcome and an ack, a
// dead letter and a term, or a nak for a later attempt. It never returns
// with the message in limbo except when NATS itself is unreachable, in
// which case the server redelivers it after AckWait. Processing is not
// cut short when runCtx ends.
func (w *Worker) handle(runCtx context.Context, msg jetstream.Msg) {
	ctx := context.WithoutCancel(runCtx)
	start := time.Now()
	attempt := 1
	if md, err := msg.Metadata(); err == nil {
		attempt = int(md.NumDelivered)
	}
	attempt += priorAttempts(msg.Headers())
	// Slow processing (DNS retries, a slow handler) must not outlive
	// AckWait, or the server would hand the mail to a second worker.
	stopProgress := w.keepInProgress(msg)
	defer stopProgress()
	env, err := contracts.DecodeEnvelope(msg.Headers())
	var out *contracts.Outcome
	switch {
	case err != nil:
		err = malformed("%v", err)
		env = partialEnvelope(msg)
	case attempt > 2*w.cfg.MaxAttempts:
		// Far past the limit before processing: the mail keeps being
		// delivered without ever reaching an outcome or a retry decision,
		// so its attempts crash or stall their workers. Processing it
		// again could take down another one. (The slack of a second
		// MaxAttempts absorbs redeliveries that were no attempt: a lost
		// ack, a shutdown, a park that failed.)
		err = transient("delivery %d is far past the attempt limit (%d) without an outcome; dead-lettered unprocessed, as a mail that crashes or stalls workers", attempt, w.cfg.MaxAttempts)
	default:
		out, err = w.pipe.Process(ctx, w.store.Snapshot(), env, msg.Data(), attempt)
	}
	if w.finish(ctx, msg, env, attempt, out, err) {
		w.met.outcome(ctx, string(out.Disposition), time.Since(start).Seconds())
	}
}

// keepInProgress tells the server every progressEvery that msg is still
// being worked on, until the returned function is called.
func (w *Worker) keepInProgress(msg jetstream.Msg) func() {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(w.progressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if err := msg.InProgress(); err != nil {
					w.log.Warn("in-progress failed", slog.Any("err", err))
				}
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// finish stores the outcome and acks, or applies the failure's action.
// It reports whether the outcome was stored.
func (w *Worker) finish(ctx context.Context, msg jetstream.Msg, env contracts.Envelope, attempt int, out *contracts.Outcome, err error) bool {
	log := w.log.With(slog.String("id", env.ID), slog.Int("attempt", attempt))
	if err == nil {
		if perr := w.publishOutcome(ctx, out); perr != nil {
			err = transient("publish outcome: %v", perr)
		} else {
			// A confirmed ack: a lost one would mean a redelivery and a
			// second outcome, kept out only by the dedup window.
			actx, cancel := context.WithTimeout(ctx, 5*time.Second)
			if aerr := msg.DoubleAck(actx); aerr != nil {
				log.Warn("ack not confirmed; if the mail is redelivered its outcome is deduplicated", slog.Any("err", aerr))
			}
			cancel()
			return true
		}
	}
	act := decide(err, attempt, w.cfg.MaxAttempts)
	w.met.failure(ctx, ClassOf(err).String(), act.String())
	switch act {
	case actHold:
		if perr := w.park(ctx, msg, env, attempt, err); perr != nil {
			log.Warn("held mail not parked; will look again", slog.Any("err", perr))
			nak(log, msg, w.cfg.HoldDelay)
		}
	case actRetry:
		d := backoff(attempt, w.cfg.BackoffBase, w.cfg.BackoffMax)
		log.Warn("transient failure; will retry", slog.Any("err", err), slog.Duration("delay", d))
		nak(log, msg, d)
	case actDead:
		log.Error("dead-lettering mail", slog.String("class", ClassOf(err).String()), slog.Any("err", err))
		if derr := w.deadLetter(ctx, msg, env, err, attempt); derr != nil {
			log.Error("dead letter not stored; will retry", slog.Any("err", derr))
			nak(log, msg, backoff(attempt, w.cfg.BackoffBase, w.cfg.BackoffMax))
			return false
		}
		if terr := msg.TermWithReason(ClassOf(err).String()); terr != nil {
			log.Warn("term failed; the mail will be redelivered and dead-lettered again (deduplicated)", slog.Any("err", terr))
		}
	}
	return false
}

func nak(log *slog.Logger, msg jetstream.Msg, d time.Duration) {
	if err := msg.NakWithDelay(d); err != nil {
		log.Warn("nak failed; the server redelivers after AckWait", slog.Any("err", err))
	}
}

// partialEnvelope keeps what can be read of a broken envelope, and an id
// for the dead letter: the message's own, or its stream sequence.
func partialEnvelope(msg jetstream.Msg) contracts.Envelope {
	h := msg.Headers()
	env := contracts.Envelope{
		ID:       h.Get(contracts.HeaderMsgID),
		MailFrom: h.Get(contracts.HeaderMailFrom),
		RcptTo:   h.Values(contracts.HeaderRcptTo),
		Protocol: h.Get(contracts.HeaderProtocol),
	}
	if env.ID == "" {
		if md, err := msg.Metadata(); err == nil {
			env.ID = "seq-" + strconv.FormatUint(md.Sequence.Stream, 10)
		}
	}
	return env
}

// publishOutcome stores the outcome, deduplicated by the mail id.
func (w *Worker) publishOutcome(ctx context.Context, out *contracts.Outcome) error {
	data, err := encodeOutcome(out, w.maxOutcomeBytes())
	if err != nil {
		return err
	}
	m := &nats.Msg{Subject: w.cfg.Names.OutcomeSubject(out.Disposition), Header: nats.Header{}, Data: data}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = w.js.PublishMsg(pctx, m, jetstream.WithMsgID(out.ID))
	return err
}

// maxOutcomeBytes is the largest outcome event stored: the server's
// max_payload less room for headers.
func (w *Worker) maxOutcomeBytes() int {
	if mp := w.js.Conn().MaxPayload(); mp > 0 {
		return int(mp) - 16<<10
	}
	return 1<<20 - 16<<10
}

// encodeOutcome returns out as JSON of at most limit bytes: when the
// summary makes it larger, its text is dropped, then the summary itself,
// and Summary.Truncated or the outcome's Note says so. A mail is never
// failed because its outcome would be too large.
func encodeOutcome(out *contracts.Outcome, limit int) ([]byte, error) {
	encode := func() ([]byte, error) {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(out); err != nil {
			return nil, err
		}
		return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
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

// deadLetter stores the raw mail with the reason, then its outcome.
func (w *Worker) deadLetter(ctx context.Context, msg jetstream.Msg, env contracts.Envelope, cause error, attempt int) error {
	h := nats.Header{}
	copyHeaders(h, msg.Headers())
	reason := headerSafe(cause.Error())
	h.Set(contracts.HeaderDeadReason, reason)
	h.Set(contracts.HeaderDeadClass, ClassOf(cause).String())
	h.Set(contracts.HeaderAttempts, strconv.Itoa(attempt))
	h.Set(contracts.HeaderOriginalID, env.ID)
	h.Set(contracts.HeaderMsgID, env.ID)
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := w.js.PublishMsg(dctx, &nats.Msg{Subject: w.cfg.Names.DeadSubject, Header: h, Data: msg.Data()}, jetstream.WithMsgID(env.ID)); err != nil {
		return err
	}
	now := time.Now().UTC()
	messageID := ""
	if m, err := ParseMail(env, msg.Data()); err == nil {
		messageID = m.MessageID
	}
	return w.publishOutcome(ctx, &contracts.Outcome{
		Schema:      contracts.OutcomeSchema,
		ID:          env.ID,
		MessageID:   messageID,
		Envelope:    env,
		ReceivedAt:  env.ReceivedAt,
		ProcessedAt: now,
		Disposition: contracts.Dead,
		Reason:      reason,
		Attempt:     attempt,
		Auth:        contracts.Auth{DKIM: []contracts.DKIMResult{}, Trust: contracts.TrustNone},
		Flags:       []contracts.FlagDecision{},
		Worker:      contracts.WorkerInfo{Name: w.cfg.Name, Version: Version, Env: w.cfg.Env},
	})
}

// headerSafe makes s fit a NATS header value: one line, at most 1 KiB.
func headerSafe(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 1024 {
		s = s[:1024]
	}
	return s
}
