package workers

import (
	"context"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Results of a webhook request, the label result of
// mailscope.webhook.requests (docs/handlers.md, "Failure classes").
const (
	webhookDelivered   = "delivered"        // 2xx
	webhookRejected    = "rejected"         // 4xx but 429
	webhookRetryLater  = "retry_later"      // 429
	webhookServerError = "server_error"     // 5xx, or any other status
	webhookTimeout     = "timeout"          // no answer within the endpoint's timeout
	webhookConnError   = "connection_error" // no connection, or it broke
	webhookDryRun      = "dry_run"          // computed under mail.dry_run, not sent
)

// webhookMetrics are the webhook handler's instruments. Their endpoint
// label is an operator-configured name: bounded.
type webhookMetrics struct {
	requests metric.Int64Counter
	duration metric.Float64Histogram
}

func newWebhookMetrics() webhookMetrics {
	m := otel.Meter("github.com/mailscope/mailscope/workers")
	var wm webhookMetrics
	wm.requests, _ = m.Int64Counter("mailscope.webhook.requests",
		metric.WithDescription("webhook requests by endpoint name and result (delivered, rejected, retry_later, server_error, timeout, connection_error; dry_run: computed, not sent)"))
	wm.duration, _ = m.Float64Histogram("mailscope.webhook.request.duration",
		metric.WithUnit("s"), metric.WithDescription("time of a webhook request sent, response read, by endpoint name and result"))
	return wm
}

// record counts one request; took is its time, 0 for one not sent.
func (wm webhookMetrics) record(ctx context.Context, endpoint, result string, took time.Duration) {
	attrs := metric.WithAttributes(attribute.String("endpoint", endpoint), attribute.String("result", result))
	wm.requests.Add(ctx, 1, attrs)
	if result != webhookDryRun {
		wm.duration.Record(ctx, took.Seconds(), attrs)
	}
}
