package auth

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// tracerName is the instrumentation scope of the resolver's spans.
const tracerName = "github.com/mailscope/mailscope/auth"

// startLookup starts the span of a key lookup that missed the cache:
// "dns TXT", a client span naming the record, whether it joined a query
// already in flight for the name, and how it ended (endLookup).
func (r *Resolver) startLookup(ctx context.Context, name string) (context.Context, trace.Span) {
	ctx, span := r.tracer.Start(ctx, "dns TXT", trace.WithSpanKind(trace.SpanKindClient))
	if span.IsRecording() {
		span.SetAttributes(semconv.DNSQuestionName(name))
	}
	return ctx, span
}

// endLookup ends a lookup's span: a name without a key record is an
// answer ("not_found"), a lookup no server answered is an error
// (error.type "temperror", status Error).
func endLookup(span trace.Span, shared bool, err error) {
	if span.IsRecording() {
		span.SetAttributes(attribute.Bool("mailscope.dns.shared", shared))
		// A lookup ends with records, ErrNotFound or a *TempError.
		switch {
		case err == nil:
			span.SetAttributes(attribute.String("mailscope.dns.result", "found"))
		case errors.Is(err, ErrNotFound):
			span.SetAttributes(attribute.String("mailscope.dns.result", "not_found"))
		default:
			span.SetAttributes(attribute.String("mailscope.dns.result", "temperror"), semconv.ErrorTypeKey.String("temperror"))
			span.SetStatus(codes.Error, err.Error())
		}
	}
	span.End()
}
