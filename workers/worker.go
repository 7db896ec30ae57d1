// Package workers consumes mail from the mail stream and processes it:
// decode the envelope, parse, verify DKIM, evaluate flag rules (the pure
// evaluate step), run the handler (act), store the outcome, and only then
// acknowledge. Workers are stateless; any number of replicas share one
// durable consumer. docs/architecture.md describes the flow.
package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"

	"github.com/mailscope/mailscope/auth"
	"github.com/mailscope/mailscope/groupcommit"
	"github.com/mailscope/mailscope/rules"
)

// Worker is one worker process's consumer loop.
type Worker struct {
	cfg    Config
	js     jetstream.JetStream
	pipe   *Pipeline
	store  *rules.Store
	policy policy
	// cons and heldCons are the mail and held-mail consumers.
	cons, heldCons jetstream.Consumer
	// status is the status bucket; nil when it does not exist.
	status jetstream.KeyValue
	// claimBucket holds large mail's bodies (claim.go); claimSlots
	// bounds the claimed mails in memory at once (MaxClaimed).
	claimBucket claimBucket
	claimSlots  chan struct{}
	// outcomes group-commits outcome events (one fsync per batch).
	outcomes *groupcommit.Publisher
	// maxOutcome is the largest outcome event stored, in bytes.
	maxOutcome int
	// progressEvery is how often a mail in progress (or held) is
	// reported to the server: Config.ProgressInterval or a third of the
	// consumer's AckWait.
	progressEvery time.Duration

	ready atomic.Bool
	held  atomic.Int64
	// heldMail is the held mail in flight: *delivery to its holdInfo,
	// for the held-mail gauges.
	heldMail   sync.Map
	heldChecks atomic.Int64
	log        *slog.Logger
	tracer     trace.Tracer
	met        metrics
}

// New returns a Worker on nc, built completely: it fails on a webhook
// endpoint, an external service or a command that does not validate
// (WebhookConfig.Validate, ServiceConfig.Validate, CommandsConfig.Validate); the flag bucket, the key
// bucket when Names.KeyBucket is set, both consumers and the status
// bucket are looked up here. It fails when one of them does not exist
// (run `mailscope provision`); a missing status bucket is only logged.
// New takes no mail; Run does.
func New(ctx context.Context, cfg Config, nc *nats.Conn) (*Worker, error) {
	cfg = cfg.WithDefaults()
	if err := errors.Join(cfg.Webhook.Validate(cfg.HandlerTimeout), cfg.Service.Validate(cfg.HandlerTimeout, cfg.Names), cfg.Commands.Validate()); err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	w := &Worker{cfg: cfg, js: js, log: cfg.Logger, tracer: cfg.TracerProvider.Tracer(tracerName), policy: policyOf(cfg), maxOutcome: maxOutcomeBytes(nc),
		claimSlots: make(chan struct{}, cfg.MaxClaimed)}
	kv, err := js.KeyValue(ctx, cfg.Names.FlagsBucket)
	if err != nil {
		return nil, fmt.Errorf("worker: flag bucket %s: %w", cfg.Names.FlagsBucket, err)
	}
	w.store = rules.NewStore(kv, w.log)
	if name := cfg.Names.KeyBucket; name != "" {
		// The staging key source: DKIM keys read before DNS.
		keys, err := js.KeyValue(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("worker: key bucket %s: %w", name, err)
		}
		w.log.Warn("DKIM keys are read from a staging key bucket before DNS; not for production", slog.String("bucket", name))
		cfg.Auth.KeySource = auth.NewKVKeys(keys)
	}
	w.pipe = newPipeline(cfg, nc)
	if c, ok := w.pipe.handlers[CommandsHandler].(*commands); ok {
		c.js = js // not when cfg.Handlers replaced it
	}
	if w.cons, err = js.Consumer(ctx, cfg.Names.MailStream, cfg.Names.Consumer); err != nil {
		return nil, fmt.Errorf("worker: consumer %s on %s: %w", cfg.Names.Consumer, cfg.Names.MailStream, err)
	}
	if w.heldCons, err = js.Consumer(ctx, cfg.Names.HeldStream, cfg.Names.HeldConsumer); err != nil {
		return nil, fmt.Errorf("worker: consumer %s on %s: %w", cfg.Names.HeldConsumer, cfg.Names.HeldStream, err)
	}
	w.progressEvery = cfg.ProgressInterval
	if w.progressEvery <= 0 {
		w.progressEvery = 10 * time.Second
		if ci := w.cons.CachedInfo(); ci != nil && ci.Config.AckWait > 0 {
			w.progressEvery = ci.Config.AckWait / 3
		}
	}
	if w.status, err = js.KeyValue(ctx, cfg.Names.StatusBucket); err != nil {
		w.log.Warn("no status bucket; status not reported (run mailscope provision)",
			slog.String("bucket", cfg.Names.StatusBucket), slog.Any("err", err))
		w.status = nil
	}
	oc := cfg.OutcomeCommit
	oc.Name, oc.Logger = "worker", w.log
	w.outcomes = groupcommit.New(js, oc)
	w.met = newMetrics(w)
	return w, nil
}

// Ready reports whether the worker has loaded the flag rules and takes
// mail.
func (w *Worker) Ready() bool { return w.ready.Load() }

// Held returns how many mails the worker holds (mail.pause, or DNS
// silent past the attempt limit) in flight.
func (w *Worker) Held() int { return int(w.held.Load()) }

// HeldChecks returns how many times the worker has evaluated held mail
// again (on rule changes and every HoldDelay).
func (w *Worker) HeldChecks() int64 { return w.heldChecks.Load() }

// Rules returns the live rule store (empty until Run loaded it).
func (w *Worker) Rules() *rules.Store { return w.store }

// Run loads every flag rule, then takes mail until ctx is done. Mail in
// progress when ctx ends is finished (bounded by HandlerTimeout) before
// Run returns; prefetched mail not yet started is handed back at once.
// Run returns an error when the rules cannot be loaded or a consumer
// disappears.
func (w *Worker) Run(ctx context.Context) error {
	defer w.met.stop() // a stopped worker reports no gauges
	// Everything Run starts ends with it, also when it fails.
	storeCtx, stopStore := context.WithCancel(ctx)
	defer stopStore()
	if err := w.store.Start(storeCtx); err != nil {
		return fmt.Errorf("worker: load flag rules: %w", err)
	}
	orphansDone := make(chan struct{}) // the orphan collector ends with Run (orphans.go)
	go func() { defer close(orphansDone); w.collectOrphans(storeCtx) }()
	defer func() { stopStore(); <-orphansDone }()
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
	return w.consume(ctx)
}
