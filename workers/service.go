package workers

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/rules"
)

// service is the service handler (docs/handlers.md, "External
// services"): it sends the mail as a contracts.ServiceRequest to the
// external service mail.service names, among those the operator
// configured, and turns its contracts.ServiceReply into the outcome.
type service struct {
	services        map[string]Service
	names           string // the configured names, for messages
	timeout         time.Duration
	attachmentLimit int
	textLimit       int
	// nc carries the requests: the worker's connection; nil in a
	// Pipeline without NATS (flags explain), which only evaluates.
	nc     *nats.Conn
	now    func() time.Time
	tracer trace.Tracer
	met    serviceMetrics
}

// newService returns the service handler on cfg (defaults applied),
// sending on nc.
func newService(cfg Config, nc *nats.Conn) *service {
	sc := cfg.Service.withDefaults(cfg.Names)
	h := &service{services: map[string]Service{}, timeout: sc.Timeout, attachmentLimit: sc.AttachmentLimit,
		textLimit: cfg.TextLimit, nc: nc, now: time.Now, tracer: cfg.TracerProvider.Tracer(tracerName), met: newServiceMetrics()}
	names := []string{}
	for _, s := range sc.Services {
		h.services[s.Name] = s
		names = append(names, s.Name)
	}
	slices.Sort(names)
	h.names = strings.Join(names, ", ")
	if h.names == "" {
		h.names = "none"
	}
	return h
}

// Check refuses, at evaluation time, a mail whose mail.service is not a
// configured service: a Transient error, so the mail is retried (a
// replica configured with the service may take it during a rollout) and
// dead-lettered with the reason once out of attempts.
func (h *service) Check(out *contracts.Outcome) error {
	_, err := h.service(out)
	return err
}

func (h *service) service(out *contracts.Outcome) (Service, error) {
	name := ""
	for _, f := range out.Flags {
		if f.Flag == rules.FlagService {
			name = f.Value
		}
	}
	if name == "" {
		return Service{}, transient("%s chose the service handler but %s names no service (configured: %s)", rules.FlagHandler, rules.FlagService, h.names)
	}
	s, ok := h.services[name]
	if !ok {
		return Service{}, transient("%s %q is not a configured service (configured: %s)", rules.FlagService, name, h.names)
	}
	return s, nil
}

// Handle asks m's service to decide it and waits for the reply, at most
// the service timeout. With dryRun the request says so, and the service
// decides without acting. The reply is classified by serviceOutcome.
func (h *service) Handle(ctx context.Context, m *Mail, dryRun bool) (HandlerResult, error) {
	out := m.Evaluated       // set by Evaluate, which Act always follows
	svc, _ := h.service(out) // Check refused a service it does not have
	if h.nc == nil {
		return HandlerResult{}, transient("service %s: no NATS connection to send the request on", svc.Name)
	}
	deadline := h.now().Add(h.timeout)
	req := &contracts.ServiceRequest{
		Schema:      contracts.ServiceSchema,
		ID:          out.ID,
		Service:     svc.Name,
		DryRun:      dryRun,
		Deadline:    deadline.UTC(),
		MessageID:   out.MessageID,
		Envelope:    out.Envelope,
		ReceivedAt:  out.ReceivedAt,
		Attempt:     out.Attempt,
		Auth:        out.Auth,
		Flags:       out.Flags,
		MailContent: mailContent(ctx, m, h.textLimit, h.attachmentLimit),
		Worker:      out.Worker,
		TraceID:     out.TraceID,
	}
	body, _ := json.Marshal(req) // plain data: strings, numbers, bytes
	if limit := h.nc.MaxPayload(); int64(len(body)) > limit {
		// The attachments described, not sent, to fit the server's bound.
		req.MailContent = mailContent(ctx, m, h.textLimit, -1)
		for i := range req.Attachments {
			req.Attachments[i].Omitted = fmt.Sprintf("the request would exceed the NATS max payload (%d bytes) with the attachments inline", limit)
		}
		if body, _ = json.Marshal(req); int64(len(body)) > limit {
			return HandlerResult{}, transient("service %s: the request is %d bytes, above the NATS max payload %d even without attachments", svc.Name, len(body), limit)
		}
	}
	start := time.Now()
	result, reply, err := h.request(ctx, svc, out.ID, body)
	h.met.record(ctx, svc.Name, result, time.Since(start))
	if err != nil {
		return HandlerResult{}, err
	}
	r := HandlerResult{Disposition: reply.Disposition, Summary: req.Summary}
	if r.Disposition == "" {
		r.Disposition = contracts.Processed
	}
	if r.Disposition == contracts.Discarded {
		r.Summary = nil // as the discard handler: the mail is dropped
	}
	r.Reason = fmt.Sprintf("accepted by service %s", svc.Name)
	if reply.Reason != "" {
		r.Reason += ": " + reply.Reason
	}
	if dryRun {
		r.Reason = "dry run: " + r.Reason
	}
	return r, nil
}

// request sends one request, in a client span, with the worker's service
// timeout, and classifies what came back.
func (h *service) request(ctx context.Context, svc Service, id string, body []byte) (string, contracts.ServiceReply, error) {
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	ctx, span := h.tracer.Start(ctx, "request "+svc.Subject, trace.WithSpanKind(trace.SpanKindClient))
	defer span.End()
	if span.IsRecording() {
		span.SetAttributes(semconv.MessagingSystemKey.String("nats"), semconv.MessagingDestinationName(svc.Subject),
			semconv.MessagingOperationTypeSend, attribute.String("mailscope.service", svc.Name), semconv.MessagingMessageBodySize(len(body)))
	}
	msg := nats.NewMsg(svc.Subject)
	msg.Data = body
	msg.Header.Set(contracts.HeaderServiceMailID, id)
	contracts.InjectTrace(ctx, msg.Header)
	reply, err := h.nc.RequestMsgWithContext(ctx, msg)
	result, r, err := serviceOutcome(svc.Name, h.timeout, reply, err)
	if err != nil && span.IsRecording() {
		span.SetAttributes(semconv.ErrorTypeKey.String(result))
		span.SetStatus(codes.Error, err.Error())
	}
	if span.IsRecording() {
		span.SetAttributes(attribute.String("mailscope.service.result", result))
	}
	return result, r, err
}
