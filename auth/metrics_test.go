package auth

import (
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/keyserver"
	"github.com/mailscope/mailscope/testkit"
)

// TestMetrics: every query sent is counted by its rcode (timeout when
// none came back) with its duration, every cache lookup as hit or miss,
// and every verified signature by its result word.
func TestMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	// For the rest of the package's tests: the global provider cannot be
	// put back to its default.
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	b := setup(t, Config{Timeout: 100 * time.Millisecond, Retries: 1, FailureTTL: time.Hour})
	b.publish(t, "s1", "example.com", "rsa")
	b.ks.SetFault(testkit.DNSName("dead", "example.com"), keyserver.FaultTimeout)
	b.ks.SetFault(testkit.DNSName("broken", "example.com"), keyserver.FaultServFail)

	raw := testkit.SampleMail("a@example.com", "b@example.org", "metrics", "hi\r\n", time.Now(), "m1@example.com")
	for _, tc := range []struct {
		mail []byte
		want string
	}{
		{b.sign(t, raw, "s1", "example.com", "rsa"), contracts.ResultPass},          // query NOERROR, miss
		{b.sign(t, raw, "s1", "example.com", "rsa"), contracts.ResultPass},          // hit
		{b.sign(t, raw, "s1", "example.com", "rsa2"), contracts.ResultFail},         // wrong key: hit
		{b.sign(t, raw, "nokey", "example.com", "rsa"), contracts.ResultPermError},  // NXDOMAIN, miss
		{b.sign(t, raw, "dead", "example.com", "rsa"), contracts.ResultTempError},   // 2 timeouts (one retry), miss
		{b.sign(t, raw, "dead", "example.com", "rsa"), contracts.ResultTempError},   // the failure remembered: hit
		{b.sign(t, raw, "broken", "example.com", "rsa"), contracts.ResultTempError}, // SERVFAIL, miss
		{raw, contracts.ResultNone},
	} {
		res, err := b.v.Verify(t.Context(), tc.mail)
		if err != nil {
			t.Fatal(err)
		}
		if got := res.Signatures[0].Result; got != tc.want {
			t.Fatalf("result %s, want %s (%s)", got, tc.want, res.Signatures[0].Reason)
		}
	}

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		metric, attr string
		want         map[string]int64
	}{
		{"mailscope.dkim.results", "result", map[string]int64{"pass": 2, "fail": 1, "permerror": 1, "temperror": 3, "none": 1}},
		{"mailscope.dns.queries", "rcode", map[string]int64{"NOERROR": 1, "NXDOMAIN": 1, "timeout": 2, "SERVFAIL": 1}},
		{"mailscope.dns.query.duration", "rcode", map[string]int64{"NOERROR": 1, "NXDOMAIN": 1, "timeout": 2, "SERVFAIL": 1}},
		{"mailscope.dns.cache.lookups", "result", map[string]int64{"hit": 3, "miss": 4}},
	} {
		got := counts(rm, tc.metric, tc.attr)
		for k, n := range tc.want {
			if got[k] != n {
				t.Errorf("%s{%s=%s} = %d, want %d (all: %v)", tc.metric, tc.attr, k, got[k], n, got)
			}
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s: %v, want only %v", tc.metric, got, tc.want)
		}
	}
	// A timeout takes the whole query timeout.
	if s := histSum(rm, "mailscope.dns.query.duration", "timeout"); s < 0.2 {
		t.Errorf("two timed-out queries took %vs in all, want at least 0.2s", s)
	}
}

// counts sums the data points of the counter or histogram name by the
// value of attribute attr (a histogram's by its count).
func counts(rm metricdata.ResourceMetrics, name, attr string) map[string]int64 {
	got := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				for _, dp := range d.DataPoints {
					v, _ := dp.Attributes.Value(attribute.Key(attr))
					got[v.AsString()] += dp.Value
				}
			case metricdata.Histogram[float64]:
				for _, dp := range d.DataPoints {
					v, _ := dp.Attributes.Value(attribute.Key(attr))
					got[v.AsString()] += int64(dp.Count)
				}
			}
		}
	}
	return got
}

// histSum is the sum of histogram name's data point with rcode.
func histSum(rm metricdata.ResourceMetrics, name, rcode string) float64 {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if d, ok := m.Data.(metricdata.Histogram[float64]); ok && m.Name == name {
				for _, dp := range d.DataPoints {
					if v, _ := dp.Attributes.Value("rcode"); v.AsString() == rcode {
						return dp.Sum
					}
				}
			}
		}
	}
	return 0
}

// BenchmarkMetricsPerMail is what the package records for a typical mail
// with one signature and a warm cache (one DKIM result, two cache hits:
// the key and the DMARC record), into an SDK MeterProvider.
func BenchmarkMetricsPerMail(b *testing.B) {
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader())))
	ms := newMetrics()
	ctx := b.Context()
	b.ReportAllocs()
	for b.Loop() {
		ms.dkimResult(ctx, contracts.ResultPass)
		ms.cacheLookup(ctx, true)
		ms.cacheLookup(ctx, true)
	}
}
