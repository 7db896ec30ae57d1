package workers

import (
	"context"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/mailscope/mailscope/contracts"
)

// tracerName is the instrumentation scope of the worker's spans.
const tracerName = "github.com/mailscope/mailscope/workers"

// Trace shape (docs/observability.md, "Traces"): the producer's "send
// mail.incoming" span is the parent of one "process <subject>" span per
// delivery (and "recheck mail.held" per look at a held mail), whose
// children are the stages: parse, verify (with a "dns TXT" span per key
// lookup that missed the cache), flags, handler, and settle, under which
// the outcome or dead letter is published.

// startProcess starts the consumer span of one delivery, the child of
// the trace context its message carries (the producer's span; a held or
// resumed copy keeps the original's). operation is "process" for mail
// being decided, "recheck" for a look at a held mail.
func (w *Worker) startProcess(ctx context.Context, d *delivery, operation, consumer string) (context.Context, trace.Span) {
	ctx = contracts.ExtractTrace(ctx, d.msg.Headers())
	subject := d.msg.Subject()
	ctx, span := w.tracer.Start(ctx, operation+" "+subject, trace.WithSpanKind(trace.SpanKindConsumer))
	// Attributes only for a span that records them: an unsampled mail
	// pays for none (the samplers mailscope offers do not read them).
	if span.IsRecording() {
		span.SetAttributes(
			semconv.MessagingSystemKey.String("nats"),
			semconv.MessagingOperationName(operation),
			semconv.MessagingOperationTypeProcess,
			semconv.MessagingDestinationName(subject),
			semconv.MessagingConsumerGroupName(consumer),
			semconv.MessagingMessageID(d.env.ID),
			semconv.MessagingMessageBodySize(len(d.msg.Data())),
			attribute.Int("mailscope.attempt", d.attempt),
		)
	}
	return ctx, span
}

// endProcess ends a delivery's span with what became of it: the action
// taken, the disposition of a stored outcome, and for a failure its class
// as error.type.
func endProcess(span trace.Span, v verdict, out *contracts.Outcome) {
	if span.IsRecording() {
		span.SetAttributes(attribute.String("mailscope.action", v.act.String()))
		if out != nil {
			span.SetAttributes(attribute.String("mailscope.disposition", string(out.Disposition)))
		}
		if v.cause != nil {
			span.SetAttributes(semconv.ErrorTypeKey.String(ClassOf(v.cause).String()))
			span.SetStatus(codes.Error, v.cause.Error())
		}
	}
	span.End()
}

// stage starts the span of one step of the pipeline; end it with
// endStage.
func (p *Pipeline) stage(ctx context.Context, name string, attrs ...attribute.KeyValue) (context.Context, trace.Span) {
	ctx, span := p.tracer.Start(ctx, name)
	if len(attrs) > 0 && span.IsRecording() {
		span.SetAttributes(attrs...)
	}
	return ctx, span
}

// endStage ends a step's span; err, when not nil, sets error.type to its
// class and the status to Error.
func endStage(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.SetAttributes(semconv.ErrorTypeKey.String(ClassOf(err).String()))
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// startPublish starts the producer span of a message the worker stores
// (an outcome, a dead letter) and writes its trace context into h, so
// that a consumer of the outcome stream can continue the mail's trace.
func (w *Worker) startPublish(ctx context.Context, subject string, h *nats.Header) (context.Context, trace.Span) {
	ctx, span := w.tracer.Start(ctx, "send "+subject, trace.WithSpanKind(trace.SpanKindProducer))
	if span.IsRecording() {
		span.SetAttributes(
			semconv.MessagingSystemKey.String("nats"),
			semconv.MessagingOperationName("send"),
			semconv.MessagingOperationTypeSend,
			semconv.MessagingDestinationName(subject),
		)
	}
	if span.SpanContext().IsValid() {
		if *h == nil {
			*h = nats.Header{}
		}
		contracts.InjectTrace(ctx, *h)
	}
	return ctx, span
}

// traceID returns the trace id of ctx's span, "" without one.
func traceID(ctx context.Context) string {
	if sc := trace.SpanContextFromContext(ctx); sc.HasTraceID() {
		return sc.TraceID().String()
	}
	return ""
}
