package producer_test

import (
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/mailscope/mailscope/producer"
)

// TestRefusalMetrics: each refusal is counted once, under its cause.
func TestRefusalMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	// For the rest of the package's tests: the global provider cannot be
	// put back to its default.
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))

	const maxLine = 1 << 10
	b := setupWith(t, options{producer: producer.Config{MaxDataLine: maxLine, MaxClientConnections: 1}})
	c := b.greeted(t, false)
	c.cmd(500, "5.5.2", "NOOP %0*d", 3000, 0)
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
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			sum, ok := m.Data.(metricdata.Sum[int64])
			if m.Name != "mailscope.producer.mails" || !ok {
				continue
			}
			for _, dp := range sum.DataPoints {
				if p, _ := dp.Attributes.Value("protocol"); p != attribute.StringValue("smtp") {
					continue
				}
				r, _ := dp.Attributes.Value("result")
				got[r.AsString()] += dp.Value
			}
		}
	}
	want := map[string]int64{"command_too_long": 1, "line_too_long": 1, "stored": 1, "too_many_client_connections": 1}
	for r, n := range want {
		if got[r] != n {
			t.Errorf("result %s counted %d times, want %d (all: %v)", r, got[r], n, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("results %v, want only %v", got, want)
	}
}
