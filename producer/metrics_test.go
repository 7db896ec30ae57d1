package producer_test

import (
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/mailscope/mailscope/producer"
)

// TestRefusalMetrics: each refusal is counted once, under its cause, and
// each reply (final or refusal) once under its code.
func TestRefusalMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	// For the rest of the package's tests: the global provider cannot be
	// put back to its default.
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))

	const maxLine = 1 << 10
	b := setupWith(t, options{producer: producer.Config{MaxDataLine: maxLine, MaxClientConnections: 1}})
	c := b.greeted(t, false)
	c.cmd(500, "5.5.2", "NOOP %0*d", 3000, 0)
	c.cmd(553, "5.1.3", `MAIL FROM:<"x<>"@example.com>`)
	if code, _ := c.mail(mailWithLine(maxLine + 1)); code != 554 {
		t.Fatalf("long line: %d, want 554", code)
	}
	if code, _ := c.mail(sample("bob@example.org")); code != 250 {
		t.Fatalf("good mail: %d, want 250", code)
	}
	over := dialRaw(t, b.smtpAddr, "")
	over.expect(421, "4.7.0")
	over.closed()

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		metric, attr string
		want         map[string]int64
	}{
		{"mailscope.producer.mails", "result",
			map[string]int64{"command_too_long": 1, "line_too_long": 1, "stored": 1, "too_many_client_connections": 1}},
		// The 553 refused an address: no transaction, no result.
		{"mailscope.producer.replies", "code",
			map[string]int64{"500": 1, "553": 1, "554": 1, "250": 1, "421": 1}},
	} {
		got := smtpCounts(rm, tc.metric, tc.attr)
		for r, n := range tc.want {
			if got[r] != n {
				t.Errorf("%s %s=%s counted %d times, want %d (all: %v)", tc.metric, tc.attr, r, got[r], n, got)
			}
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s: %v, want only %v", tc.metric, got, tc.want)
		}
	}
}

// smtpCounts sums the counter name's SMTP data points by attribute attr.
func smtpCounts(rm metricdata.ResourceMetrics, name, attr string) map[string]int64 {
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if m.Name != name || !ok {
				continue
			}
			for _, dp := range sum.DataPoints {
				if p, _ := dp.Attributes.Value("protocol"); p != attribute.StringValue("smtp") {
					continue
				}
				r, _ := dp.Attributes.Value(attribute.Key(attr))
				got[r.AsString()] += dp.Value
			}
		}
	}
	return got
}
