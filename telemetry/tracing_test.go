package telemetry_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/mailscope/mailscope/telemetry"
)

// otlpReceiver is an OTLP/HTTP trace receiver on loopback: it decodes
// every export request and keeps the spans' names and resources.
type otlpReceiver struct {
	srv  *httptest.Server
	mu   sync.Mutex
	got  chan struct{}
	name []string
	svc  []string
}

func newOTLPReceiver(t *testing.T) *otlpReceiver {
	r := &otlpReceiver{got: make(chan struct{}, 16)}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/v1/traces" || req.Header.Get("Content-Type") != "application/x-protobuf" {
			http.Error(w, "not an OTLP/HTTP trace export", http.StatusBadRequest)
			return
		}
		body, err := io.ReadAll(req.Body)
		var msg coltrace.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(body, &msg)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		for _, rs := range msg.ResourceSpans {
			for _, a := range rs.Resource.GetAttributes() {
				if a.Key == "service.name" {
					r.svc = append(r.svc, a.Value.GetStringValue())
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					r.name = append(r.name, sp.Name)
				}
			}
		}
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		w.Write(out)
		r.got <- struct{}{}
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// TestTracingExportsByOTLPWhenAsked: with OTEL_EXPORTER_OTLP_ENDPOINT
// set, StartTracing exports sampled spans over OTLP/HTTP to it, with the
// service name given (and OTEL_SERVICE_NAME winning over it).
func TestTracingExportsByOTLPWhenAsked(t *testing.T) {
	r := newOTLPReceiver(t)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", r.srv.URL)
	t.Setenv("OTEL_SERVICE_NAME", "worker-eu-1")
	tr, err := telemetry.StartTracing(t.Context(), "mailscope-worker")
	if err != nil {
		t.Fatal(err)
	}
	if !tr.Exporting || tr.Protocol != "http/protobuf" {
		t.Fatalf("exporting %v protocol %q, want true, http/protobuf", tr.Exporting, tr.Protocol)
	}
	_, span := otel.Tracer("test").Start(t.Context(), "process mail.incoming")
	if !span.SpanContext().IsSampled() {
		t.Errorf("span not sampled while exporting")
	}
	span.End()
	if err := tr.Shutdown(t.Context()); err != nil { // flushes
		t.Fatal(err)
	}
	select {
	case <-r.got:
	default:
		t.Fatal("no export request reached the receiver")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if strings.Join(r.name, ",") != "process mail.incoming" || strings.Join(r.svc, ",") != "worker-eu-1" {
		t.Errorf("exported spans %v of services %v, want [process mail.incoming] of [worker-eu-1]", r.name, r.svc)
	}
}

// TestTracingWithoutExport: with no OTEL_* variable asking for export,
// spans are made (their trace ids join logs and outcomes) but never
// sampled, so nothing records or exports them.
func TestTracingWithoutExport(t *testing.T) {
	for _, env := range [][2]string{{"", ""}, {"OTEL_TRACES_EXPORTER", "none"}, {"OTEL_SDK_DISABLED", "true"}} {
		t.Run(env[0]+"="+env[1], func(t *testing.T) {
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "")
			t.Setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "")
			if env[0] != "" {
				t.Setenv(env[0], env[1])
				if env[0] == "OTEL_SDK_DISABLED" {
					t.Setenv("OTEL_TRACES_EXPORTER", "otlp")
				}
			}
			tr, err := telemetry.StartTracing(t.Context(), "mailscope-worker")
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Shutdown(t.Context())
			if tr.Exporting {
				t.Fatal("exporting without being asked")
			}
			_, span := otel.Tracer("test").Start(t.Context(), "x")
			defer span.End()
			sc := span.SpanContext()
			if !sc.HasTraceID() || sc.IsSampled() || span.IsRecording() {
				t.Errorf("span context %v recording %v, want a trace id, not sampled, not recording", sc, span.IsRecording())
			}
			if trace.SpanFromContext(t.Context()).SpanContext().IsValid() {
				t.Error("test context has a span")
			}
		})
	}
}

// TestTracingRefusesWhatItCannotDo: an exporter or protocol it does not
// have is an error at start, not a silent lack of traces.
func TestTracingRefusesWhatItCannotDo(t *testing.T) {
	for _, env := range [][2]string{{"OTEL_TRACES_EXPORTER", "zipkin"}, {"OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"}} {
		t.Run(env[1], func(t *testing.T) {
			t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:1")
			t.Setenv(env[0], env[1])
			if _, err := telemetry.StartTracing(t.Context(), "mailscope-worker"); err == nil || !strings.Contains(err.Error(), env[1]) {
				t.Errorf("StartTracing with %s=%s: %v, want an error naming %q", env[0], env[1], err, env[1])
			}
		})
	}
}

// grpcReceiver is an OTLP/gRPC trace receiver: it passes each exported
// span's name to got.
type grpcReceiver struct {
	coltrace.UnimplementedTraceServiceServer
	got chan string
}

func (g *grpcReceiver) Export(_ context.Context, req *coltrace.ExportTraceServiceRequest) (*coltrace.ExportTraceServiceResponse, error) {
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, sp := range ss.Spans {
				g.got <- sp.Name
			}
		}
	}
	return &coltrace.ExportTraceServiceResponse{}, nil
}

// TestTracingExportsByOTLPgRPC: OTEL_EXPORTER_OTLP_PROTOCOL=grpc exports
// over gRPC.
func TestTracingExportsByOTLPgRPC(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	g := &grpcReceiver{got: make(chan string, 16)}
	coltrace.RegisterTraceServiceServer(srv, g)
	go srv.Serve(ln)
	t.Cleanup(srv.Stop)
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+ln.Addr().String())
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
	tr, err := telemetry.StartTracing(t.Context(), "mailscope-producer")
	if err != nil {
		t.Fatal(err)
	}
	if tr.Protocol != "grpc" {
		t.Fatalf("protocol %q, want grpc", tr.Protocol)
	}
	_, span := otel.Tracer("test").Start(t.Context(), "send mail.incoming")
	span.End()
	if err := tr.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	select {
	case name := <-g.got:
		if name != "send mail.incoming" {
			t.Errorf("exported %q, want send mail.incoming", name)
		}
	default:
		t.Fatal("no span reached the gRPC receiver")
	}
}
