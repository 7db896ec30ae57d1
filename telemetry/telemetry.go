// Package telemetry serves what Kubernetes and Prometheus ask of a
// mailscope process: OpenTelemetry metrics in the Prometheus format on
// /metrics, liveness on /healthz and readiness on /readyz; and, when asked
// for ([WithPprof]), the runtime profiles of net/http/pprof.
//
// Packages record metrics through the global OpenTelemetry MeterProvider
// (otel.Meter); Start installs a provider that exports them. Without
// Start the instruments are no-ops.
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
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

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
func Start(addr string, ready func() bool, opts ...Option) (*Server, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	reg := prometheus.NewRegistry()
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("telemetry: %w", err)
	}
	provider := sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp))
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

// Addr returns the bound address.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops serving and flushes the provider.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return errors.Join(s.srv.Shutdown(ctx), s.provider.Shutdown(ctx))
}
