package dev_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/dev"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/telemetry"
	"github.com/mailscope/mailscope/workers"
)

// The example service (examples/service) is built once per test binary
// and removed by TestMain.
var exampleService struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// exampleBinary returns the path of the example service, building it on
// first use.
func exampleBinary(t *testing.T) string {
	t.Helper()
	exampleService.once.Do(func() {
		if exampleService.dir, exampleService.err = os.MkdirTemp("", "mailscope-example-service-"); exampleService.err != nil {
			return
		}
		path := filepath.Join(exampleService.dir, "service")
		cmd := exec.Command("go", "build", "-o", path, "github.com/mailscope/mailscope/examples/service")
		if out, err := cmd.CombinedOutput(); err != nil {
			exampleService.err = fmt.Errorf("go build examples/service: %v\n%s", err, out)
			return
		}
		exampleService.path = path
	})
	if exampleService.err != nil {
		t.Fatal(exampleService.err)
	}
	return exampleService.path
}

// lockedBuffer is an output a process writes while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitListening waits until some client of the system's account listens
// on subject: a service is ready once its subscription is.
func (b *bundle) waitListening(t *testing.T, subject string) {
	t.Helper()
	acc, err := b.sys.NATS.LookupAccount(access.Account)
	if err != nil {
		t.Fatal(err)
	}
	systest.WaitFor(t, "a service listening on "+subject, func() bool { return acc.SubscriptionInterest(subject) })
}

// startExample runs the example service as its own process with the
// service role's credentials, taking requests on subject, and returns
// its standard output (its side effects). It ends with the test.
func startExample(t *testing.T, b *bundle, subject string, args ...string) *lockedBuffer {
	t.Helper()
	out := &lockedBuffer{}
	stderr := &lockedBuffer{}
	cmd := exec.CommandContext(t.Context(), exampleBinary(t), append([]string{"--server", b.sys.URL,
		"--nkey", b.sys.Credentials.SeedFile(access.Service), "--subject", subject}, args...)...)
	cmd.Stdout, cmd.Stderr = out, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { <-exited }) // killed when the test's context ends
	acc, err := b.sys.NATS.LookupAccount(access.Account)
	if err != nil {
		t.Fatal(err)
	}
	systest.WaitFor(t, "the example service listening on "+subject, func() bool {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("the example service exited: %v\n%s", err, stderr)
		default:
		}
		return acc.SubscriptionInterest(subject)
	})
	return out
}

// serviceCall is one request a test service got.
type serviceCall struct {
	header nats.Header
	req    contracts.ServiceRequest
}

// testService is a micro service of the test's own, written against the
// contract, on the service role's credentials: it records every request
// by the mail's first recipient and answers as respond says for the n-th
// call for that recipient (n from 1).
type testService struct {
	mu    sync.Mutex
	calls map[string][]serviceCall
}

func newTestService(t *testing.T, b *bundle, name, subject string, respond func(r micro.Request, rcpt string, n int, ts *testService)) *testService {
	t.Helper()
	ts := &testService{calls: map[string][]serviceCall{}}
	svc, err := micro.AddService(b.conn(t, access.Service), micro.Config{Name: name, Version: "0.0.1",
		Endpoint: &micro.EndpointConfig{Subject: subject, Handler: micro.HandlerFunc(func(r micro.Request) {
			c := serviceCall{header: nats.Header(r.Headers())}
			if err := json.Unmarshal(r.Data(), &c.req); err != nil || len(c.req.Envelope.RcptTo) == 0 {
				r.Error("400", "not a request", nil)
				return
			}
			rcpt := c.req.Envelope.RcptTo[0]
			ts.mu.Lock()
			ts.calls[rcpt] = append(ts.calls[rcpt], c)
			n := len(ts.calls[rcpt])
			ts.mu.Unlock()
			respond(r, rcpt, n, ts)
		})}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Stop() })
	b.waitListening(t, subject)
	return ts
}

// got returns the calls for rcpt so far.
func (ts *testService) got(rcpt string) []serviceCall {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]serviceCall(nil), ts.calls[rcpt]...)
}

// count returns how many calls for rcpt came.
func (ts *testService) count(rcpt string) int { return len(ts.got(rcpt)) }

func respondJSON(r micro.Request, body string) { r.Respond([]byte(body)) }

// serviceTimeout is TestService's service timeout.
const serviceTimeout = 2 * time.Second

const serviceHandlerRules = "rcpt:^s- 10 service\ndefault 0 publish\n"

// TestService: rules in the bucket send mail to the service handler,
// which asks external NATS micro services, on the service role's
// credentials, to decide it, through the real wiring. The example
// service, its own process written only against the contract, accepts,
// quarantines and rejects by subject line, does its side effect once,
// and in a dry run decides and does nothing; `nats micro ls` and `nats
// micro info` (the operator) list it. A service of the test's own shows
// the request (the mail, its decisions, attachments up to the limit, the
// trace continued) and every answer: retry (redelivered, asked again),
// micro errors 4xx (rejected with the text) and 5xx (retried), replies
// that break the contract (retried), no reply within the timeout
// (retried); a subject nobody listens on and a service name no worker
// has are retried, then dead-lettered with the reason; held mail never
// asks a service until it is resumed. `nats reply`, the
// CLI as the service, decides a mail with a fixed reply. The service
// role may do nothing else. Requests are counted by service and result.
func TestService(t *testing.T) {
	srv, err := telemetry.Start("127.0.0.1:0", telemetry.ServiceName("dev"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(t.Context()) })
	var cfg dev.Config
	cfg.Worker = workers.Config{MaxAttempts: 3, BackoffBase: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond, TracerProvider: tp,
		HoldDelay: 10 * time.Millisecond,
		// The timeout is long enough that only the slow case reaches it
		// on a loaded machine.
		Service: workers.ServiceConfig{Timeout: serviceTimeout, AttachmentLimit: 1000, Services: []workers.Service{
			{Name: "tickets"}, {Name: "gate"}, {Name: "cli"},
			{Name: "down", Subject: "mail.service.nobody.home"}}}}
	cfg.Producer.TracerProvider = tp
	b := setupDev(t, cfg)
	b.putRules(t, rules.FlagHandler, serviceHandlerRules)
	serviceRev := b.putRules(t, rules.FlagService, "rcpt:^s-ex- 40 tickets\nrcpt:^s-cli@ 35 cli\nrcpt:^s-unknown@ 30 nowhere\nrcpt:^s-down@ 20 down\ndefault 0 gate\nrcpt:^s-none@ 45\n")
	b.putRules(t, rules.FlagDryRun, "rcpt:dry@ 10 true\n")
	b.putRules(t, rules.FlagPause, "rcpt:^s-held@ 10 true\n")
	before := scrapeMetrics(t, srv)

	example := startExample(t, b, "mail.service.tickets", "--accept", "(?i)ticket", "--quarantine", "(?i)spam")
	// Replies that break the contract, each answered to a mail's first
	// request; its second is accepted with a reason too long to keep.
	broken := []string{
		`{"schema":"mailscope.service.reply.v2","decision":"accept"}`,
		`{"decision":"retry","retry_after":-1}`,
		`{"decision":"accept","retry_after":3}`,
		`{"decision":"reject","disposition":"quarantined"}`,
		`{"decision":"accept","disposition":"dead"}`,
	}
	longReason := strings.Repeat("r", 2*contracts.ServiceMaxReason)
	// The second of two slow requests answers the first one's wait.
	slowSecond := make(chan struct{})
	var slowOnce sync.Once
	gate := newTestService(t, b, "gate", "mail.service.gate", func(r micro.Request, rcpt string, n int, ts *testService) {
		switch {
		case strings.HasPrefix(rcpt, "s-retry@") && n == 1:
			respondJSON(r, `{"decision":"retry","reason":"busy"}`)
		case strings.HasPrefix(rcpt, "s-err4@"):
			r.Error("404", "no such queue", nil)
		case strings.HasPrefix(rcpt, "s-err5@") && n == 1:
			r.Error("503", "overloaded", nil)
		case strings.HasPrefix(rcpt, "s-bad@") && n == 1:
			respondJSON(r, `ok`)
		case strings.HasPrefix(rcpt, "s-bad@") && n == 2:
			respondJSON(r, `{"decision":"maybe"}`)
		case strings.HasPrefix(rcpt, "s-slow@") && n == 1:
			// Answered only once the worker has given up and asked again:
			// a reply too late, lost.
			go func() { <-slowSecond; respondJSON(r, `{"decision":"reject","reason":"too late"}`) }()
		case strings.HasPrefix(rcpt, "s-slow@"):
			slowOnce.Do(func() { close(slowSecond) })
			respondJSON(r, `{"decision":"accept","reason":"in time"}`)
		case strings.HasPrefix(rcpt, "s-broken-"):
			var k int
			fmt.Sscanf(rcpt, "s-broken-%d@", &k)
			if n == 1 {
				respondJSON(r, broken[k])
				return
			}
			respondJSON(r, `{"decision":"accept","reason":"`+longReason+`"}`)
		case strings.HasPrefix(rcpt, "s-discard@"):
			respondJSON(r, `{"decision":"accept","disposition":"discarded","reason":"a duplicate"}`)
		default:
			respondJSON(r, `{"schema":"mailscope.service.reply.v1","decision":"accept","reason":"ok"}`)
		}
	})

	rsa := func(rcpt, subject string) []byte { return mail(t, rcpt, subject, b.rsaKey, "example.com", "s1") }

	t.Run("the example service accepts by subject: processed, its side effect once", func(t *testing.T) {
		b.sendSMTP(t, rsa("s-ex-ok@example.org", "ticket: printer on fire"), "s-ex-ok@example.org")
		o := b.outcomes.First(t, "s-ex-ok@example.org")
		wantDisposition(t, o, contracts.Processed, "service")
		if o.Reason != "accepted by service tickets: ticket opened" || o.DryRun || o.Summary == nil || o.Summary.Subject != "ticket: printer on fire" {
			t.Errorf("reason %q dry_run %v summary %+v", o.Reason, o.DryRun, o.Summary)
		}
		wantDecision(t, o, rules.FlagService, decision{"tickets", serviceRev, 1})
		if want := fmt.Sprintf("ticket %s (processed): ticket: printer on fire\n", o.ID); !strings.Contains(example.String(), want) {
			t.Errorf("the example's output %q lacks %q", example, want)
		}
	})

	t.Run("the example service quarantines and rejects, with its reason", func(t *testing.T) {
		b.sendSMTP(t, rsa("s-ex-spam@example.org", "cheap spam"), "s-ex-spam@example.org")
		b.sendSMTP(t, rsa("s-ex-no@example.org", "hello"), "s-ex-no@example.org")
		o := b.outcomes.First(t, "s-ex-spam@example.org")
		wantDisposition(t, o, contracts.Quarantined, "service")
		if o.Reason != "accepted by service tickets: subject matches the quarantine pattern" {
			t.Errorf("reason %q", o.Reason)
		}
		o = b.outcomes.First(t, "s-ex-no@example.org")
		wantDisposition(t, o, contracts.Rejected, "service")
		if want := `service tickets rejected the mail: subject "hello" does not match (?i)ticket`; o.Reason != want || o.Attempt != 1 {
			t.Errorf("reason %q attempt %d, want %q at attempt 1", o.Reason, o.Attempt, want)
		}
	})

	t.Run("mail.dry_run: the service decides and does nothing, the outcome says dry_run", func(t *testing.T) {
		b.sendSMTP(t, rsa("s-ex-dry@example.org", "ticket, dry"), "s-ex-dry@example.org")
		o := b.outcomes.First(t, "s-ex-dry@example.org")
		wantDisposition(t, o, contracts.Processed, "service")
		if !o.DryRun || o.Reason != "dry run: accepted by service tickets: ticket opened" {
			t.Errorf("dry_run %v reason %q", o.DryRun, o.Reason)
		}
		out := example.String()
		if want := fmt.Sprintf("dry run %s: would accept as processed: ticket, dry\n", o.ID); !strings.Contains(out, want) || strings.Contains(out, "ticket "+o.ID) {
			t.Errorf("the example's output %q: want %q and no ticket for %s", out, want, o.ID)
		}
	})

	t.Run("nats micro ls and info, as the operator, list the example service", func(t *testing.T) {
		c := newCLI(t, b)
		ls := c.run(t, "micro", "ls")
		if !strings.Contains(ls, "mailscope-example") || !strings.Contains(ls, "gate") {
			t.Errorf("nats micro ls:\n%s", ls)
		}
		info := c.run(t, "micro", "info", "mailscope-example")
		for _, want := range []string{"mail.service.tickets", "decide", "mailscope.service.v1", "1.0.0"} {
			if !strings.Contains(info, want) {
				t.Errorf("nats micro info mailscope-example lacks %q:\n%s", want, info)
			}
		}
		stats := c.run(t, "micro", "stats", "mailscope-example", "--json")
		if !strings.Contains(stats, `"num_requests": 4`) {
			t.Errorf("nats micro stats: want the 4 requests the example got:\n%s", stats)
		}
	})

	t.Run("the request: the mail, its decisions, attachments to the limit; the trace continued", func(t *testing.T) {
		raw, small, big := webhookMail(t, b, "s-ok@example.org")
		b.sendSMTP(t, raw, "s-ok@example.org")
		o := b.outcomes.First(t, "s-ok@example.org")
		wantDisposition(t, o, contracts.Processed, "service")
		if o.Reason != "accepted by service gate: ok" || o.Summary == nil || len(o.Summary.Attachments) != 2 {
			t.Errorf("reason %q summary %+v", o.Reason, o.Summary)
		}
		calls := gate.got("s-ok@example.org")
		if len(calls) != 1 {
			t.Fatalf("%d requests, want 1", len(calls))
		}
		c, r := calls[0], calls[0].req
		if r.Schema != contracts.ServiceSchema || r.ID != o.ID || c.header.Get(contracts.HeaderServiceMailID) != o.ID || r.Service != "gate" || r.DryRun ||
			r.Attempt != 1 || r.MessageID != o.MessageID || r.Envelope.MailFrom != "alice@example.com" {
			t.Errorf("request schema %q id %q header id %q service %q dry_run %v attempt %d message id %q envelope %+v",
				r.Schema, r.ID, c.header.Get(contracts.HeaderServiceMailID), r.Service, r.DryRun, r.Attempt, r.MessageID, r.Envelope)
		}
		if r.Deadline.Before(r.ReceivedAt) || r.Deadline.After(o.ProcessedAt.Add(serviceTimeout)) {
			t.Errorf("deadline %v (received %v, processed %v): want the service timeout after the request", r.Deadline, r.ReceivedAt, o.ProcessedAt)
		}
		if got, want := jsonOf(t, r.Flags), jsonOf(t, o.Flags); got != want {
			t.Errorf("flags %s, want the outcome's %s", got, want)
		}
		if r.Auth.Trust != o.Auth.Trust || len(r.Auth.DKIM) != 1 || r.Auth.DKIM[0].Result != contracts.ResultPass {
			t.Errorf("auth %+v, want the outcome's %+v", r.Auth, o.Auth)
		}
		if r.Summary == nil || r.Summary.Subject != "with attachments" || len(r.Headers) == 0 || len(r.Attachments) != 2 {
			t.Fatalf("summary %+v headers %d attachments %+v", r.Summary, len(r.Headers), r.Attachments)
		}
		if a := r.Attachments[0]; !bytes.Equal(a.Content, small) || a.Omitted != "" {
			t.Errorf("small attachment %+v, want inline", a)
		}
		if a := r.Attachments[1]; a.Content != nil || a.Size != len(big) || !strings.Contains(a.Omitted, "attachment limit") {
			t.Errorf("big attachment %+v, want described, not sent", a)
		}

		var req sdktrace.ReadOnlySpan
		systest.WaitFor(t, "the service request's client span", func() bool {
			s := traceOf(rec, o.TraceID)
			if p := s.named("request mail.service.gate"); len(p) == 1 && len(s.named("handler")) == 1 {
				req = p[0]
				if req.Parent().SpanID() != s.named("handler")[0].SpanContext().SpanID() {
					t.Errorf("request span's parent %v, want the handler span", req.Parent())
				}
				return true
			}
			return false
		})
		if req.SpanKind() != trace.SpanKindClient {
			t.Errorf("request span kind %v, want client", req.SpanKind())
		}
		wantAttr(t, req, "messaging.system", "nats")
		wantAttr(t, req, "messaging.destination.name", "mail.service.gate")
		wantAttr(t, req, "mailscope.service", "gate")
		wantAttr(t, req, "mailscope.service.result", "accepted")
		if want := "00-" + o.TraceID + "-" + req.SpanContext().SpanID().String() + "-01"; c.header.Get("traceparent") != want {
			t.Errorf("traceparent %q, want %q: the service continues the request span", c.header.Get("traceparent"), want)
		}
	})

	t.Run("accept as discarded: the outcome says so, without a summary", func(t *testing.T) {
		b.sendSMTP(t, rsa("s-discard@example.org", "again"), "s-discard@example.org")
		o := b.outcomes.First(t, "s-discard@example.org")
		wantDisposition(t, o, contracts.Discarded, "service")
		if o.Reason != "accepted by service gate: a duplicate" || o.Summary != nil {
			t.Errorf("reason %q summary %+v", o.Reason, o.Summary)
		}
	})

	t.Run("retry: redelivered and asked again, then accepted", func(t *testing.T) {
		b.sendSMTP(t, rsa("s-retry@example.org", "later"), "s-retry@example.org")
		o := b.outcomes.First(t, "s-retry@example.org")
		wantDisposition(t, o, contracts.Processed, "service")
		calls := gate.got("s-retry@example.org")
		if o.Attempt != 2 || len(calls) != 2 || calls[0].req.Attempt != 1 || calls[1].req.Attempt != 2 || calls[1].req.ID != o.ID {
			t.Errorf("outcome at attempt %d after %d requests, want attempt 2 after 2 (attempts 1, 2) of one id", o.Attempt, len(calls))
		}
	})

	t.Run("micro error 4xx: rejected with the text, not retried", func(t *testing.T) {
		b.sendSMTP(t, rsa("s-err4@example.org", "nowhere"), "s-err4@example.org")
		o := b.outcomes.First(t, "s-err4@example.org")
		wantDisposition(t, o, contracts.Rejected, "service")
		if want := "service gate refused the mail: error 404: no such queue"; o.Reason != want || o.Attempt != 1 || gate.count("s-err4@example.org") != 1 {
			t.Errorf("reason %q attempt %d requests %d, want %q at attempt 1 after 1", o.Reason, o.Attempt, gate.count("s-err4@example.org"), want)
		}
	})

	t.Run("micro error 5xx: retried, then accepted", func(t *testing.T) {
		b.sendSMTP(t, rsa("s-err5@example.org", "overload"), "s-err5@example.org")
		o := b.outcomes.First(t, "s-err5@example.org")
		wantDisposition(t, o, contracts.Processed, "service")
		if o.Attempt != 2 || gate.count("s-err5@example.org") != 2 {
			t.Errorf("attempt %d requests %d, want 2 and 2", o.Attempt, gate.count("s-err5@example.org"))
		}
	})

	t.Run("replies that break the contract: retried, then accepted", func(t *testing.T) {
		b.sendSMTP(t, rsa("s-bad@example.org", "garbled"), "s-bad@example.org")
		o := b.outcomes.First(t, "s-bad@example.org")
		wantDisposition(t, o, contracts.Processed, "service")
		if o.Attempt != 3 || gate.count("s-bad@example.org") != 3 {
			t.Errorf("attempt %d requests %d, want 3 and 3", o.Attempt, gate.count("s-bad@example.org"))
		}
	})

	t.Run("every way a reply can break the contract: retried; a long reason cut", func(t *testing.T) {
		for k := range broken {
			rcpt := fmt.Sprintf("s-broken-%d@example.org", k)
			b.sendSMTP(t, rsa(rcpt, "broken"), rcpt)
		}
		for k, reply := range broken {
			rcpt := fmt.Sprintf("s-broken-%d@example.org", k)
			o := b.outcomes.First(t, rcpt)
			wantDisposition(t, o, contracts.Processed, "service")
			if o.Attempt != 2 || gate.count(rcpt) != 2 {
				t.Errorf("%s: attempt %d after %d requests, want 2 after 2", reply, o.Attempt, gate.count(rcpt))
			}
			if want := "accepted by service gate: " + longReason[:contracts.ServiceMaxReason]; o.Reason != want {
				t.Errorf("reason of %d bytes, want %d", len(o.Reason), len(want))
			}
		}
	})

	t.Run("no reply within the timeout: retried, the late reply lost", func(t *testing.T) {
		b.sendSMTP(t, rsa("s-slow@example.org", "slow"), "s-slow@example.org")
		o := b.outcomes.First(t, "s-slow@example.org")
		wantDisposition(t, o, contracts.Processed, "service")
		if o.Attempt != 2 || o.Reason != "accepted by service gate: in time" || gate.count("s-slow@example.org") != 2 {
			t.Errorf("attempt %d reason %q requests %d, want attempt 2 accepted in time after 2", o.Attempt, o.Reason, gate.count("s-slow@example.org"))
		}
	})

	t.Run("nobody listens: retried, then dead-lettered with the reason", func(t *testing.T) {
		b.sendSMTP(t, rsa("s-down@example.org", "down"), "s-down@example.org")
		o := b.outcomes.First(t, "s-down@example.org")
		if o.Disposition != contracts.Dead || o.Attempt != 3 || !strings.Contains(o.Reason, "service down: no service is listening (no responders)") {
			t.Errorf("%s at attempt %d (%q), want dead at attempt 3, no responders", o.Disposition, o.Attempt, o.Reason)
		}
		systest.WaitFor(t, "the mail's dead letter", func() bool { return b.streamCount(t, "MAIL_DEAD") == 1 })
	})

	t.Run("a service no worker has: retried, dead-lettered with the reason, never asked", func(t *testing.T) {
		b.sendSMTP(t, rsa("s-unknown@example.org", "unknown"), "s-unknown@example.org")
		o := b.outcomes.First(t, "s-unknown@example.org")
		if o.Disposition != contracts.Dead || o.Attempt != 3 ||
			!strings.Contains(o.Reason, `mail.service "nowhere" is not a configured service (configured: cli, down, gate, tickets)`) {
			t.Errorf("%s at attempt %d (%q), want dead at attempt 3 naming the service", o.Disposition, o.Attempt, o.Reason)
		}
		systest.WaitFor(t, "the mail's dead letter", func() bool { return b.streamCount(t, "MAIL_DEAD") == 2 })
		if n := gate.count("s-unknown@example.org"); n != 0 {
			t.Errorf("%d requests, want none", n)
		}
	})

	t.Run("mail.service empty: retried, dead-lettered with the reason, never asked", func(t *testing.T) {
		b.sendSMTP(t, rsa("s-none@example.org", "none"), "s-none@example.org")
		o := b.outcomes.First(t, "s-none@example.org")
		if o.Disposition != contracts.Dead || o.Attempt != 3 ||
			!strings.Contains(o.Reason, "mail.handler chose the service handler but mail.service names no service (configured: cli, down, gate, tickets)") {
			t.Errorf("%s at attempt %d (%q), want dead at attempt 3 saying no service is named", o.Disposition, o.Attempt, o.Reason)
		}
		systest.WaitFor(t, "the mail's dead letter", func() bool { return b.streamCount(t, "MAIL_DEAD") == 3 })
		if n := gate.count("s-none@example.org"); n != 0 {
			t.Errorf("%d requests, want none", n)
		}
	})

	t.Run("held mail re-checked many times never asks the service; resumed, asked once", func(t *testing.T) {
		b.sendSMTP(t, rsa("s-held@example.org", "held"), "s-held@example.org")
		systest.WaitFor(t, "the mail to be held", func() bool { return b.sys.Worker.Held() == 1 })
		checks := b.sys.Worker.HeldChecks()
		systest.WaitFor(t, "50 looks at the held mail", func() bool { return b.sys.Worker.HeldChecks() >= checks+50 })
		if n := gate.count("s-held@example.org"); n != 0 || b.sys.Worker.Held() != 1 {
			t.Fatalf("%d requests while held (%d held), want none", n, b.sys.Worker.Held())
		}
		b.putRules(t, rules.FlagPause, "rcpt:^s-held@ 10 false\n")
		o := b.outcomes.First(t, "s-held@example.org")
		wantDisposition(t, o, contracts.Processed, "service")
		if n := gate.count("s-held@example.org"); n != 1 {
			t.Errorf("%d requests once resumed, want 1", n)
		}
	})

	t.Run("nats reply as the service role decides a mail with a fixed reply", func(t *testing.T) {
		c := newCLIAs(t, b, access.Service)
		type result struct {
			stdout, stderr string
			err            error
		}
		done := make(chan result, 1)
		go func() {
			stdout, stderr, err := c.try(t, "reply", "mail.service.cli", `{"decision":"reject","reason":"closed by the CLI"}`, "--count", "1")
			done <- result{stdout, stderr, err}
		}()
		b.waitListening(t, "mail.service.cli")
		b.sendSMTP(t, rsa("s-cli@example.org", "for the CLI"), "s-cli@example.org")
		o := b.outcomes.First(t, "s-cli@example.org")
		wantDisposition(t, o, contracts.Rejected, "service")
		if o.Reason != "service cli rejected the mail: closed by the CLI" {
			t.Errorf("reason %q", o.Reason)
		}
		r := <-done
		// nats reply ends with log.Fatal("Exiting") (status 1) once its
		// --count is done.
		if r.err != nil && !strings.Contains(r.stderr, "Exiting") {
			t.Fatalf("nats reply: %v\n%s", r.err, r.stderr)
		}
		if !strings.Contains(r.stdout, `"schema":"mailscope.service.v1"`) || !strings.Contains(r.stdout, `"id":"`+o.ID+`"`) {
			t.Errorf("nats reply printed %q, want the request", r.stdout)
		}
	})

	t.Run("the service role may only answer", func(t *testing.T) {
		nc, errs := b.violations(t, access.Service)
		wantRefused(t, access.Service, nc, errs, "mail.incoming")
		wantRefused(t, access.Service, nc, errs, "mail.service.gate")
		wantRefused(t, access.Service, nc, errs, "$JS.API.INFO")
		if _, err := nc.SubscribeSync("mail.outcome.>"); err != nil {
			t.Fatal(err)
		}
		wantViolation(t, access.Service, nc, errs, `subscription to "mail.outcome.>"`)
	})

	t.Run("requests counted by service and result", func(t *testing.T) {
		after := scrapeMetrics(t, srv)
		for _, c := range []struct {
			service, result string
			want            float64
		}{
			{"tickets", "accepted", 3}, {"tickets", "rejected", 1},
			{"gate", "accepted", 12}, {"gate", "retry_later", 1}, {"gate", "rejected", 1}, {"gate", "service_error", 1},
			{"gate", "bad_reply", 7}, {"gate", "timeout", 1},
			{"down", "no_responders", 3}, {"cli", "rejected", 1},
		} {
			l := labels("service", c.service, "result", c.result)
			if got := after.value("mailscope_service_requests_total", l) - before.value("mailscope_service_requests_total", l); got != c.want {
				t.Errorf("mailscope_service_requests_total{service=%q,result=%q} moved by %v, want %v", c.service, c.result, got, c.want)
			}
			if got := after.value("mailscope_service_request_duration_seconds", l) - before.value("mailscope_service_request_duration_seconds", l); got != c.want {
				t.Errorf("mailscope_service_request_duration_seconds{service=%q,result=%q} count moved by %v, want %v", c.service, c.result, got, c.want)
			}
		}
	})
}

// TestServiceRetryAfter: a service's retry with retry_after is
// redelivered after it, not after the worker's backoff: the backoff here
// is an hour, so a second request within the tests' wait can only be the
// retry_after's.
func TestServiceRetryAfter(t *testing.T) {
	b := setup(t, workers.Config{MaxAttempts: 3, BackoffBase: time.Hour, BackoffMax: time.Hour,
		Service: workers.ServiceConfig{Services: []workers.Service{{Name: "gate"}}}})
	b.putRules(t, rules.FlagHandler, serviceHandlerRules)
	b.putRules(t, rules.FlagService, "default 0 gate\n")
	gate := newTestService(t, b, "gate", "mail.service.gate", func(r micro.Request, _ string, n int, _ *testService) {
		if n == 1 {
			respondJSON(r, `{"decision":"retry","retry_after":0.2,"reason":"in maintenance"}`)
			return
		}
		respondJSON(r, `{"decision":"accept"}`)
	})
	b.sendSMTP(t, mail(t, "s-429@example.org", "busy", b.edKey, "partner.example", "ed"), "s-429@example.org")
	o := b.outcomes.First(t, "s-429@example.org")
	wantDisposition(t, o, contracts.Processed, "service")
	if o.Attempt != 2 || gate.count("s-429@example.org") != 2 || o.Reason != "accepted by service gate" {
		t.Errorf("attempt %d after %d requests (%q), want attempt 2 after 2", o.Attempt, gate.count("s-429@example.org"), o.Reason)
	}
}

// TestServiceConfigRefused: a system whose worker is given external
// services it cannot use does not start, and its error names every
// mistake at once.
func TestServiceConfigRefused(t *testing.T) {
	cfg := dev.Config{DataDir: t.TempDir(), NATSPort: -1, SMTPAddr: "127.0.0.1:0", LMTPAddr: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	cfg.Worker.HandlerTimeout = 5 * time.Second
	cfg.Worker.Service = workers.ServiceConfig{Timeout: 5 * time.Second, Services: []workers.Service{
		{Name: "crm"}, {Name: "crm", Subject: "mail.service.other"}, {Name: "bad name!"}, {Name: ""},
		{Name: "outside", Subject: "mail.incoming"}, {Name: "wild", Subject: "mail.service.*"}, {Name: "gap", Subject: "mail.service..x"},
	}}
	sys, err := dev.Start(t.Context(), cfg)
	if err == nil {
		sys.Close()
		t.Fatal("started with services it cannot use")
	}
	for _, want := range []string{
		"service timeout 5s not below the handler timeout 5s",
		"service crm: configured twice",
		`service name "bad name!": only letters, digits`,
		`service name "": want 1 to 64 bytes`,
		`service outside: subject "mail.incoming" is not under the service prefix mail.service (workers send requests on mail.service.> only)`,
		`service wild: subject "mail.service.*": want a literal subject`,
		`service gap: subject "mail.service..x": want a literal subject`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
}

// TestServiceLargeMail: a mail whose attachments, inline, would make the
// request larger than the NATS server's max payload (8 MiB here) is
// asked about with its attachments described, not sent, and decided.
func TestServiceLargeMail(t *testing.T) {
	b := setup(t, workers.Config{Service: workers.ServiceConfig{AttachmentLimit: 16 << 20, Services: []workers.Service{{Name: "gate"}}}})
	b.putRules(t, rules.FlagHandler, serviceHandlerRules)
	b.putRules(t, rules.FlagService, "default 0 gate\n")
	gate := newTestService(t, b, "gate", "mail.service.gate", func(r micro.Request, _ string, _ int, _ *testService) {
		respondJSON(r, `{"decision":"accept"}`)
	})
	attachment := bytes.Repeat([]byte{0xA5}, 13<<19) // 6.5 MiB: 8.7 MiB in base64
	var m strings.Builder
	m.WriteString("From: Alice <alice@example.com>\r\nTo: s-large@example.org\r\nSubject: large\r\nMIME-Version: 1.0\r\n")
	m.WriteString("Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nA large one.\r\n")
	m.WriteString("--b1\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"large.bin\"\r\nContent-Transfer-Encoding: base64\r\n\r\n")
	enc := base64.StdEncoding.EncodeToString(attachment)
	for len(enc) > 76 {
		m.WriteString(enc[:76] + "\r\n")
		enc = enc[76:]
	}
	m.WriteString(enc + "\r\n--b1--\r\n")
	b.sendSMTP(t, []byte(m.String()), "s-large@example.org")
	o := b.outcomes.First(t, "s-large@example.org")
	wantDisposition(t, o, contracts.Processed, "service")
	calls := gate.got("s-large@example.org")
	if len(calls) != 1 || len(calls[0].req.Attachments) != 1 {
		t.Fatalf("%d requests, want 1 with the attachment described", len(calls))
	}
	if a := calls[0].req.Attachments[0]; a.Content != nil || a.Size != len(attachment) || !strings.Contains(a.Omitted, "NATS max payload") {
		t.Errorf("attachment %+v: want described (its size), not sent, saying why", a)
	}
}
