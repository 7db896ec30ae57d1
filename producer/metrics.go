package producer

import (
	"context"
	"strconv"
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

// replyCodes is the SMTP reply code each result is answered with.
var replyCodes = map[string]int{
	resultStored:         250,
	resultUnavailable:    errTempUnavailable.Code,
	resultTooLarge:       errTooLarge.Code,
	resultReadError:      errReadFailed.Code,
	resultLineTooLong:    errDataLineTooLong.Code,
	resultHeaderTooLarge: errHeaderTooLarge.Code,
	resultTooManyHeaders: errTooManyHeaders.Code,
	resultCommandTooLong: 500,
	resultConnections:    421,
	resultClientConns:    421,
	resultCommandTimeout: 421,
	resultDataTimeout:    errDataTimeout.Code,
	resultIdleTimeout:    421,
}

// metrics are the producer's instruments, recorded through the global
// OpenTelemetry MeterProvider (see package telemetry).
type metrics struct {
	mails   metric.Int64Counter
	replies metric.Int64Counter
	publish metric.Float64Histogram
}

func newMetrics() metrics {
	m := otel.Meter("github.com/mailscope/mailscope/producer")
	var ms metrics
	ms.mails, _ = m.Int64Counter("mailscope.producer.mails",
		metric.WithDescription("mail transactions by protocol and result (stored, unavailable, too_large, read_error), and refusals by the SMTP limits (see docs/smtp.md)"))
	ms.replies, _ = m.Int64Counter("mailscope.producer.replies",
		metric.WithDescription("SMTP reply codes of every transaction's final reply and every refusal (250, 451, 421, 500, 552, 553, 554), by protocol and code"))
	ms.publish, _ = m.Float64Histogram("mailscope.producer.publish.duration",
		metric.WithUnit("s"), metric.WithDescription("time from the end of DATA to JetStream's acknowledgement"))
	return ms
}

// mail counts a transaction's result and the reply it is answered with.
func (ms metrics) mail(protocol, result string) {
	ms.mailReply(protocol, result, replyCodes[result])
}

// mailReply is mail with the reply code given, for a result whose reply
// varies.
func (ms metrics) mailReply(protocol, result string, code int) {
	ms.mails.Add(context.Background(), 1, metric.WithAttributes(
		attribute.String("protocol", protocol), attribute.String("result", result)))
	ms.reply(protocol, code)
}

// reply counts one reply code: a final reply or a refusal.
func (ms metrics) reply(protocol string, code int) {
	ms.replies.Add(context.Background(), 1, metric.WithAttributes(
		attribute.String("protocol", protocol), attribute.String("code", strconv.Itoa(code))))
}

func (ms metrics) published(protocol string, since time.Time) {
	ms.publish.Record(context.Background(), time.Since(since).Seconds(),
		metric.WithAttributes(attribute.String("protocol", protocol)))
}
