package workers

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

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
	// processOpts are the options of messaging.process.duration of a
	// mail processed without error, by the subject it came on, made once
	// so that recording allocates nothing.
	processOpts map[string][]metric.RecordOption
	consumer    string
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
	_, _ = m.Int64ObservableGauge("mailscope.mail.held",
		metric.WithDescription("mails this worker holds in flight, by reason (pause: mail.pause; dns: DNS silent past the attempt limit)"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			for reason, s := range w.heldStats() {
				o.Observe(s.count, metric.WithAttributes(attribute.String("reason", reason)))
			}
			return nil
		}))
	_, _ = m.Float64ObservableGauge("mailscope.mail.held.oldest_age",
		metric.WithUnit("s"),
		metric.WithDescription("how long the longest-held mail this worker holds in flight has been held, by reason"),
		metric.WithFloat64Callback(func(_ context.Context, o metric.Float64Observer) error {
			for reason, s := range w.heldStats() {
				o.Observe(s.oldest.Seconds(), metric.WithAttributes(attribute.String("reason", reason)))
			}
			return nil
		}))
	ms.retries, _ = m.Int64Counter("mailscope.mail.retries",
		metric.WithDescription("redeliveries asked for (naks with a backoff), by failure class (transient, dns)"))
	ms.redelivered, _ = m.Int64Counter("mailscope.mail.redelivered",
		metric.WithDescription("deliveries of the mail consumer that were not the message's first (a nak, an AckWait that passed, a worker that stopped)"))
	ms.deadLetters, _ = m.Int64Counter("mailscope.mail.dead_letters",
		metric.WithDescription("dead letters stored, by failure class (malformed, transient)"))
	ms.process, _ = m.Float64Histogram("messaging.process.duration",
		metric.WithUnit("s"), metric.WithDescription("time from a mail's delivery to its settling (OpenTelemetry messaging semantic conventions; error.type is the failure class)"))
	_, _ = m.Int64ObservableGauge("mailscope.rules.refused_keys",
		metric.WithDescription("flag keys whose current value is not in force, by cause: parse (does not parse; the last good rules stay in force) or unknown_flag (not a known flag; never in force)"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			n := map[string]int64{rules.CauseParse: 0, rules.CauseUnknownFlag: 0}
			for _, p := range w.store.Problems() {
				n[p.Cause]++
			}
			for cause, c := range n {
				o.Observe(c, metric.WithAttributes(attribute.String("cause", cause)))
			}
			return nil
		}))
	_, _ = m.Int64ObservableGauge("mailscope.rules.key.revision",
		metric.WithDescription("KV revision of the rules in force for each known flag; absent for a flag with no key (its default applies)"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			snap := w.store.Snapshot()
			for _, f := range rules.Known() {
				if rs := snap.RuleSet(f.Name); rs != nil {
					o.Observe(int64(rs.Revision), metric.WithAttributes(attribute.String("flag", f.Name)))
				}
			}
			return nil
		}))
	_, _ = m.Int64ObservableGauge("mailscope.worker.ready",
		metric.WithDescription("1 when the worker has loaded the rules and takes mail"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			if w.Ready() {
				o.Observe(1)
			} else {
				o.Observe(0)
			}
			return nil
		}))
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

func (ms metrics) failure(ctx context.Context, class, action string) {
	ms.failures.Add(ctx, 1, metric.WithAttributes(attribute.String("class", class), attribute.String("action", action)))
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
