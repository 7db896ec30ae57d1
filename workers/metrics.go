package workers

import (
	"context"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// metrics are the worker's instruments, recorded through the global
// OpenTelemetry MeterProvider (see package telemetry).
type metrics struct {
	outcomes metric.Int64Counter
	failures metric.Int64Counter
	duration metric.Float64Histogram
	dupes    metric.Int64Counter
}

func newMetrics(w *Worker) metrics {
	m := otel.Meter("github.com/mailscope/mailscope/workers")
	var ms metrics
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
	_, _ = m.Int64ObservableGauge("mailscope.rules.invalid_keys",
		metric.WithDescription("flag keys whose current value does not parse (their last good rules stay in force)"),
		metric.WithInt64Callback(func(_ context.Context, o metric.Int64Observer) error {
			o.Observe(int64(len(w.store.Problems())))
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
