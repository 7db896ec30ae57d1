// Package telemetry serves what Kubernetes and Prometheus ask of a
// mailscope process: OpenTelemetry metrics in the Prometheus format on
// /metrics, liveness on /healthz and readiness on /readyz; and, when asked
// for ([WithPprof]), the runtime profiles of net/http/pprof.
//
// Packages record metrics through the global OpenTelemetry MeterProvider
// (otel.Meter); Start installs a provider that exports them. Without
// Start the instruments are no-ops.
//
// Every histogram in seconds gets the buckets of [DurationBuckets]. Next
// to the instruments, /metrics has the Go runtime (go_*) and process
// (process_*) collectors, mailscope_build_info and target_info, whose
// labels are the process's OpenTelemetry resource (service.name,
// service.version and what OTEL_RESOURCE_ATTRIBUTES adds).
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/resource"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/mailscope/mailscope/version"
)

// DurationBuckets are the bucket boundaries, in seconds, of every
// histogram whose unit is "s": 1 ms to 10 s, about three per decade.
var DurationBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// ServiceName returns the default service.name of a mailscope role:
// "mailscope-" followed by the role ("mailscope-worker").
func ServiceName(role string) string { return "mailscope-" + role }

// Server is a running telemetry endpoint.
type Server struct {
	srv      *http.Server
	ln       net.Listener
	provider *sdkmetric.MeterProvider
}

// Option changes what [Start] serves.
type Option func(*options)

type options struct {
	pprof bool
}

// WithPprof makes [Start] serve the net/http/pprof handlers under
// /debug/pprof/ (the index, cmdline, profile, symbol, trace and every
// named profile such as heap, goroutine and allocs). Without it, the
// default, /debug/pprof/ is 404. Profiles reveal the program's internals
// and a CPU profile or trace costs CPU while it runs: serve them only on
// an address that is not reachable from outside the cluster.
func WithPprof() Option { return func(o *options) { o.pprof = true } }

// Start installs the global MeterProvider and serves /metrics, /healthz
// (always 200 while the process runs) and /readyz (200 when ready()
// reports true, 503 otherwise; ready may be nil for always ready) on addr,
// and /debug/pprof/ with [WithPprof] (default off).
//
// service is the default service.name of the resource (see
// [ServiceName]); OTEL_SERVICE_NAME replaces it and
// OTEL_RESOURCE_ATTRIBUTES adds attributes, as the OpenTelemetry SDK
// reads them. service.version is [version.Version].
func Start(addr, service string, ready func() bool, opts ...Option) (*Server, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	res, err := serviceResource(service)
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	if err := registerCollectors(reg); err != nil {
		return nil, err
	}
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp), sdkmetric.WithResource(res),
		sdkmetric.WithView(durationView))
	otel.SetMeterProvider(provider)

	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if ready != nil && !ready() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ready")
	})
	if o.pprof {
		// Mounted on this mux only: the package's registration on
		// http.DefaultServeMux is not served anywhere.
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("telemetry: listen %s: %w", addr, err)
	}
	s := &Server{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, ln: ln, provider: provider}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			otel.Handle(err)
		}
	}()
	return s, nil
}

// durationView gives every histogram in seconds [DurationBuckets] (the
// SDK's default buckets, 0 to 10000, are meant for milliseconds).
var durationView = sdkmetric.NewView(
	sdkmetric.Instrument{Kind: sdkmetric.InstrumentKindHistogram, Unit: "s"},
	sdkmetric.Stream{Aggregation: sdkmetric.AggregationExplicitBucketHistogram{Boundaries: DurationBuckets}},
)

// serviceResource is the process's resource: the SDK's defaults, then
// service.name and service.version, then what the OTEL_* variables say.
func serviceResource(service string) (*resource.Resource, error) {
	res, err := resource.New(context.Background(),
		resource.WithAttributes(semconv.ServiceName(service), semconv.ServiceVersion(version.Version)),
		resource.WithFromEnv(), resource.WithTelemetrySDK())
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	res, err = resource.Merge(resource.Default(), res)
	if err != nil {
		return nil, fmt.Errorf("telemetry: resource: %w", err)
	}
	return res, nil
}

// registerCollectors adds the Go runtime and process collectors and the
// build info to reg.
func registerCollectors(reg *prometheus.Registry) error {
	for _, c := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		buildInfo(),
	} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("telemetry: %w", err)
		}
	}
	return nil
}

// Addr returns the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops serving and flushes the provider.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(s.srv.Shutdown(ctx), s.provider.Shutdown(ctx))
}
