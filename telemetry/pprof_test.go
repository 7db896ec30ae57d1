package telemetry_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/mailscope/mailscope/telemetry"
)

// TestPprof: /debug/pprof/ is served only when asked for, next to the
// probes and metrics.
func TestPprof(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []telemetry.Option
		want int
	}{
		{"default off", nil, http.StatusNotFound},
		{"WithPprof", []telemetry.Option{telemetry.WithPprof()}, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, err := telemetry.Start("127.0.0.1:0", "mailscope-test", nil, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { srv.Close() })
			base := "http://" + srv.Addr()
			for _, path := range []string{"/debug/pprof/", "/debug/pprof/heap?debug=1", "/debug/pprof/cmdline"} {
				if code, _ := get(t, base+path); code != tc.want {
					t.Errorf("%s: %d, want %d", path, code, tc.want)
				}
			}
			if tc.want == http.StatusOK {
				if _, body := get(t, base+"/debug/pprof/"); !strings.Contains(body, "goroutine") {
					t.Errorf("index does not list the goroutine profile:\n%s", body)
				}
			}
			if code, _ := get(t, base+"/healthz"); code != http.StatusOK {
				t.Errorf("/healthz %d", code)
			}
		})
	}
}
