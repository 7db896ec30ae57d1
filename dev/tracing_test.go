package dev_test

import (
	"fmt"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/dev"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/workers"
)

// spans is what a test's span recorder saw of one trace.
type spans []sdktrace.ReadOnlySpan

// trace returns the ended spans of trace id.
func traceOf(rec *tracetest.SpanRecorder, id string) spans {
	var s spans
	for _, sp := range rec.Ended() {
		if sp.SpanContext().TraceID().String() == id {
			s = append(s, sp)
		}
	}
	return s
}

// named returns the spans called name.
func (s spans) named(name string) spans {
	var out spans
	for _, sp := range s {
		if sp.Name() == name {
			out = append(out, sp)
		}
	}
	return out
}

// one returns the only span called name, failing the test otherwise.
func (s spans) one(t *testing.T, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	n := s.named(name)
	if len(n) != 1 {
		t.Fatalf("%d spans named %q in the trace, want 1; the trace has %s", len(n), name, s)
	}
	return n[0]
}

// childrenOf returns the names of the spans whose parent is p.
func (s spans) childrenOf(p sdktrace.ReadOnlySpan) []string {
	var names []string
	for _, sp := range s {
		if sp.Parent().SpanID() == p.SpanContext().SpanID() {
			names = append(names, sp.Name())
		}
	}
	return names
}

func (s spans) String() string {
	names := make([]string, len(s))
	for i, sp := range s {
		names[i] = sp.Name()
	}
	return "[" + strings.Join(names, ", ") + "]"
}

// attr returns the value of attribute key of sp, failing the test when
// sp does not have it.
func attr(t *testing.T, sp sdktrace.ReadOnlySpan, key string) attribute.Value {
	t.Helper()
	for _, kv := range sp.Attributes() {
		if string(kv.Key) == key {
			return kv.Value
		}
	}
	t.Fatalf("span %q has no attribute %s (it has %v)", sp.Name(), key, sp.Attributes())
	return attribute.Value{}
}

func wantAttr(t *testing.T, sp sdktrace.ReadOnlySpan, key, want string) {
	t.Helper()
	if got := attr(t, sp, key).String(); got != want {
		t.Errorf("span %q: %s = %q, want %q", sp.Name(), key, got, want)
	}
}

func wantChildren(t *testing.T, s spans, parent sdktrace.ReadOnlySpan, want ...string) {
	t.Helper()
	got := s.childrenOf(parent)
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("children of %q: %v, want %v", parent.Name(), got, want)
	}
}

// TestTraceFromProducerToOutcome sends mail over SMTP through the real
// wiring, rules present, with a span recorder as the tracer provider of
// the producer and the worker, and follows each mail's trace: one
// connected trace from the producer's span to the outcome, with the stage
// spans, their attributes, a DNS span only for a lookup that missed the
// cache, and the trace id in the outcome and in its message's
// traceparent.
func TestTraceFromProducerToOutcome(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(t.Context()) })
	var cfg dev.Config
	cfg.Worker = workers.Config{TracerProvider: tp}
	cfg.Producer.TracerProvider = tp
	b := setupDev(t, cfg)
	b.putRules(t, rules.FlagHandler, "rcpt:^traced@ 10 quarantine\ndefault 0 publish\n")

	// ended waits for the trace of outcome o to hold n ended spans,
	// the process span among them (it ends last, after the settle).
	ended := func(t *testing.T, o contracts.Outcome, n int) spans {
		t.Helper()
		var s spans
		systest.WaitFor(t, fmt.Sprintf("%d ended spans of trace %s", n, o.TraceID), func() bool {
			s = traceOf(rec, o.TraceID)
			return len(s) >= n && len(s.named("process mail.incoming")) == 1
		})
		return s
	}

	t.Run("a signed mail: producer span, process span, stages, one DNS lookup", func(t *testing.T) {
		b.sendSMTP(t, mail(t, "traced@example.org", "traced", b.rsaKey, "example.com", "s1"), "traced@example.org")
		o := b.outcomes.First(t, "traced@example.org")
		wantDisposition(t, o, contracts.Quarantined, "quarantine")
		if len(o.TraceID) != 32 || strings.Trim(o.TraceID, "0123456789abcdef") != "" {
			t.Fatalf("outcome trace_id %q, want 32 hex digits", o.TraceID)
		}
		// send, process, parse, verify, dns TXT (key), dns TXT (DMARC),
		// flags, handler, settle, send mail.outcome.quarantined.
		s := ended(t, o, 10)
		send := s.one(t, "send mail.incoming")
		if send.SpanKind() != trace.SpanKindProducer || send.Parent().IsValid() {
			t.Errorf("producer span kind %v parent %v, want a producer span at the root", send.SpanKind(), send.Parent())
		}
		wantAttr(t, send, "messaging.system", "nats")
		wantAttr(t, send, "messaging.operation.type", "send")
		wantAttr(t, send, "messaging.destination.name", "mail.incoming")
		wantAttr(t, send, "messaging.message.id", o.ID)
		wantAttr(t, send, "mailscope.protocol", "smtp")

		proc := s.one(t, "process mail.incoming")
		if proc.SpanKind() != trace.SpanKindConsumer || proc.Parent().SpanID() != send.SpanContext().SpanID() || !proc.Parent().IsRemote() {
			t.Errorf("process span kind %v parent %v, want a consumer span, child of the producer's (remote)", proc.SpanKind(), proc.Parent())
		}
		wantAttr(t, proc, "messaging.system", "nats")
		wantAttr(t, proc, "messaging.operation.type", "process")
		wantAttr(t, proc, "messaging.destination.name", "mail.incoming")
		wantAttr(t, proc, "messaging.consumer.group.name", "workers")
		wantAttr(t, proc, "messaging.message.id", o.ID)
		wantAttr(t, proc, "mailscope.attempt", "1")
		wantAttr(t, proc, "mailscope.action", "store")
		wantAttr(t, proc, "mailscope.disposition", "quarantined")
		wantChildren(t, s, proc, "parse", "verify", "flags", "handler", "settle")

		verify := s.one(t, "verify")
		wantChildren(t, s, verify, "dns TXT", "dns TXT")
		results := map[string]string{}
		for _, dns := range s.named("dns TXT") {
			if dns.SpanKind() != trace.SpanKindClient {
				t.Errorf("dns span kind %v, want client", dns.SpanKind())
			}
			results[attr(t, dns, "dns.question.name").String()] = attr(t, dns, "mailscope.dns.result").String()
		}
		// The key is served; example.com publishes no DMARC record.
		if want := map[string]string{"s1._domainkey.example.com.": "found", "_dmarc.example.com.": "not_found"}; fmt.Sprint(results) != fmt.Sprint(want) {
			t.Errorf("DNS lookups %v, want %v", results, want)
		}
		wantAttr(t, verify, "mailscope.dkim.pass_domains", "1")
		wantAttr(t, s.one(t, "handler"), "mailscope.handler", "quarantine")
		wantAttr(t, s.one(t, "flags"), "mailscope.handler", "quarantine")

		settle := s.one(t, "settle")
		wantChildren(t, s, settle, "send mail.outcome.quarantined")
		pub := s.one(t, "send mail.outcome.quarantined")
		wantAttr(t, pub, "messaging.destination.name", "mail.outcome.quarantined")
		for _, sp := range s {
			if sp.Status().Code != 0 {
				t.Errorf("span %q has status %v %q on a mail that went well", sp.Name(), sp.Status().Code, sp.Status().Description)
			}
		}

		// The outcome's own message carries the trace onwards.
		st, err := b.sys.JS.Stream(t.Context(), "MAIL_OUTCOMES")
		if err != nil {
			t.Fatal(err)
		}
		m, err := st.GetLastMsgForSubject(t.Context(), "mail.outcome.quarantined")
		if err != nil {
			t.Fatal(err)
		}
		want := "00-" + o.TraceID + "-" + pub.SpanContext().SpanID().String() + "-01"
		if got := m.Header.Get(contracts.HeaderTraceParent); got != want {
			t.Errorf("outcome message traceparent %q, want %q", got, want)
		}
	})

	t.Run("a second mail with the same key: no DNS span (the cache answered)", func(t *testing.T) {
		b.sendSMTP(t, mail(t, "cached@example.org", "cached", b.rsaKey, "example.com", "s1"), "cached@example.org")
		o := b.outcomes.First(t, "cached@example.org")
		wantDisposition(t, o, contracts.Processed, "publish")
		s := ended(t, o, 8)
		if n := len(s.named("dns TXT")); n != 0 {
			t.Errorf("%d DNS spans for a key in the cache, want 0", n)
		}
		wantChildren(t, s, s.one(t, "verify"))
		if first := traceOf(rec, b.outcomes.First(t, "traced@example.org").TraceID); len(first) == 0 || o.TraceID == first[0].SpanContext().TraceID().String() {
			t.Errorf("the second mail shares the first's trace %s", o.TraceID)
		}
	})

	t.Run("malformed mail: the failure's class on the process span, the dead letter in the trace", func(t *testing.T) {
		b.sendSMTP(t, []byte("this line is no header field\r\n\r\nbody\r\n"), "broken@example.org")
		o := b.outcomes.First(t, "broken@example.org")
		if o.Disposition != contracts.Dead || o.TraceID == "" {
			t.Fatalf("disposition %s trace_id %q, want dead with a trace id", o.Disposition, o.TraceID)
		}
		// send, process, parse, settle, send mail.outcome.dead, send
		// mail.dead.
		s := ended(t, o, 6)
		proc := s.one(t, "process mail.incoming")
		wantAttr(t, proc, "error.type", "malformed")
		wantAttr(t, proc, "mailscope.action", "dead")
		if proc.Status().Code.String() != "Error" {
			t.Errorf("process span status %v, want Error", proc.Status())
		}
		wantAttr(t, s.one(t, "parse"), "error.type", "malformed")
		wantChildren(t, s, proc, "parse", "settle")
		wantChildren(t, s, s.one(t, "settle"), "send mail.outcome.dead", "send mail.dead")
		st, err := b.sys.JS.Stream(t.Context(), "MAIL_DEAD")
		if err != nil {
			t.Fatal(err)
		}
		m, err := st.GetLastMsgForSubject(t.Context(), "mail.dead")
		if err != nil {
			t.Fatal(err)
		}
		if got := m.Header.Get(contracts.HeaderTraceParent); !strings.Contains(got, o.TraceID) {
			t.Errorf("dead letter traceparent %q, want trace %s", got, o.TraceID)
		}
	})
}
