package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"go.opentelemetry.io/otel/trace"
)

// LogFormat is how a process writes its log: [LogJSON] or [LogText].
type LogFormat string

// Log formats.
const (
	// LogJSON is one JSON object per line (log/slog's JSONHandler): the
	// default of every command but dev, what a log collector parses.
	LogJSON LogFormat = "json"
	// LogText is slog's key=value text (TextHandler), for a terminal: the
	// default of dev.
	LogText LogFormat = "text"
)

// ParseLogFormat returns the format named s, "json" or "text".
func ParseLogFormat(s string) (LogFormat, error) {
	switch f := LogFormat(s); f {
	case LogJSON, LogText:
		return f, nil
	}
	return "", fmt.Errorf("log format %q: want json or text", s)
}

// Trace and span ids in a log record, named as the OpenTelemetry log data
// model names them.
const (
	LogKeyTraceID = "trace_id"
	LogKeySpanID  = "span_id"
)

// NewLogHandler returns a handler writing records of at least opts.Level
// (default info) to w in format f, each with [LogKeyTraceID] and
// [LogKeySpanID] when it is logged with a context whose span context is
// valid (Logger.InfoContext and the like; see [TraceHandler]).
func NewLogHandler(w io.Writer, f LogFormat, opts *slog.HandlerOptions) slog.Handler {
	if f == LogText {
		return TraceHandler(slog.NewTextHandler(w, opts))
	}
	return TraceHandler(slog.NewJSONHandler(w, opts))
}

// TraceHandler wraps h so that a record logged with a context holding a
// valid span context (trace.SpanContextFromContext) gets the trace id and
// span id, in hex, as the attributes trace_id and span_id. A record
// without one is passed on unchanged, at no cost. Inside a group
// (Logger.WithGroup) the ids are in the group, as every attribute is.
func TraceHandler(h slog.Handler) slog.Handler {
	if t, ok := h.(traceHandler); ok {
		return t
	}
	return traceHandler{h}
}

type traceHandler struct{ h slog.Handler }

func (t traceHandler) Enabled(ctx context.Context, l slog.Level) bool { return t.h.Enabled(ctx, l) }

func (t traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		// r is this handler's copy, which the logger does not use again.
		r.AddAttrs(slog.String(LogKeyTraceID, sc.TraceID().String()), slog.String(LogKeySpanID, sc.SpanID().String()))
	}
	return t.h.Handle(ctx, r)
}

func (t traceHandler) WithAttrs(as []slog.Attr) slog.Handler { return traceHandler{t.h.WithAttrs(as)} }

func (t traceHandler) WithGroup(name string) slog.Handler { return traceHandler{t.h.WithGroup(name)} }
