package main

import (
	"context"
	"log/slog"
	"time"

	"github.com/mailscope/mailscope/telemetry"
)

// startTracing installs the process's TracerProvider for role (the
// default service.name is mailscope-ROLE), configured by the OTEL_* environment (see
// telemetry.StartTracing), and returns the function that flushes it on
// exit.
func startTracing(ctx context.Context, role string) (func(), error) {
	t, err := telemetry.StartTracing(ctx, telemetry.ServiceName(role))
	if err != nil {
		return nil, err
	}
	if t.Exporting {
		slog.Info("exporting traces by OTLP", slog.String("protocol", t.Protocol))
	}
	return func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := t.Shutdown(sctx); err != nil {
			slog.Warn("traces not flushed", slog.Any("err", err))
		}
	}, nil
}
