package telemetry

import (
	"context"
	"fmt"
	"os"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
)

// Tracing is the process's installed TracerProvider; Shutdown flushes
// and stops it.
type Tracing struct {
	provider *sdktrace.TracerProvider
	// Exporting is true when spans are exported (an OTLP exporter is
	// configured); false when they are only made for their ids.
	Exporting bool
	// Protocol is the OTLP protocol in use ("grpc" or "http/protobuf"),
	// empty when not exporting.
	Protocol string
}

// StartTracing installs the global TracerProvider and the W3C trace
// context propagator, configured by the standard OpenTelemetry
// environment variables:
//
//   - OTEL_TRACES_EXPORTER: "otlp" exports, "none" does not; unset
//     exports when OTEL_EXPORTER_OTLP_ENDPOINT or
//     OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set. Any other value
//     ("console", "zipkin", a list) is an error.
//   - OTEL_EXPORTER_OTLP_TRACES_PROTOCOL, else OTEL_EXPORTER_OTLP_PROTOCOL:
//     "http/protobuf" (the default) or "grpc"; "http/json" is an error.
//   - OTEL_SDK_DISABLED=true: nothing is exported.
//   - The endpoint, headers, TLS, timeout and compression variables
//     (OTEL_EXPORTER_OTLP_*), the batch span processor's OTEL_BSP_*, the
//     span limits OTEL_SPAN_*, the sampler OTEL_TRACES_SAMPLER and
//     OTEL_TRACES_SAMPLER_ARG (default parentbased_always_on) and the
//     resource's OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES are read
//     by the OpenTelemetry SDK itself, as its documentation says.
//
// service is the default service.name (OTEL_SERVICE_NAME wins; see
// ServiceName); service.version is version.Version, as for the metrics.
//
// When nothing is exported, spans are still made, never sampled: they
// cost an id and an allocation, no goroutine and no export, and their
// trace ids still join a mail's log lines and outcome to the trace its
// producer started. When exporting, one batch span processor (one
// goroutine for the process) sends the sampled spans.
func StartTracing(ctx context.Context, service string) (*Tracing, error) {
	otel.SetTextMapPropagator(propagation.TraceContext{})
	res, err := serviceResource(service)
	if err != nil {
		return nil, err
	}
	t := &Tracing{}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	exporting, protocol, err := tracesExport()
	if err != nil {
		return nil, err
	}
	if exporting {
		var exp sdktrace.SpanExporter
		switch protocol {
		case "grpc":
			exp, err = otlptracegrpc.New(ctx)
		default:
			exp, err = otlptracehttp.New(ctx)
		}
		if err != nil {
			return nil, fmt.Errorf("telemetry: OTLP trace exporter (%s): %w", protocol, err)
		}
		opts = append(opts, sdktrace.WithBatcher(exp))
		t.Exporting, t.Protocol = true, protocol
	} else {
		opts = append(opts, sdktrace.WithSampler(sdktrace.NeverSample()))
	}
	t.provider = sdktrace.NewTracerProvider(opts...)
	otel.SetTracerProvider(t.provider)
	return t, nil
}

// Shutdown exports the spans still buffered and stops the provider.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.provider == nil {
		return nil
	}
	return t.provider.Shutdown(ctx)
}

// tracesExport reads whether and how spans are exported from the
// environment (see StartTracing).
func tracesExport() (exporting bool, protocol string, err error) {
	if strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED")), "true") {
		return false, "", nil
	}
	switch e := strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER")); e {
	case "otlp":
		exporting = true
	case "none":
		return false, "", nil
	case "":
		exporting = os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	default:
		return false, "", fmt.Errorf("telemetry: OTEL_TRACES_EXPORTER=%q: only otlp and none are supported", e)
	}
	if !exporting {
		return false, "", nil
	}
	protocol = os.Getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if protocol == "" {
		protocol = os.Getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch protocol {
	case "", "http/protobuf":
		return true, "http/protobuf", nil
	case "grpc":
		return true, "grpc", nil
	default:
		return false, "", fmt.Errorf("telemetry: OTLP protocol %q: only http/protobuf and grpc are supported", protocol)
	}
}
