package main

import (
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// exportedSpan is what the test's OTLP receiver keeps of a span.
type exportedSpan struct {
	service, name, trace, id, parent string
}

// TestDevExportsTraces runs the README's command, `mailscope dev --demo`,
// with OTEL_EXPORTER_OTLP_ENDPOINT pointing at an OTLP/HTTP receiver of
// the test's: every demo mail's trace arrives there, the producer's span
// the parent of the worker's, under the service name mailscope-dev.
func TestDevExportsTraces(t *testing.T) {
	var mu sync.Mutex
	var got []exportedSpan
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		var req coltrace.ExportTraceServiceRequest
		if err == nil {
			err = proto.Unmarshal(body, &req)
		}
		if err != nil || r.URL.Path != "/v1/traces" {
			http.Error(w, "not an OTLP trace export", http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for _, rs := range req.ResourceSpans {
			svc := ""
			for _, a := range rs.Resource.GetAttributes() {
				if a.Key == "service.name" {
					svc = a.Value.GetStringValue()
				}
			}
			for _, ss := range rs.ScopeSpans {
				for _, sp := range ss.Spans {
					got = append(got, exportedSpan{service: svc, name: sp.Name, trace: string(sp.TraceId), id: string(sp.SpanId), parent: string(sp.ParentSpanId)})
				}
			}
		}
		out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	defer srv.Close()

	dir := t.TempDir()
	r := ok(t, dir, []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + srv.URL},
		"dev", "--demo", "--exit-after-demo", "--nats-port", "-1", "--nats-monitor-port", "0",
		"--smtp", "127.0.0.1:0", "--lmtp", "127.0.0.1:0", "--data-dir", dir, "--nats-context=false")
	if !strings.Contains(r.stderr, "exporting traces by OTLP") {
		t.Errorf("no word of trace export in the log:\n%s", r.stderr)
	}
	// The command flushed its spans before it exited.
	mu.Lock()
	defer mu.Unlock()
	byID := map[string]exportedSpan{}
	for _, s := range got {
		byID[s.id] = s
		if s.service != "mailscope-dev" {
			t.Fatalf("span %q of service %q, want mailscope-dev", s.name, s.service)
		}
	}
	processed := map[string]bool{} // trace id (hex) of each process span
	for _, s := range got {
		if s.name != "process mail.incoming" {
			continue
		}
		p, ok := byID[s.parent]
		if !ok || p.name != "send mail.incoming" || p.trace != s.trace {
			t.Errorf("a process span's parent is %+v, want the producer's span of its trace", p)
		}
		processed[hex.EncodeToString([]byte(s.trace))] = true
	}
	// Each demo outcome line names its trace; each was exported.
	lines := 0
	for _, line := range strings.Split(r.stdout, "\n") {
		_, id, found := strings.Cut(line, " trace=")
		if !found {
			continue
		}
		lines++
		if !processed[id] {
			t.Errorf("the trace of outcome %q was not exported", line)
		}
	}
	if lines == 0 {
		t.Fatalf("no outcome line names its trace:\n%s", r.stdout)
	}
}
