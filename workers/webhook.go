package workers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/version"
)

// webhook is the webhook handler (docs/handlers.md): it POSTs the mail
// as a signed contracts.WebhookRequest to the endpoint
// mail.webhook.endpoint names, among those the operator configured.
type webhook struct {
	endpoints   map[string]WebhookEndpoint
	names       string // the configured names, for messages
	client      *http.Client
	maxResponse int64
	textLimit   int
	now         func() time.Time
	tracer      trace.Tracer
	met         webhookMetrics
}

// newWebhook returns the webhook handler on cfg (defaults applied).
func newWebhook(cfg Config) *webhook {
	h := &webhook{endpoints: map[string]WebhookEndpoint{}, maxResponse: cfg.Webhook.MaxResponse,
		textLimit: cfg.TextLimit, now: time.Now, tracer: cfg.TracerProvider.Tracer(tracerName), met: newWebhookMetrics()}
	names := []string{}
	for _, e := range cfg.Webhook.Endpoints {
		h.endpoints[e.Name] = e
		names = append(names, e.Name)
	}
	slices.Sort(names)
	h.names = strings.Join(names, ", ")
	if h.names == "" {
		h.names = "none"
	}
	t := cfg.Webhook.Transport
	if t == nil {
		t = http.DefaultTransport.(*http.Transport).Clone()
	}
	// A redirect is not followed: it would leave the allow-list.
	h.client = &http.Client{Transport: t, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return h
}

// Check refuses, at evaluation time, a mail whose mail.webhook.endpoint
// is not a configured endpoint: a Transient error, so the mail is
// retried (a replica configured with the endpoint may take it during a
// rollout) and dead-lettered with the reason once out of attempts, its
// raw mail kept for a retry once the configuration is fixed.
func (h *webhook) Check(out *contracts.Outcome) error {
	_, err := h.endpoint(out)
	return err
}

func (h *webhook) endpoint(out *contracts.Outcome) (WebhookEndpoint, error) {
	name := ""
	for _, f := range out.Flags {
		if f.Flag == rules.FlagWebhookEndpoint {
			name = f.Value
		}
	}
	if name == "" {
		return WebhookEndpoint{}, transient("%s chose the webhook handler but %s names no endpoint (configured: %s)", rules.FlagHandler, rules.FlagWebhookEndpoint, h.names)
	}
	ep, ok := h.endpoints[name]
	if !ok {
		return WebhookEndpoint{}, transient("%s %q is not a configured webhook endpoint (configured: %s)", rules.FlagWebhookEndpoint, name, h.names)
	}
	return ep, nil
}

// Handle posts m to its endpoint, or with dryRun only builds the request
// and says what it would send. Success is disposition processed, with
// the summary; failures are classified by webhookOutcome.
func (h *webhook) Handle(ctx context.Context, m *Mail, dryRun bool) (HandlerResult, error) {
	out := m.Evaluated // set by Evaluate, which Act always follows
	ep, err := h.endpoint(out)
	if err != nil {
		return HandlerResult{}, err
	}
	req := webhookRequest(ctx, m, out, ep, h.textLimit)
	body, _ := json.Marshal(req) // plain data: strings, numbers, bytes
	if dryRun {
		h.met.record(ctx, ep.Name, webhookDryRun, 0)
		return HandlerResult{Disposition: contracts.Processed, Summary: req.Summary,
			Reason: fmt.Sprintf("dry run: would POST %d bytes to webhook endpoint %s; nothing sent", len(body), ep.Name)}, nil
	}
	start := time.Now()
	result, err := h.post(ctx, ep, out.ID, body)
	h.met.record(ctx, ep.Name, result, time.Since(start))
	if err != nil {
		return HandlerResult{}, err
	}
	return HandlerResult{Disposition: contracts.Processed, Summary: req.Summary,
		Reason: fmt.Sprintf("delivered to webhook endpoint %s", ep.Name)}, nil
}

// post sends one signed request, in a client span, and classifies its
// answer.
func (h *webhook) post(ctx context.Context, ep WebhookEndpoint, id string, body []byte) (string, error) {
	u, _ := url.Parse(ep.URL) // validated at start
	ctx, cancel := context.WithTimeout(ctx, ep.Timeout)
	defer cancel()
	ctx, span := h.tracer.Start(ctx, http.MethodPost, trace.WithSpanKind(trace.SpanKindClient))
	defer span.End()
	if span.IsRecording() {
		span.SetAttributes(semconv.HTTPRequestMethodPost, semconv.ServerAddress(u.Hostname()),
			attribute.String("mailscope.webhook.endpoint", ep.Name))
		if p, err := strconv.Atoi(port(u)); err == nil {
			span.SetAttributes(semconv.ServerPort(p))
		}
	}
	// The method is constant and the URL parsed at start: no error.
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ep.URL, bytes.NewReader(body))
	ts := strconv.FormatInt(h.now().Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "mailscope/"+version.Version)
	req.Header.Set(contracts.HeaderWebhookID, id)
	req.Header.Set(contracts.HeaderWebhookTimestamp, ts)
	req.Header.Set(contracts.HeaderWebhookSignature, contracts.WebhookSignature(ep.Secret, ts, body))
	propagation.TraceContext{}.Inject(ctx, propagation.HeaderCarrier(req.Header))

	status, after, detail := 0, time.Duration(0), ""
	resp, err := h.client.Do(req)
	if err == nil {
		status = resp.StatusCode
		after = retryAfterHeader(resp.Header.Get("Retry-After"), h.now())
		// Read with a bound; the status decides, so a body that breaks
		// off changes nothing (a 2xx is a success before its body).
		excerpt, _ := io.ReadAll(io.LimitReader(resp.Body, h.maxResponse))
		resp.Body.Close()
		detail = responseDetail(excerpt)
		if span.IsRecording() {
			span.SetAttributes(semconv.HTTPResponseStatusCode(status))
		}
	}
	timedOut := err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded)
	if timedOut {
		// Say the endpoint's timeout, not the client's wording.
		err = fmt.Errorf("no answer within %v", ep.Timeout)
	} else if err != nil {
		// The client's errors are *url.Error, which repeat the URL (it
		// may carry a token): its cause alone is kept.
		err = errors.Unwrap(err)
	}
	result, cerr := webhookOutcome(ep.Name, status, after, detail, timedOut, err)
	if cerr != nil && span.IsRecording() {
		et := result
		if status != 0 {
			et = strconv.Itoa(status)
		}
		span.SetAttributes(semconv.ErrorTypeKey.String(et))
		span.SetStatus(codes.Error, cerr.Error())
	}
	return result, cerr
}

// port returns u's port, or its scheme's.
func port(u *url.URL) string {
	if p := u.Port(); p != "" {
		return p
	}
	if u.Scheme == "https" {
		return "443"
	}
	return "80"
}

// retryAfterHeader parses a Retry-After value: delay seconds or an HTTP
// date. A date already past, or 0 seconds, means at once (1ms); an
// absent or unparseable value gives 0 (the worker's backoff).
func retryAfterHeader(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return 0
		}
		if s > int64(24*time.Hour/time.Second) {
			s = int64(24 * time.Hour / time.Second) // the worker caps it at BackoffMax anyway
		}
		return max(time.Duration(s)*time.Second, time.Millisecond)
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), time.Millisecond)
	}
	return 0
}

// responseDetail returns the start of a response body, printable, for a
// failure's reason: at most 200 bytes.
func responseDetail(b []byte) string {
	return printable(string(b[:min(len(b), 200)]))
}

// printable returns s, valid UTF-8, with every character that is not
// printable a space, trimmed.
func printable(s string) string {
	s = strings.ToValidUTF8(s, "")
	s = strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, s)
	return strings.TrimSpace(s)
}
