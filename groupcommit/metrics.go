package groupcommit

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Metric names, recorded through the global OpenTelemetry MeterProvider,
// each with the attribute "publisher" (Config.Name).
const (
	MetricBatchSize      = "mailscope.groupcommit.batch.size"      // messages per atomic batch stored
	MetricBatchDuration  = "mailscope.groupcommit.batch.duration"  // seconds to store one atomic batch
	MetricBatchFallbacks = "mailscope.groupcommit.batch.fallbacks" // batches published one by one, by "reason"
	MetricBatchFailures  = "mailscope.groupcommit.batch.failures"  // batches that failed as a whole
)

// metrics are a Publisher's instruments.
type metrics struct {
	size      metric.Int64Histogram
	duration  metric.Float64Histogram
	fallbacks metric.Int64Counter
	failures  metric.Int64Counter
	publisher attribute.KeyValue
	attrs     metric.MeasurementOption // publisher, computed once
}

func newMetrics(name string) *metrics {
	m := otel.Meter("github.com/mailscope/mailscope/groupcommit")
	ms := &metrics{publisher: attribute.String("publisher", name)}
	ms.attrs = metric.WithAttributeSet(attribute.NewSet(ms.publisher))
	ms.size, _ = m.Int64Histogram(MetricBatchSize,
		metric.WithDescription("messages per atomic batch stored (group commit)"),
		metric.WithExplicitBucketBoundaries(2, 4, 8, 16, 32, 64, 128, 256, 512, 1000))
	ms.duration, _ = m.Float64Histogram(MetricBatchDuration,
		metric.WithUnit("s"), metric.WithDescription("time to store one atomic batch"))
	ms.fallbacks, _ = m.Int64Counter(MetricBatchFallbacks,
		metric.WithDescription("batches refused for a batching reason and published message by message, by JetStream error code"))
	ms.failures, _ = m.Int64Counter(MetricBatchFailures,
		metric.WithDescription("batches that failed as a whole (every message of them not stored)"))
	return ms
}

func (ms *metrics) committed(n int, since time.Time) {
	ms.size.Record(context.Background(), int64(n), ms.attrs)
	ms.duration.Record(context.Background(), time.Since(since).Seconds(), ms.attrs)
}

func (ms *metrics) fellBack(reason string) {
	ms.fallbacks.Add(context.Background(), 1, metric.WithAttributes(ms.publisher, attribute.String("reason", reason)))
}

func (ms *metrics) failed() { ms.failures.Add(context.Background(), 1, ms.attrs) }
