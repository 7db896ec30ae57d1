package producer

import (
	"context"
	"errors"
	"strconv"

	"github.com/emersion/go-smtp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// tracerName is the instrumentation scope of the producer's spans.
const tracerName = "github.com/mailscope/mailscope/producer"

// startMail starts the span of one mail transaction's DATA: a producer
// span "send <mail subject>" (OpenTelemetry messaging conventions) from
// the first byte of DATA to the reply, whose context Publish injects into
// the message's headers. The worker's process span is its child.
func (s *session) startMail() (context.Context, trace.Span) {
	subject := s.p.cfg.Names.MailSubject
	ctx, span := s.p.tracer.Start(context.Background(), "send "+subject, trace.WithSpanKind(trace.SpanKindProducer))
	// Attributes only for a span that records them: an unsampled mail
	// pays for none.
	if span.IsRecording() {
		span.SetAttributes(
			semconv.MessagingSystemKey.String("nats"),
			semconv.MessagingOperationName("send"),
			semconv.MessagingOperationTypeSend,
			semconv.MessagingDestinationName(subject),
			attribute.String("mailscope.protocol", s.protocol),
			attribute.Int("mailscope.recipients", len(s.rcpts)),
		)
	}
	return ctx, span
}

// endMail ends the transaction's span with the reply: a refusal or a
// failure sets error.type to its SMTP code and the status to Error.
func endMail(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		code := "error"
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			code = strconv.Itoa(se.Code)
		}
		span.SetAttributes(semconv.ErrorTypeKey.String(code))
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// mailStored records on ctx's span what JetStream stored.
func mailStored(ctx context.Context, id string, size int, duplicate bool) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(semconv.MessagingMessageID(id), semconv.MessagingMessageBodySize(size),
		attribute.Bool("mailscope.duplicate", duplicate))
}
