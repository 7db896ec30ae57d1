package workers

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"

	"go.opentelemetry.io/otel"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// BenchmarkPipelineTelemetry is BenchmarkPipeline inside a process span,
// as the worker runs it, with telemetry at each of its levels: off (no
// tracer at all), ids (the default without OTEL_* export: spans made,
// never sampled), exported (every span sampled and batched to an
// exporter that drops them), and exported with the metrics SDK installed
// (instruments record into a reader). The differences are what
// telemetry costs per mail, in CPU and allocations.
func BenchmarkPipelineTelemetry(b *testing.B) {
	levels := []struct {
		name    string
		tp      func() trace.TracerProvider
		metrics bool
	}{
		{"off", func() trace.TracerProvider { return noop.NewTracerProvider() }, false},
		{"ids", func() trace.TracerProvider {
			return sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
		}, false},
		{"exported", exportingProvider, false},
		// Last: the global MeterProvider cannot be uninstalled.
		{"exported+metrics", exportingProvider, true},
	}
	for _, l := range levels {
		b.Run(l.name, func(b *testing.B) {
			if l.metrics {
				mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
				otel.SetMeterProvider(mp)
				b.Cleanup(func() { mp.Shutdown(context.Background()) })
			}
			tp := l.tp()
			if s, ok := tp.(*sdktrace.TracerProvider); ok {
				b.Cleanup(func() { s.Shutdown(context.Background()) })
			}
			pb := setupPipeline(b, Config{Env: "bench", Release: "v2.0.0", TracerProvider: tp})
			raw := benchMail(b, pb)
			snap := benchSnapshot(b)
			tracer := tp.Tracer(tracerName)
			run := func() {
				ctx, span := tracer.Start(b.Context(), "process mail.incoming", trace.WithSpanKind(trace.SpanKindConsumer))
				if _, err := pb.p.Process(ctx, snap, benchEnv, raw, 1); err != nil {
					b.Fatal(err)
				}
				span.End()
			}
			run()
			b.SetBytes(int64(len(raw)))
			b.ReportAllocs()
			for b.Loop() {
				run()
			}
		})
	}
}

// exportingProvider samples every span and batches it to an exporter
// that drops it, with a queue deep enough to drop none before export.
func exportingProvider() trace.TracerProvider {
	return sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithBatcher(tracetest.NewNoopExporter(), sdktrace.WithMaxQueueSize(1<<18)))
}

// BenchmarkMailSpans is the tracing work of one mail alone, span for
// span as the worker makes them (process with its attributes, parse,
// verify, flags, handler, settle, the outcome publish with its
// traceparent written into headers), at each tracing level: its ns/op is
// what tracing adds to a mail's CPU, measured apart from the far larger
// and noisier work of the mail itself.
func BenchmarkMailSpans(b *testing.B) {
	for _, l := range []struct {
		name string
		tp   func() trace.TracerProvider
	}{
		{"off", func() trace.TracerProvider { return noop.NewTracerProvider() }},
		{"ids", func() trace.TracerProvider {
			return sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.NeverSample()))
		}},
		{"exported", exportingProvider},
	} {
		b.Run(l.name, func(b *testing.B) {
			tp := l.tp()
			if s, ok := tp.(*sdktrace.TracerProvider); ok {
				b.Cleanup(func() { s.Shutdown(context.Background()) })
			}
			w := &Worker{tracer: tp.Tracer(tracerName)}
			p := &Pipeline{tracer: tp.Tracer(tracerName)}
			msg := &fakeMsg{hdr: nats.Header{"traceparent": {"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}}, data: make([]byte, 8<<10)}
			d := &delivery{msg: msg, attempt: 1}
			d.env.ID = "3X5NQF4W2WPHW5KQ3B6VJXTAFQ2LD7FJ"
			b.ReportAllocs()
			for b.Loop() {
				ctx, span := w.startProcess(b.Context(), d, "process", "workers")
				for _, stage := range []string{"parse", "verify", "flags", "handler"} {
					_, s := p.stage(ctx, stage)
					endStage(s, nil)
				}
				sctx, sspan := w.tracer.Start(ctx, "settle")
				var h nats.Header
				_, ps := w.startPublish(sctx, "mail.outcome.processed", &h)
				endStage(ps, nil)
				sspan.End()
				_ = traceID(ctx)
				endProcess(span, verdict{act: actStore}, nil)
			}
		})
	}
}
