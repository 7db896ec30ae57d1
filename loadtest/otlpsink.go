package loadtest

import (
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// OTLPSink is an OTLP/HTTP trace receiver on loopback that decodes and
// counts the spans exported to it and keeps nothing: the far end of the
// system's trace export when the load test measures its cost
// (mailscope loadtest --export-traces). Its own CPU is the load test
// process's, not the system's.
type OTLPSink struct {
	srv      *http.Server
	ln       net.Listener
	spans    atomic.Int64
	requests atomic.Int64
	refused  atomic.Int64
}

// StartOTLPSink listens on addr ("127.0.0.1:0" for any free port).
func StartOTLPSink(addr string) (*OTLPSink, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("loadtest: OTLP sink: %w", err)
	}
	s := &OTLPSink{ln: ln}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.export), ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln)
	return s, nil
}

// URL is the sink's base URL, the value of OTEL_EXPORTER_OTLP_ENDPOINT.
func (s *OTLPSink) URL() string { return "http://" + s.ln.Addr().String() }

// Spans returns the spans received so far.
func (s *OTLPSink) Spans() int64 { return s.spans.Load() }

// Requests returns the export requests received so far, and how many of
// them did not decode.
func (s *OTLPSink) Requests() (received, refused int64) { return s.requests.Load(), s.refused.Load() }

// Close stops the sink.
func (s *OTLPSink) Close() error { return s.srv.Close() }

func (s *OTLPSink) export(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	n, err := countSpans(r)
	if err != nil {
		s.refused.Add(1)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	s.spans.Add(n)
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.Write(out)
}

// countSpans decodes one OTLP/HTTP protobuf export request.
func countSpans(r *http.Request) (int64, error) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
		return 0, errors.New("not an OTLP trace export: POST /v1/traces expected")
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return 0, err
		}
		body = zr
	}
	data, err := io.ReadAll(io.LimitReader(body, 64<<20))
	if err != nil {
		return 0, err
	}
	var req coltrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(data, &req); err != nil {
		return 0, err
	}
	var n int64
	for _, rs := range req.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			n += int64(len(ss.Spans))
		}
	}
	return n, nil
}
