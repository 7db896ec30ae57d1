package telemetry_test

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailscope/mailscope/dev"
	"github.com/mailscope/mailscope/telemetry"
	"github.com/mailscope/mailscope/testkit"
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
	srv, err := telemetry.Start("127.0.0.1:0", ready.Load)
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
		`mailscope_rules_invalid_keys{`,
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
