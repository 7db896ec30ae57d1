package producer

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Results recorded by the producer's mail counter.
const (
	resultStored      = "stored"      // 250: JetStream acknowledged
	resultUnavailable = "unavailable" // 451: not stored, the MTA retries
	resultTooLarge    = "too_large"   // 552: over MaxSize
	resultReadError   = "read_error"  // the client's data could not be read
)

// metrics are the producer's instruments, recorded through the global
// OpenTelemetry MeterProvider (see package telemetry).
type metrics struct {
	mails   metric.Int64Counter
	publish metric.Float64Histogram
}

func newMetrics() metrics {
	m := otel.Meter("github.com/mailscope/mailscope/producer")
	var ms metrics
	ms.mails, _ = m.Int64Counter("mailscope.producer.mails",
		metric.WithDescription("mail transactions by protocol and result (stored, unavailable, too_large, read_error)"))
	ms.publish, _ = m.Float64Histogram("mailscope.producer.publish.duration",
		metric.WithUnit("s"), metric.WithDescription("time from the end of DATA to JetStream's acknowledgement"))
	return ms
}

func (ms metrics) mail(protocol, result string) {
	ms.mails.Add(context.Background(), 1, metric.WithAttributes(
		attribute.String("protocol", protocol), attribute.String("result", result)))
}

func (ms metrics) published(protocol string, since time.Time) {
	ms.publish.Record(context.Background(), time.Since(since).Seconds(),
		metric.WithAttributes(attribute.String("protocol", protocol)))
}
