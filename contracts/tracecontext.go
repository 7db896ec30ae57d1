package contracts

import (
	"context"
	"strings"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
)

// HeaderTraceState carries W3C trace state beside [HeaderTraceParent].
const HeaderTraceState = "tracestate"

// TraceCarrier adapts a nats.Header to OpenTelemetry's
// propagation.TextMapCarrier. NATS header names are case-sensitive: the
// carrier keeps the lower-case names the W3C propagator uses
// ("traceparent", "tracestate") as they are, and Get finds them written
// as any client wrote them ("Traceparent" too).
type TraceCarrier nats.Header

// Get returns the first value of key, matched exactly, else without
// regard to case.
func (c TraceCarrier) Get(key string) string {
	if v := c[key]; len(v) > 0 {
		return v[0]
	}
	for k, v := range c {
		if len(v) > 0 && strings.EqualFold(k, key) {
			return v[0]
		}
	}
	return ""
}

// Set replaces the values of key.
func (c TraceCarrier) Set(key, value string) { c[key] = []string{value} }

// Keys lists the header names.
func (c TraceCarrier) Keys() []string {
	ks := make([]string, 0, len(c))
	for k := range c {
		ks = append(ks, k)
	}
	return ks
}

// traceContext is the W3C trace context propagator; mailscope always
// speaks it on NATS, whatever the process's global propagator is.
var traceContext = propagation.TraceContext{}

// InjectTrace writes the trace context of ctx into h (traceparent, and
// tracestate when it has one). Without a valid span context in ctx it
// writes nothing.
func InjectTrace(ctx context.Context, h nats.Header) {
	traceContext.Inject(ctx, TraceCarrier(h))
}

// ExtractTrace returns ctx with the remote span context read from h's
// trace context headers; ctx unchanged when h has none or they do not
// parse.
func ExtractTrace(ctx context.Context, h nats.Header) context.Context {
	if h == nil {
		return ctx
	}
	return traceContext.Extract(ctx, TraceCarrier(h))
}
