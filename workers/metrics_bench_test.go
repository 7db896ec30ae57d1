package workers

import (
	"testing"

	"go.opentelemetry.io/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/mailscope/mailscope/contracts"
)

// BenchmarkPipelineTelemetry is BenchmarkPipeline with an OpenTelemetry
// SDK MeterProvider installed, as telemetry.Start installs one, so that
// the instruments Process records (DKIM results, DNS cache lookups) are
// aggregated rather than no-ops. Run it on its own: the provider stays
// installed for the rest of the test binary.
func BenchmarkPipelineTelemetry(b *testing.B) {
	reader := sdkmetric.NewManualReader()
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	pb := setupPipeline(b, Config{Env: "bench", Release: "v2.0.0"})
	raw := benchMail(b, pb)
	snap := benchSnapshot(b)
	out, err := pb.p.Process(b.Context(), snap, benchEnv, raw, 1)
	if err != nil || out.Disposition != contracts.Processed || out.Auth.DKIM[0].Result != contracts.ResultPass {
		b.Fatalf("%v %+v", err, out)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pb.p.Process(b.Context(), snap, benchEnv, raw, 1); err != nil {
			b.Fatal(err)
		}
	}
}
