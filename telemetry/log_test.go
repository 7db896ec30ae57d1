package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/trace"

	"github.com/mailscope/mailscope/telemetry"
)

// spanContext is a context holding a valid, sampled, remote span context,
// as a worker's context holds its process span's.
func spanContext(t *testing.T) (context.Context, trace.SpanContext) {
	t.Helper()
	tid, err := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	if err != nil {
		t.Fatal(err)
	}
	sid, err := trace.SpanIDFromHex("00f067aa0ba902b7")
	if err != nil {
		t.Fatal(err)
	}
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled, Remote: true})
	if !sc.IsValid() {
		t.Fatal("span context not valid")
	}
	return trace.ContextWithSpanContext(t.Context(), sc), sc
}

// TestLogHandlerJSON: a JSON line per record; the trace and span ids of
// the context's span, also through With; none without a span; nothing
// below the level.
func TestLogHandlerJSON(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(telemetry.NewLogHandler(&buf, telemetry.LogJSON, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, sc := spanContext(t)

	l.With(slog.String("id", "m1")).InfoContext(ctx, "outcome", slog.Int("attempt", 1))
	l.InfoContext(t.Context(), "no span")
	l.Info("no context")
	l.DebugContext(ctx, "below the level")

	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines, want 3:\n%s", len(lines), buf.String())
	}
	var rec []map[string]any
	for _, line := range lines {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %q: %v", line, err)
		}
		rec = append(rec, m)
	}
	if rec[0]["msg"] != "outcome" || rec[0]["level"] != "INFO" || rec[0]["id"] != "m1" || rec[0]["attempt"] != 1.0 {
		t.Errorf("first record %v", rec[0])
	}
	if rec[0][telemetry.LogKeyTraceID] != sc.TraceID().String() || rec[0][telemetry.LogKeySpanID] != sc.SpanID().String() {
		t.Errorf("first record %v, want trace_id %s span_id %s", rec[0], sc.TraceID(), sc.SpanID())
	}
	for _, r := range rec[1:] {
		if _, ok := r[telemetry.LogKeyTraceID]; ok {
			t.Errorf("record without a span has a trace id: %v", r)
		}
		if _, ok := r[telemetry.LogKeySpanID]; ok {
			t.Errorf("record without a span has a span id: %v", r)
		}
	}
}

// TestLogHandlerText: key=value lines with the ids; an invalid span
// context (zero ids) adds nothing.
func TestLogHandlerText(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(telemetry.NewLogHandler(&buf, telemetry.LogText, nil))
	ctx, sc := spanContext(t)
	l.WarnContext(ctx, "will retry")
	invalid := trace.ContextWithSpanContext(t.Context(), trace.NewSpanContext(trace.SpanContextConfig{}))
	l.WarnContext(invalid, "zero ids")

	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(lines), buf.String())
	}
	want := "level=WARN msg=\"will retry\" trace_id=" + sc.TraceID().String() + " span_id=" + sc.SpanID().String()
	if !strings.Contains(lines[0], want) || strings.HasPrefix(lines[0], "{") {
		t.Errorf("text line %q, want it to contain %q", lines[0], want)
	}
	if strings.Contains(lines[1], "trace_id") || strings.Contains(lines[1], "span_id") {
		t.Errorf("a zero span context added ids: %q", lines[1])
	}
}

// TestLogHandlerEnabled: the level is the wrapped handler's, so a
// disabled record costs no allocation.
func TestLogHandlerEnabled(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(telemetry.NewLogHandler(&buf, telemetry.LogJSON, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, _ := spanContext(t)
	if l.Enabled(ctx, slog.LevelInfo) || !l.Enabled(ctx, slog.LevelWarn) {
		t.Fatal("levels not the wrapped handler's")
	}
	allocs := testing.AllocsPerRun(100, func() {
		l.LogAttrs(ctx, slog.LevelInfo, "outcome", slog.String("id", "m1"), slog.Int("attempt", 1))
	})
	if allocs != 0 || buf.Len() != 0 {
		t.Errorf("a record below the level: %v allocations, %d bytes written", allocs, buf.Len())
	}
}

func TestParseLogFormat(t *testing.T) {
	for _, s := range []string{"json", "text"} {
		if f, err := telemetry.ParseLogFormat(s); err != nil || string(f) != s {
			t.Errorf("ParseLogFormat(%q) = %q, %v", s, f, err)
		}
	}
	for _, s := range []string{"", "JSON", "logfmt"} {
		if _, err := telemetry.ParseLogFormat(s); err == nil {
			t.Errorf("ParseLogFormat(%q) accepted", s)
		}
	}
}

// TestTraceHandlerOnce: wrapping twice adds the ids once.
func TestTraceHandlerOnce(t *testing.T) {
	var buf bytes.Buffer
	h := telemetry.TraceHandler(telemetry.NewLogHandler(&buf, telemetry.LogJSON, nil))
	ctx, _ := spanContext(t)
	slog.New(h).InfoContext(ctx, "x")
	if n := strings.Count(buf.String(), `"trace_id"`); n != 1 {
		t.Errorf("trace_id %d times: %s", n, buf.String())
	}
}
