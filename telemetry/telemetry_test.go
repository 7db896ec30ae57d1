package telemetry_test

import (
	"io"
	"log/slog"
	"math"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"

	"github.com/mailscope/mailscope/dev"
	"github.com/mailscope/mailscope/telemetry"
	"github.com/mailscope/mailscope/testkit"
	"github.com/mailscope/mailscope/version"
)

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestMetricsAndProbes runs the whole system with the telemetry endpoint
// and checks that probes follow readiness and that a mail's trip shows in
// the producer's and the worker's metrics.
func TestMetricsAndProbes(t *testing.T) {
	var ready atomic.Bool
	srv, err := telemetry.Start("127.0.0.1:0", "mailscope-test", ready.Load)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	base := "http://" + srv.Addr()

	if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
		t.Errorf("/healthz %d", code)
	}
	if code, _ := get(t, base+"/readyz"); code != http.StatusServiceUnavailable {
		t.Errorf("/readyz %d before ready, want 503", code)
	}
	ready.Store(true)
	if code, _ := get(t, base+"/readyz"); code != http.StatusOK {
		t.Errorf("/readyz %d when ready, want 200", code)
	}

	sys, err := dev.Start(t.Context(), dev.Config{
		DataDir: t.TempDir(), NATSPort: -1, SMTPAddr: "127.0.0.1:0", LMTPAddr: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sys.Close)
	raw := testkit.SampleMail("a@example.com", "b@example.org", "metrics", "hi\r\n", time.Now(), "m1@example.com")
	if err := dev.SendSMTP(sys.SMTPAddr, "a@example.com", []string{"b@example.org"}, raw); err != nil {
		t.Fatal(err)
	}
	want := []string{
		`mailscope_producer_mails_total{otel_scope_name="github.com/mailscope/mailscope/producer",otel_scope_schema_url="",otel_scope_version="",protocol="smtp",result="stored"} 1`,
		`mailscope_mail_outcomes_total{disposition="processed"`,
		`mailscope_worker_ready{`,
		`mailscope_rules_refused_keys{`,
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(30 * time.Second)
	for {
		_, body := get(t, base+"/metrics")
		missing := ""
		for _, w := range want {
			if !strings.Contains(body, w) {
				missing = w
				break
			}
		}
		if missing == "" {
			return
		}
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("/metrics never showed %s:\n%s", missing, body)
		}
	}
}

// scrape reads /metrics of srv and parses the exposition.
func scrape(t *testing.T, srv *telemetry.Server) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := get(t, "http://"+srv.Addr()+"/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics %d", code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v\n%s", err, body)
	}
	return fams
}

// label returns the value of label name of m, "" when absent.
func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// TestExposition: a histogram in seconds gets the agreed buckets, and
// /metrics has the Go runtime and process collectors, the build info and
// the resource (service.name by default the one Start is given,
// OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES as the SDK reads them).
func TestExposition(t *testing.T) {
	for _, tc := range []struct {
		name, envName, envAttrs string
		wantService             string
	}{
		{name: "default", wantService: "mailscope-test"},
		{name: "OTEL_SERVICE_NAME", envName: "mail-in", envAttrs: "deployment.environment.name=staging", wantService: "mail-in"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("OTEL_SERVICE_NAME", tc.envName)
			t.Setenv("OTEL_RESOURCE_ATTRIBUTES", tc.envAttrs)
			srv, err := telemetry.Start("127.0.0.1:0", "mailscope-test", nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Close() })
			h, err := otel.Meter("telemetry_test").Float64Histogram("test.wait.duration", metric.WithUnit("s"))
			if err != nil {
				t.Fatal(err)
			}
			h.Record(t.Context(), 0.003)
			h.Record(t.Context(), 7)
			fams := scrape(t, srv)

			hf := fams["test_wait_duration_seconds"]
			if hf == nil || len(hf.GetMetric()) != 1 {
				t.Fatalf("histogram test_wait_duration_seconds: %v", hf)
			}
			hist := hf.GetMetric()[0].GetHistogram()
			var bounds []float64
			for _, b := range hist.GetBucket() {
				if !math.IsInf(b.GetUpperBound(), 1) {
					bounds = append(bounds, b.GetUpperBound())
				}
			}
			if !slices.Equal(bounds, telemetry.DurationBuckets) {
				t.Errorf("buckets %v, want %v", bounds, telemetry.DurationBuckets)
			}
			// 3 ms is in le=0.005 and above, 7 s in le=10 only.
			for _, b := range hist.GetBucket() {
				want := uint64(0)
				if b.GetUpperBound() >= 0.005 {
					want++
				}
				if b.GetUpperBound() >= 10 {
					want++
				}
				if b.GetCumulativeCount() != want {
					t.Errorf("le=%v: %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
				}
			}
			if hist.GetSampleCount() != 2 {
				t.Errorf("count %d, want 2", hist.GetSampleCount())
			}

			for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "go_gc_duration_seconds",
				"process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds"} {
				if fams[name] == nil {
					t.Errorf("%s missing", name)
				}
			}
			bi := fams["mailscope_build_info"]
			if bi == nil || len(bi.GetMetric()) != 1 || bi.GetMetric()[0].GetGauge().GetValue() != 1 {
				t.Fatalf("mailscope_build_info: %v", bi)
			}
			m := bi.GetMetric()[0]
			if label(m, "version") != version.Version || label(m, "revision") == "" || label(m, "go_version") != runtime.Version() {
				t.Errorf("mailscope_build_info labels %v", m.GetLabel())
			}
			ti := fams["target_info"]
			if ti == nil || len(ti.GetMetric()) != 1 {
				t.Fatalf("target_info: %v", ti)
			}
			m = ti.GetMetric()[0]
			if got := label(m, "service_name"); got != tc.wantService {
				t.Errorf("target_info service_name %q, want %q", got, tc.wantService)
			}
			if got := label(m, "service_version"); got != version.Version {
				t.Errorf("target_info service_version %q, want %q", got, version.Version)
			}
			if tc.envAttrs != "" && label(m, "deployment_environment_name") != "staging" {
				t.Errorf("OTEL_RESOURCE_ATTRIBUTES not in target_info: %v", m.GetLabel())
			}
		})
	}
}
