package groupcommit_test

import (
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/mailscope/mailscope/groupcommit"
)

// TestMetrics: a stored batch is recorded under the global meter with
// the publisher's name; a fallback with its JetStream error code.
func TestMetrics(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	// For the rest of the package's tests: the global provider cannot be
	// put back to its default.
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))

	b := setup(t)
	pub := groupcommit.New(b.js, b.config(groupcommit.Config{Name: "metrics-test", Window: wait, MaxMsgs: 3, MinMsgs: 2}))
	checkStored(t, b, numbered("events.a", "m", 3), publishAll(t, pub, numbered("events.a", "m", 3)))
	// The same ids again: the batch is refused as duplicates (10201).
	publishAll(t, pub, numbered("events.a", "m", 3))

	var rm metricdata.ResourceMetrics
	if err := reader.Collect(t.Context(), &rm); err != nil {
		t.Fatal(err)
	}
	publisher := attribute.String("publisher", "metrics-test")
	var sizes, fallbacks int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch data := m.Data.(type) {
			case metricdata.Histogram[int64]:
				for _, dp := range data.DataPoints {
					if m.Name == groupcommit.MetricBatchSize && dp.Attributes.Equals(ptr(attribute.NewSet(publisher))) {
						sizes += dp.Sum
					}
				}
			case metricdata.Sum[int64]:
				for _, dp := range data.DataPoints {
					if m.Name == groupcommit.MetricBatchFallbacks &&
						dp.Attributes.Equals(ptr(attribute.NewSet(publisher, attribute.String("reason", "10201")))) {
						fallbacks += dp.Value
					}
				}
			}
		}
	}
	if sizes != 3 || fallbacks != 1 {
		t.Errorf("%s sum %d (want 3), %s{reason=10201} %d (want 1): %+v",
			groupcommit.MetricBatchSize, sizes, groupcommit.MetricBatchFallbacks, fallbacks, rm.ScopeMetrics)
	}
}

func ptr[T any](v T) *T { return &v }
