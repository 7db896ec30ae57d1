package workers

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/provision"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/telemetry"
)

// lockedBuffer is a bytes.Buffer safe for the worker's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// records returns the JSON records logged with message msg.
func (l *lockedBuffer) records(t *testing.T, msg string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(l.b.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line not JSON: %q: %v", line, err)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// TestOutcomeLogLine: a stored outcome logs one info line with the mail's
// id, disposition, handler, attempt, trust, recipient count, duration and
// the trace id of the context's span, and none of its addresses or its
// subject; the redelivery of a mail whose outcome is stored already logs
// none.
func TestOutcomeLogLine(t *testing.T) {
	env := systest.Start(t)
	if err := provision.Run(t.Context(), env.JetStream(t, access.Provisioner), provision.Config{}); err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	w, err := New(t.Context(), Config{Name: "log-test", Logger: slog.New(telemetry.NewLogHandler(&logs, telemetry.LogJSON, nil))},
		env.Conn(t, access.Worker))
	if err != nil {
		t.Fatal(err)
	}
	tid, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
	sid, _ := trace.SpanIDFromHex("b7ad6b7169203331")
	ctx := trace.ContextWithSpanContext(t.Context(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))

	settle := func(attempt uint64) {
		t.Helper()
		e := contracts.Envelope{ID: "log-line-1", MailFrom: "alice@example.com", RcptTo: []string{"bob@example.org", "carol@example.org"},
			ReceivedAt: testDate, Protocol: "smtp"}
		msg := &fakeMsg{data: plainMail("bob@example.org", "Secret subject", "hello"), hdr: nats.Header{}, delivered: attempt, seq: 1}
		e.Encode(msg.hdr)
		d := w.newDelivery(msg)
		out := &contracts.Outcome{Schema: contracts.OutcomeSchema, ID: e.ID, Envelope: e, Disposition: contracts.Quarantined,
			Handler: "quarantine", Attempt: d.attempt, Flags: []contracts.FlagDecision{},
			Summary: &contracts.Summary{From: []string{"alice@example.com"}, To: e.RcptTo, Subject: "Secret subject",
				TextParts: []contracts.TextPart{}, Attachments: []contracts.Attachment{}},
			Auth: contracts.Auth{DKIM: []contracts.DKIMResult{}, Trust: contracts.TrustWeak}}
		if !w.settle(ctx, d, w.policy.decide(event{step: stepProcessed, attempt: d.attempt}), out) {
			t.Fatal("settle kept the mail")
		}
	}
	settle(2)
	recs := logs.records(t, "outcome")
	if len(recs) != 1 {
		t.Fatalf("%d outcome lines, want 1", len(recs))
	}
	r := recs[0]
	for k, v := range map[string]any{"level": "INFO", "id": "log-line-1", "disposition": "quarantined", "handler": "quarantine",
		"attempt": 2.0, "trust": "weak", "rcpts": 2.0, "trace_id": tid.String(), "span_id": sid.String()} {
		if r[k] != v {
			t.Errorf("%s = %v, want %v (record %v)", k, r[k], v, r)
		}
	}
	if d, ok := r["duration"].(float64); !ok || d <= 0 {
		t.Errorf("duration %v, want nanoseconds > 0", r["duration"])
	}
	logs.mu.Lock()
	all := logs.b.String()
	logs.mu.Unlock()
	for _, secret := range []string{"alice@", "bob@", "carol@", "Secret subject", "hello"} {
		if strings.Contains(all, secret) {
			t.Errorf("the log holds %q:\n%s", secret, all)
		}
	}

	settle(3) // a redelivery: the outcome is a duplicate
	if n := len(logs.records(t, "outcome")); n != 1 {
		t.Errorf("%d outcome lines after a redelivery, want still 1", n)
	}
}

// TestOutcomeLogLineCost: above info the line costs no allocation.
func TestOutcomeLogLineCost(t *testing.T) {
	l := slog.New(telemetry.NewLogHandler(io.Discard, telemetry.LogJSON, &slog.HandlerOptions{Level: slog.LevelWarn}))
	out := &contracts.Outcome{ID: "m", Disposition: contracts.Processed, Handler: "publish", Attempt: 1,
		Envelope: contracts.Envelope{RcptTo: []string{"bob@example.org"}}, Auth: contracts.Auth{Trust: contracts.TrustNone}}
	ctx := t.Context()
	if n := testing.AllocsPerRun(1000, func() { logOutcome(ctx, l, out, time.Millisecond) }); n != 0 {
		t.Errorf("%v allocations per outcome at level warn, want 0", n)
	}
}

// BenchmarkOutcomeLogLine is the line's cost at info (JSON to a discarded
// writer) and above it.
func BenchmarkOutcomeLogLine(b *testing.B) {
	out := &contracts.Outcome{ID: "e3b0c44298fc1c149afbf4c8996fb924", Disposition: contracts.Processed, Handler: "publish", Attempt: 1,
		Envelope: contracts.Envelope{RcptTo: []string{"bob@example.org"}}, Auth: contracts.Auth{Trust: contracts.TrustStrong}}
	for _, lv := range []slog.Level{slog.LevelInfo, slog.LevelWarn} {
		b.Run(lv.String(), func(b *testing.B) {
			l := slog.New(telemetry.NewLogHandler(io.Discard, telemetry.LogJSON, &slog.HandlerOptions{Level: lv}))
			ctx := b.Context()
			b.ReportAllocs()
			for b.Loop() {
				logOutcome(ctx, l, out, 1234*time.Microsecond)
			}
		})
	}
}
