package producer

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Results recorded by the producer's mail counter: each transaction's
// outcome, and each refusal by the limits of docs/smtp.md by its cause.
const (
	resultStored      = "stored"      // 250: JetStream acknowledged
	resultUnavailable = "unavailable" // 451: not stored, the MTA retries
	resultTooLarge    = "too_large"   // 552: over MaxSize
	resultReadError   = "read_error"  // the client's data could not be read

	resultLineTooLong    = "line_too_long"               // 554: a content line over MaxDataLine
	resultHeaderTooLarge = "header_too_large"            // 554: header section over MaxHeaderBytes
	resultTooManyHeaders = "too_many_headers"            // 554: over MaxHeaderFields
	resultCommandTooLong = "command_too_long"            // 500: a command line over MaxCommandLine
	resultConnections    = "too_many_connections"        // 421: over MaxConnections
	resultClientConns    = "too_many_client_connections" // 421: over MaxClientConnections
	resultCommandTimeout = "command_timeout"             // 421: CommandTimeout passed
	resultDataTimeout    = "data_timeout"                // 421: DataTimeout passed
	resultIdleTimeout    = "idle_timeout"                // 421: IdleTimeout passed
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
		metric.WithDescription("mail transactions by protocol and result (stored, unavailable, too_large, read_error), and refusals by the SMTP limits (see docs/smtp.md)"))
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
