package workers

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Results of a service request, the label result of
// mailscope.service.requests (docs/handlers.md, "External services").
const (
	serviceAccepted     = "accepted"         // decision accept
	serviceRejected     = "rejected"         // decision reject, or a 4xx service error
	serviceRetryLater   = "retry_later"      // decision retry
	serviceError        = "service_error"    // any other service error code
	serviceBadReply     = "bad_reply"        // a reply that breaks the contract
	serviceTimeout      = "timeout"          // no reply within the service timeout
	serviceNoResponders = "no_responders"    // no service listens on the subject
	serviceConnError    = "connection_error" // the request could not be sent
)

// serviceMetrics are the service handler's instruments. Their service
// label is an operator-configured name: bounded.
type serviceMetrics struct {
	requests metric.Int64Counter
	duration metric.Float64Histogram
}

func newServiceMetrics() serviceMetrics {
	m := otel.Meter("github.com/mailscope/mailscope/workers")
	var sm serviceMetrics
	sm.requests, _ = m.Int64Counter("mailscope.service.requests",
		metric.WithDescription("external service requests by service name and result (accepted, rejected, retry_later, service_error, bad_reply, timeout, no_responders, connection_error)"))
	sm.duration, _ = m.Float64Histogram("mailscope.service.request.duration",
		metric.WithUnit("s"), metric.WithDescription("time of an external service request, reply received, by service name and result"))
	return sm
}

// record counts one request that took took.
func (sm serviceMetrics) record(ctx context.Context, service, result string, took time.Duration) {
	attrs := metric.WithAttributes(attribute.String("service", service), attribute.String("result", result))
	sm.requests.Add(ctx, 1, attrs)
	sm.duration.Record(ctx, took.Seconds(), attrs)
}
