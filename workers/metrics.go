package workers

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/rules"
)

// messagingSystem is messaging.system of NATS, which the semantic
// conventions do not list (yet): the name the NATS clients use.
const messagingSystem = "nats"

// metrics are the worker's instruments, recorded through the global
// OpenTelemetry MeterProvider (see package telemetry).
type metrics struct {
	outcomes    metric.Int64Counter
	failures    metric.Int64Counter
	duration    metric.Float64Histogram
	dupes       metric.Int64Counter
	retries     metric.Int64Counter
	redelivered metric.Int64Counter
	deadLetters metric.Int64Counter
	process     metric.Float64Histogram
	shadows     metric.Int64Counter
	// processOpts are the options of messaging.process.duration of a
	// mail processed without error, by the subject it came on, made once
	// so that recording allocates nothing.
	processOpts map[string][]metric.RecordOption
	consumer    string
	// gauges is the callback of the worker's gauges.
	gauges metric.Registration
}

func newMetrics(w *Worker) metrics {
	m := otel.Meter("github.com/mailscope/mailscope/workers")
	ms := metrics{consumer: w.cfg.Names.Consumer, processOpts: map[string][]metric.RecordOption{}}
	for _, subject := range []string{w.cfg.Names.MailSubject, w.cfg.Names.ResumeSubject} {
		ms.processOpts[subject] = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(ms.processAttributes(subject)...))}
	}
	ms.outcomes, _ = m.Int64Counter("mailscope.mail.outcomes",
		metric.WithDescription("outcomes stored, by disposition"))
	ms.failures, _ = m.Int64Counter("mailscope.mail.failures",
		metric.WithDescription("processing failures, by class (transient, malformed, held, permanent, dns) and action (retry, dead, hold, store)"))
	ms.dupes, _ = m.Int64Counter("mailscope.mail.outcome_duplicates",
		metric.WithDescription("outcomes the outcome stream already held (a mail processed again after a lost ack or a redelivery), kept once by deduplication"))
	ms.duration, _ = m.Float64Histogram("mailscope.mail.processing.duration",
		metric.WithUnit("s"), metric.WithDescription("time from delivery to outcome stored"))
	ms.retries, _ = m.Int64Counter("mailscope.mail.retries",
		metric.WithDescription("redeliveries asked for (naks with a backoff), by failure class (transient, dns)"))
	ms.redelivered, _ = m.Int64Counter("mailscope.mail.redelivered",
		metric.WithDescription("deliveries of the mail consumer that were not the message's first (a nak, an AckWait that passed, a worker that stopped)"))
	ms.deadLetters, _ = m.Int64Counter("mailscope.mail.dead_letters",
		metric.WithDescription("dead letters stored, by failure class (malformed, transient)"))
	ms.shadows, _ = m.Int64Counter("mailscope.mail.shadow_runs",
		metric.WithDescription("shadow handler runs (mail.shadow_handler) of stored outcomes, by live handler, shadow handler and result: same (the shadow decided as the live handler), differ (another disposition) or error (the shadow failed)"))
	ms.process, _ = m.Float64Histogram("messaging.process.duration",
		metric.WithUnit("s"), metric.WithDescription("time from a mail's delivery to its settling (OpenTelemetry messaging semantic conventions; error.type is the failure class)"))
	held, _ := m.Int64ObservableGauge("mailscope.mail.held",
		metric.WithDescription("mails this worker holds in flight, by reason (pause: mail.pause; dns: DNS silent past the attempt limit)"))
	heldAge, _ := m.Float64ObservableGauge("mailscope.mail.held.oldest_age",
		metric.WithUnit("s"),
		metric.WithDescription("how long the longest-held mail this worker holds in flight has been held, by reason"))
	refused, _ := m.Int64ObservableGauge("mailscope.rules.refused_keys",
		metric.WithDescription("flag keys whose current value is not in force, by cause: parse (does not parse; the last good rules stay in force) or unknown_flag (not a known flag; never in force)"))
	revision, _ := m.Int64ObservableGauge("mailscope.rules.key.revision",
		metric.WithDescription("KV revision of the rules in force for each known flag; absent for a flag with no key (its default applies)"))
	ready, _ := m.Int64ObservableGauge("mailscope.worker.ready",
		metric.WithDescription("1 when the worker has loaded the rules and takes mail"))
	// One callback for the worker's gauges, unregistered when Run ends
	// (stop): a worker that stopped reports nothing.
	ms.gauges, _ = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		for reason, s := range w.heldStats() {
			attrs := metric.WithAttributes(attribute.String("reason", reason))
			o.ObserveInt64(held, s.count, attrs)
			o.ObserveFloat64(heldAge, s.oldest.Seconds(), attrs)
		}
		n := map[string]int64{rules.CauseParse: 0, rules.CauseUnknownFlag: 0}
		for _, p := range w.store.Problems() {
			n[p.Cause]++
		}
		for cause, c := range n {
			o.ObserveInt64(refused, c, metric.WithAttributes(attribute.String("cause", cause)))
		}
		snap := w.store.Snapshot()
		for _, f := range rules.Known() {
			if rs := snap.RuleSet(f.Name); rs != nil {
				o.ObserveInt64(revision, int64(rs.Revision), metric.WithAttributes(attribute.String("flag", f.Name)))
			}
		}
		r := int64(0)
		if w.Ready() {
			r = 1
		}
		o.ObserveInt64(ready, r)
		return nil
	}, held, heldAge, refused, revision, ready)
	return ms
}

func (ms metrics) outcome(ctx context.Context, disposition string, seconds float64, duplicate bool) {
	attrs := metric.WithAttributes(attribute.String("disposition", disposition))
	if duplicate {
		ms.dupes.Add(ctx, 1, attrs)
		return
	}
	ms.outcomes.Add(ctx, 1, attrs)
	ms.duration.Record(ctx, seconds, attrs)
}

// shadow counts the shadow run of a stored outcome, if it had one.
func (ms metrics) shadow(ctx context.Context, out *contracts.Outcome) {
	s := out.Shadow
	if s == nil {
		return
	}
	result := "same"
	switch {
	case s.Error != "":
		result = "error"
	case s.Differs:
		result = "differ"
	}
	ms.shadows.Add(ctx, 1, metric.WithAttributes(attribute.String("live", out.Handler),
		attribute.String("shadow", s.Handler), attribute.String("result", result)))
}

func (ms metrics) failure(ctx context.Context, class, action string) {
	ms.failures.Add(ctx, 1, metric.WithAttributes(attribute.String("class", class), attribute.String("action", action)))
}

// stop ends the worker's gauges.
func (ms metrics) stop() {
	if ms.gauges != nil {
		_ = ms.gauges.Unregister()
	}
}

// retry counts a redelivery asked for, by class.
func (ms metrics) retry(ctx context.Context, class string) {
	ms.retries.Add(ctx, 1, metric.WithAttributes(attribute.String("class", class)))
}

// delivered counts a delivery of the mail consumer that was not the
// message's first.
func (ms metrics) delivered(ctx context.Context, d *delivery) {
	if d.numDelivered > 1 {
		ms.redelivered.Add(ctx, 1)
	}
}

// deadLetter counts a dead letter stored, by class.
func (ms metrics) deadLetter(ctx context.Context, class string) {
	ms.deadLetters.Add(ctx, 1, metric.WithAttributes(attribute.String("class", class)))
}

// processed records messaging.process.duration of a delivery settled with
// verdict v: with error.type the class of v's cause when it has one.
func (ms metrics) processed(ctx context.Context, d *delivery, v verdict) {
	seconds := time.Since(d.start).Seconds()
	subject := d.msg.Subject()
	if opts, ok := ms.processOpts[subject]; ok && v.cause == nil {
		ms.process.Record(ctx, seconds, opts...)
		return
	}
	attrs := ms.processAttributes(subject)
	if v.cause != nil {
		attrs = append(attrs, semconv.ErrorTypeKey.String(ClassOf(v.cause).String()))
	}
	ms.process.Record(ctx, seconds, metric.WithAttributes(attrs...))
}

// processAttributes are the attributes of messaging.process.duration of
// a mail that came on subject: messaging.destination.name is the subject
// (bounded: the mail and resume subjects), messaging.consumer.group.name
// the durable consumer.
func (ms metrics) processAttributes(subject string) []attribute.KeyValue {
	return []attribute.KeyValue{
		semconv.MessagingSystemKey.String(messagingSystem),
		semconv.MessagingOperationName("process"),
		semconv.MessagingDestinationName(subject),
		semconv.MessagingConsumerGroupName(ms.consumer),
	}
}
