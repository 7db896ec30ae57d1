package dev_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/dev"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/telemetry"
	"github.com/mailscope/mailscope/testkit"
	"github.com/mailscope/mailscope/workers"
)

// hookCall is one request a receiver got, as it got it.
type hookCall struct {
	header   http.Header
	body     []byte
	req      contracts.WebhookRequest
	verified error // contracts.VerifyWebhook's verdict
}

// receiver is a webhook endpoint on loopback: it verifies every
// request's signature as the docs tell receivers to, records it by the
// mail's first recipient, and answers as respond says for the n-th call
// for that recipient (n from 1).
type receiver struct {
	srv     *httptest.Server
	secret  []byte
	respond func(w http.ResponseWriter, r *http.Request, rcpt string, n int)
	mu      sync.Mutex
	calls   map[string][]hookCall
}

func newReceiver(t *testing.T, respond func(w http.ResponseWriter, r *http.Request, rcpt string, n int)) *receiver {
	t.Helper()
	rv := &receiver{secret: []byte("receiver secret " + t.Name()), respond: respond, calls: map[string][]hookCall{}}
	rv.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		c := hookCall{header: r.Header.Clone(), body: body}
		c.verified = contracts.VerifyWebhook(rv.secret, r.Header.Get(contracts.HeaderWebhookTimestamp),
			r.Header.Get(contracts.HeaderWebhookSignature), body, time.Now(), 5*time.Minute)
		if err := json.Unmarshal(body, &c.req); err != nil || len(c.req.Envelope.RcptTo) == 0 || c.verified != nil {
			http.Error(w, "bad request", http.StatusUnauthorized)
			return
		}
		rcpt := c.req.Envelope.RcptTo[0]
		rv.mu.Lock()
		rv.calls[rcpt] = append(rv.calls[rcpt], c)
		n := len(rv.calls[rcpt])
		rv.mu.Unlock()
		rv.respond(w, r, rcpt, n)
	}))
	t.Cleanup(rv.srv.Close)
	return rv
}

// got returns the calls for rcpt so far.
func (rv *receiver) got(rcpt string) []hookCall {
	rv.mu.Lock()
	defer rv.mu.Unlock()
	return append([]hookCall(nil), rv.calls[rcpt]...)
}

// endpoint is the receiver as the worker's endpoint name.
func (rv *receiver) endpoint(name string, timeout time.Duration, attachmentLimit int) workers.WebhookEndpoint {
	return workers.WebhookEndpoint{Name: name, URL: rv.srv.URL + "/hooks/" + name + "?token=not-logged",
		Secret: rv.secret, Timeout: timeout, AttachmentLimit: attachmentLimit}
}

// webhookMail is a signed mail to rcpt with a text part, a 100-byte
// attachment and a 5,000-byte one.
func webhookMail(t *testing.T, b *bundle, rcpt string) (raw, small, big []byte) {
	t.Helper()
	small, big = bytes.Repeat([]byte("s\x00"), 50), bytes.Repeat([]byte("B"), 5000)
	var m strings.Builder
	fmt.Fprintf(&m, "From: Alice <alice@example.com>\r\nTo: %s\r\nSubject: with attachments\r\n", rcpt)
	fmt.Fprintf(&m, "Date: Thu, 26 Nov 2026 12:00:00 +0000\r\nMessage-ID: <%s@example.com>\r\nMIME-Version: 1.0\r\n", strings.ReplaceAll(rcpt, "@", "."))
	m.WriteString("Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n")
	m.WriteString("--b1\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee the attachments.\r\n")
	for _, a := range []struct {
		name, ct string
		data     []byte
	}{{"small.bin", "application/octet-stream", small}, {"big.zip", "application/zip", big}} {
		fmt.Fprintf(&m, "--b1\r\nContent-Type: %s\r\nContent-Disposition: attachment; filename=%q\r\nContent-Transfer-Encoding: base64\r\n\r\n", a.ct, a.name)
		enc := base64.StdEncoding.EncodeToString(a.data)
		for len(enc) > 76 {
			m.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		m.WriteString(enc + "\r\n")
	}
	m.WriteString("--b1--\r\n")
	signed, err := testkit.Sign([]byte(m.String()), testkit.SignOptions{Domain: "example.com", Selector: "s1", Key: b.rsaKey})
	if err != nil {
		t.Fatal(err)
	}
	return signed, small, big
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const webhookHandlerRules = "rcpt:^w- 10 webhook\ndefault 0 publish\n"

// TestWebhook: rules in the bucket send mail to the webhook handler,
// which posts it to a receiver on loopback that verifies every request's
// signature, through the real wiring. A 2xx is processed (the request
// carries the mail, its decisions and attachments inline up to the
// limit; the receiver continues the mail's trace); a 5xx is retried and
// the retry delivered; a 4xx is rejected with the status; a request
// that times out is retried; an endpoint name no worker has is retried,
// then dead-lettered with the reason, the receiver never called; a
// refused connection is retried, then dead-lettered;
// mail.dry_run sends nothing and the outcome says what would have been
// sent; a held mail looked at again many times never calls the webhook,
// and once the pause lifts calls it exactly once.
func TestWebhook(t *testing.T) {
	rv := newReceiver(t, func(w http.ResponseWriter, r *http.Request, rcpt string, n int) {
		switch {
		case strings.HasPrefix(rcpt, "w-5xx@") && n == 1:
			http.Error(w, "upstream down", http.StatusServiceUnavailable)
		case strings.HasPrefix(rcpt, "w-4xx@"):
			http.Error(w, "no such ticket queue", http.StatusNotFound)
		case strings.HasPrefix(rcpt, "w-slow@") && n == 1:
			<-r.Context().Done() // until the worker gives up on it
		default:
			w.WriteHeader(http.StatusAccepted)
		}
	})
	srv, err := telemetry.Start("127.0.0.1:0", telemetry.ServiceName("dev"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(t.Context()) })
	var cfg dev.Config
	cfg.Worker = workers.Config{MaxAttempts: 3, BackoffBase: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
		HoldDelay: 10 * time.Millisecond, TracerProvider: tp,
		Webhook: workers.WebhookConfig{Endpoints: []workers.WebhookEndpoint{rv.endpoint("tickets", 500*time.Millisecond, 1000),
			// Nothing listens there: every request's connection is refused.
			{Name: "down", URL: fmt.Sprintf("http://127.0.0.1:%d/hooks", systest.FreePorts(t, 1)[0]), Secret: []byte("down secret")}}}}
	cfg.Producer.TracerProvider = tp
	b := setupDev(t, cfg)
	b.putRules(t, rules.FlagHandler, webhookHandlerRules)
	endpointRev := b.putRules(t, rules.FlagWebhookEndpoint, "rcpt:^w-unknown@ 20 nowhere\nrcpt:^w-down@ 15 down\ndefault 0 tickets\n")
	b.putRules(t, rules.FlagDryRun, "rcpt:^w-dry@ 10 true\n")
	b.putRules(t, rules.FlagPause, "rcpt:^w-held@ 10 true\n")
	before := scrapeMetrics(t, srv)

	rsa := func(rcpt string) []byte { return mail(t, rcpt, "webhook", b.rsaKey, "example.com", "s1") }
	verified := func(t *testing.T, rcpt string, want int) []hookCall {
		t.Helper()
		calls := rv.got(rcpt)
		if len(calls) != want {
			t.Fatalf("%s: the receiver got %d requests, want %d", rcpt, len(calls), want)
		}
		for i, c := range calls {
			if c.verified != nil {
				t.Errorf("%s request %d: signature %v", rcpt, i+1, c.verified)
			}
		}
		return calls
	}

	t.Run("2xx: processed, the mail, its decisions and attachments posted, the trace continued", func(t *testing.T) {
		raw, small, big := webhookMail(t, b, "w-ok@example.org")
		b.sendSMTP(t, raw, "w-ok@example.org")
		o := b.outcomes.First(t, "w-ok@example.org")
		wantDisposition(t, o, contracts.Processed, "webhook")
		if o.Attempt != 1 || o.DryRun || o.Reason != "delivered to webhook endpoint tickets" {
			t.Errorf("attempt %d dry_run %v reason %q", o.Attempt, o.DryRun, o.Reason)
		}
		wantDecision(t, o, rules.FlagWebhookEndpoint, decision{"tickets", endpointRev, 3})
		c := verified(t, "w-ok@example.org", 1)[0]
		r := c.req
		if c.header.Get(contracts.HeaderWebhookID) != o.ID || r.ID != o.ID || r.Schema != contracts.WebhookSchema || r.Endpoint != "tickets" ||
			r.Attempt != 1 || r.MessageID != o.MessageID || r.Envelope.MailFrom != "alice@example.com" || c.header.Get("Content-Type") != "application/json" {
			t.Errorf("request id %q header id %q schema %q endpoint %q attempt %d message id %q envelope %+v",
				r.ID, c.header.Get(contracts.HeaderWebhookID), r.Schema, r.Endpoint, r.Attempt, r.MessageID, r.Envelope)
		}
		if r.Auth.Trust != o.Auth.Trust || len(r.Auth.DKIM) != 1 || r.Auth.DKIM[0].Result != contracts.ResultPass {
			t.Errorf("auth %+v, want the outcome's %+v", r.Auth, o.Auth)
		}
		if got, want := jsonOf(t, r.Flags), jsonOf(t, o.Flags); got != want {
			t.Errorf("flags %s, want the outcome's %s", got, want)
		}
		if r.Summary == nil || r.Summary.Subject != "with attachments" || len(r.Summary.TextParts) != 1 ||
			!strings.Contains(r.Summary.TextParts[0].Text, "See the attachments.") || len(r.Summary.Attachments) != 2 {
			t.Errorf("summary %+v", r.Summary)
		}
		subject := false
		for _, h := range r.Headers {
			subject = subject || h.Name == "Subject" && h.Value == "with attachments"
		}
		if !subject || r.HeadersTruncated {
			t.Errorf("headers %+v (truncated %v) lack the subject", r.Headers, r.HeadersTruncated)
		}
		if len(r.Attachments) != 2 {
			t.Fatalf("attachments %+v", r.Attachments)
		}
		if a := r.Attachments[0]; a.Filename != "small.bin" || a.Size != len(small) || !bytes.Equal(a.Content, small) || a.Omitted != "" {
			t.Errorf("small attachment %+v, want inline", a)
		}
		if a := r.Attachments[1]; a.Filename != "big.zip" || a.ContentType != "application/zip" || a.Size != len(big) || a.Content != nil ||
			!strings.Contains(a.Omitted, "attachment limit") {
			t.Errorf("big attachment %+v, want described, not sent", a)
		}
		// The body's base64 is standard base64 of the decoded content.
		if !bytes.Contains(c.body, []byte(`"content":"`+base64.StdEncoding.EncodeToString(small)+`"`)) {
			t.Errorf("body lacks the small attachment in base64")
		}

		var post sdktrace.ReadOnlySpan
		systest.WaitFor(t, "the webhook's client span", func() bool {
			s := traceOf(rec, o.TraceID)
			if p := s.named("POST"); len(p) == 1 && len(s.named("handler")) == 1 {
				post = p[0]
				if post.Parent().SpanID() != s.named("handler")[0].SpanContext().SpanID() {
					t.Errorf("POST span's parent %v, want the handler span", post.Parent())
				}
				return true
			}
			return false
		})
		if post.SpanKind() != trace.SpanKindClient {
			t.Errorf("POST span kind %v, want client", post.SpanKind())
		}
		wantAttr(t, post, "http.request.method", "POST")
		wantAttr(t, post, "server.address", "127.0.0.1")
		wantAttr(t, post, "mailscope.webhook.endpoint", "tickets")
		if got := attr(t, post, "http.response.status_code").AsInt64(); got != http.StatusAccepted {
			t.Errorf("http.response.status_code %d", got)
		}
		if want := "00-" + o.TraceID + "-" + post.SpanContext().SpanID().String() + "-01"; c.header.Get("Traceparent") != want {
			t.Errorf("traceparent %q, want %q: the receiver continues the POST span", c.header.Get("Traceparent"), want)
		}
	})

	t.Run("5xx: retried, then delivered", func(t *testing.T) {
		b.sendSMTP(t, rsa("w-5xx@example.org"), "w-5xx@example.org")
		o := b.outcomes.First(t, "w-5xx@example.org")
		wantDisposition(t, o, contracts.Processed, "webhook")
		if o.Attempt != 2 {
			t.Errorf("attempt %d, want 2", o.Attempt)
		}
		calls := verified(t, "w-5xx@example.org", 2)
		if calls[0].req.Attempt != 1 || calls[1].req.Attempt != 2 ||
			calls[0].header.Get(contracts.HeaderWebhookID) != o.ID || calls[1].header.Get(contracts.HeaderWebhookID) != o.ID {
			t.Errorf("attempts %d, %d ids %q, %q: want 1, 2 and the mail id %q on both", calls[0].req.Attempt, calls[1].req.Attempt,
				calls[0].header.Get(contracts.HeaderWebhookID), calls[1].header.Get(contracts.HeaderWebhookID), o.ID)
		}
	})

	t.Run("4xx: rejected with the status, not retried", func(t *testing.T) {
		b.sendSMTP(t, rsa("w-4xx@example.org"), "w-4xx@example.org")
		o := b.outcomes.First(t, "w-4xx@example.org")
		wantDisposition(t, o, contracts.Rejected, "webhook")
		if want := "webhook endpoint tickets refused the mail: HTTP 404: no such ticket queue"; o.Reason != want || o.Attempt != 1 {
			t.Errorf("reason %q attempt %d, want %q at attempt 1", o.Reason, o.Attempt, want)
		}
		verified(t, "w-4xx@example.org", 1)
	})

	t.Run("timeout: retried, then delivered", func(t *testing.T) {
		b.sendSMTP(t, rsa("w-slow@example.org"), "w-slow@example.org")
		o := b.outcomes.First(t, "w-slow@example.org")
		wantDisposition(t, o, contracts.Processed, "webhook")
		if o.Attempt != 2 {
			t.Errorf("attempt %d, want 2", o.Attempt)
		}
		verified(t, "w-slow@example.org", 2)
	})

	t.Run("an endpoint no worker has: retried, dead-lettered with the reason, never called", func(t *testing.T) {
		b.sendSMTP(t, rsa("w-unknown@example.org"), "w-unknown@example.org")
		o := b.outcomes.First(t, "w-unknown@example.org")
		if o.Disposition != contracts.Dead || o.Attempt != 3 ||
			!strings.Contains(o.Reason, `mail.webhook.endpoint "nowhere" is not a configured webhook endpoint (configured: down, tickets)`) {
			t.Errorf("%s at attempt %d (%q), want dead at attempt 3 naming the endpoint", o.Disposition, o.Attempt, o.Reason)
		}
		// The dead letter, with the raw mail, is stored after the outcome.
		systest.WaitFor(t, "the mail's dead letter", func() bool { return b.streamCount(t, "MAIL_DEAD") == 1 })
		verified(t, "w-unknown@example.org", 0)
	})

	t.Run("connection refused: retried, then dead-lettered with the error", func(t *testing.T) {
		b.sendSMTP(t, rsa("w-down@example.org"), "w-down@example.org")
		o := b.outcomes.First(t, "w-down@example.org")
		if o.Disposition != contracts.Dead || o.Attempt != 3 || !strings.Contains(o.Reason, "webhook endpoint down: dial tcp") ||
			!strings.Contains(o.Reason, "connection refused") || strings.Contains(o.Reason, "/hooks") {
			t.Errorf("%s at attempt %d (%q), want dead at attempt 3 with the refused connection, without the URL", o.Disposition, o.Attempt, o.Reason)
		}
		systest.WaitFor(t, "the mail's dead letter", func() bool { return b.streamCount(t, "MAIL_DEAD") == 2 })
	})

	t.Run("mail.dry_run: nothing sent, the outcome says what would have been", func(t *testing.T) {
		b.sendSMTP(t, rsa("w-dry@example.org"), "w-dry@example.org")
		o := b.outcomes.First(t, "w-dry@example.org")
		wantDisposition(t, o, contracts.Processed, "webhook")
		if !o.DryRun || !strings.HasPrefix(o.Reason, "dry run: would POST ") || !strings.HasSuffix(o.Reason, " bytes to webhook endpoint tickets; nothing sent") {
			t.Errorf("dry_run %v reason %q", o.DryRun, o.Reason)
		}
		if o.Summary == nil || o.Summary.Subject != "webhook" {
			t.Errorf("summary %+v", o.Summary)
		}
		verified(t, "w-dry@example.org", 0)
	})

	t.Run("held mail re-checked many times never calls the webhook; resumed, exactly once", func(t *testing.T) {
		b.sendSMTP(t, rsa("w-held@example.org"), "w-held@example.org")
		systest.WaitFor(t, "the mail to be held", func() bool { return b.sys.Worker.Held() == 1 })
		checks := b.sys.Worker.HeldChecks()
		systest.WaitFor(t, "50 looks at the held mail", func() bool { return b.sys.Worker.HeldChecks() >= checks+50 })
		// And on rule changes, with the webhook's rules among them.
		b.putRules(t, rules.FlagWebhookEndpoint, "rcpt:^w-unknown@ 20 nowhere\nrcpt:^w-down@ 15 down\ndefault 0 tickets\n")
		b.putRules(t, rules.FlagHandler, webhookHandlerRules)
		checks = b.sys.Worker.HeldChecks()
		systest.WaitFor(t, "more looks at the held mail", func() bool { return b.sys.Worker.HeldChecks() >= checks+10 })
		if b.sys.Worker.Held() != 1 {
			t.Fatalf("%d held, want the mail still held", b.sys.Worker.Held())
		}
		verified(t, "w-held@example.org", 0)

		b.putRules(t, rules.FlagPause, "rcpt:^w-held@ 10 false\n")
		o := b.outcomes.First(t, "w-held@example.org")
		wantDisposition(t, o, contracts.Processed, "webhook")
		systest.WaitDrained(t, b.sys.JS)
		verified(t, "w-held@example.org", 1)
	})

	t.Run("held mail whose endpoint is unknown once the pause lifts: resumed, retried, dead-lettered", func(t *testing.T) {
		b.putRules(t, rules.FlagWebhookEndpoint, "rcpt:^w-gone@ 25 gone\nrcpt:^w-unknown@ 20 nowhere\nrcpt:^w-down@ 15 down\ndefault 0 tickets\n")
		b.putRules(t, rules.FlagPause, "rcpt:^w-gone@ 10 true\n")
		b.sendSMTP(t, rsa("w-gone@example.org"), "w-gone@example.org")
		systest.WaitFor(t, "the mail to be held", func() bool { return b.sys.Worker.Held() == 1 })
		b.putRules(t, rules.FlagPause, "rcpt:^w-gone@ 10 false\n")
		o := b.outcomes.First(t, "w-gone@example.org")
		if o.Disposition != contracts.Dead || o.Attempt != 3 || !strings.Contains(o.Reason, `mail.webhook.endpoint "gone" is not a configured webhook endpoint`) {
			t.Errorf("%s at attempt %d (%q), want dead at attempt 3 naming the endpoint", o.Disposition, o.Attempt, o.Reason)
		}
		systest.WaitFor(t, "the mail's dead letter", func() bool { return b.streamCount(t, "MAIL_DEAD") == 3 })
		if b.sys.Worker.Held() != 0 {
			t.Errorf("%d held, want none", b.sys.Worker.Held())
		}
		verified(t, "w-gone@example.org", 0)
	})

	t.Run("requests counted by endpoint and result", func(t *testing.T) {
		after := scrapeMetrics(t, srv)
		l := labels("endpoint", "down", "result", "connection_error")
		if got := after.value("mailscope_webhook_requests_total", l) - before.value("mailscope_webhook_requests_total", l); got != 3 {
			t.Errorf("mailscope_webhook_requests_total{endpoint=\"down\",result=\"connection_error\"} moved by %v, want 3", got)
		}
		for result, want := range map[string]float64{"delivered": 4, "server_error": 1, "rejected": 1, "timeout": 1, "dry_run": 1, "retry_later": 0, "connection_error": 0} {
			l := labels("endpoint", "tickets", "result", result)
			if got := after.value("mailscope_webhook_requests_total", l) - before.value("mailscope_webhook_requests_total", l); got != want {
				t.Errorf("mailscope_webhook_requests_total{result=%q} moved by %v, want %v", result, got, want)
			}
			if result == "dry_run" {
				continue
			}
			if got := after.value("mailscope_webhook_request_duration_seconds", l) - before.value("mailscope_webhook_request_duration_seconds", l); got != want {
				t.Errorf("mailscope_webhook_request_duration_seconds{result=%q} count moved by %v, want %v", result, got, want)
			}
		}
	})
}

// TestWebhookRetryAfter: a 429 is redelivered after its Retry-After, in
// seconds or as an HTTP date, not after the worker's backoff: the
// backoff here is an hour, so a second attempt within the tests' wait
// can only be the Retry-After's.
func TestWebhookRetryAfter(t *testing.T) {
	rv := newReceiver(t, func(w http.ResponseWriter, r *http.Request, rcpt string, n int) {
		switch {
		case n > 1:
			w.WriteHeader(http.StatusOK)
		case strings.HasPrefix(rcpt, "w-429s@"):
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
		default:
			w.Header().Set("Retry-After", time.Now().Add(time.Second).UTC().Format(http.TimeFormat))
			w.WriteHeader(http.StatusTooManyRequests)
		}
	})
	b := setup(t, workers.Config{MaxAttempts: 3, BackoffBase: time.Hour, BackoffMax: time.Hour,
		Webhook: workers.WebhookConfig{Endpoints: []workers.WebhookEndpoint{rv.endpoint("tickets", 0, 0)}}})
	b.putRules(t, rules.FlagHandler, webhookHandlerRules)
	b.putRules(t, rules.FlagWebhookEndpoint, "default 0 tickets\n")
	for _, rcpt := range []string{"w-429s@example.org", "w-429d@example.org"} {
		b.sendSMTP(t, mail(t, rcpt, "busy", b.edKey, "partner.example", "ed"), rcpt)
	}
	for _, rcpt := range []string{"w-429s@example.org", "w-429d@example.org"} {
		o := b.outcomes.First(t, rcpt)
		wantDisposition(t, o, contracts.Processed, "webhook")
		if o.Attempt != 2 {
			t.Errorf("%s: attempt %d, want 2", rcpt, o.Attempt)
		}
		if calls := rv.got(rcpt); len(calls) != 2 || calls[0].verified != nil || calls[1].verified != nil {
			t.Errorf("%s: %d requests, want 2, verified", rcpt, len(calls))
		}
	}
}
