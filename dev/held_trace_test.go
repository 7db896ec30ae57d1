package dev_test

import (
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/dev"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/workers"
)

// A held mail's trace tells its story in one trace: the delivery that
// held it, each look at it while its pause lasts (kept), the look that
// resumed it, and the delivery that stored its outcome, each span named
// for its step with the action taken.
func TestHeldMailTrace(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(t.Context()) })
	var cfg dev.Config
	cfg.Worker = workers.Config{TracerProvider: tp, ProgressInterval: time.Millisecond}
	cfg.Producer.TracerProvider = tp
	b := setupDev(t, cfg)
	b.putRules(t, rules.FlagPause, "rcpt:^held@ 10 true\n")
	b.sendSMTP(t, mail(t, "held@example.org", "held", b.rsaKey, "example.com", "s1"), "held@example.org")
	systest.WaitFor(t, "the mail held", func() bool { return b.sys.Worker.Held() == 1 })
	// A rule change makes the worker look again: still paused, kept.
	checks := b.sys.Worker.HeldChecks()
	b.putRules(t, rules.FlagPause, "rcpt:^held@ 20 true\n")
	systest.WaitFor(t, "a look at the held mail", func() bool { return b.sys.Worker.HeldChecks() > checks })
	b.putRules(t, rules.FlagPause, "rcpt:^held@ 10 false\n")
	o := b.outcomes.First(t, "held@example.org")
	wantDisposition(t, o, contracts.Processed, "publish")

	var s spans
	actions := map[string]map[string]bool{}
	systest.WaitFor(t, "the resumed mail's spans", func() bool {
		s = traceOf(rec, o.TraceID)
		actions = map[string]map[string]bool{}
		for _, sp := range s {
			for _, kv := range sp.Attributes() {
				if kv.Key == attribute.Key("mailscope.action") {
					if actions[sp.Name()] == nil {
						actions[sp.Name()] = map[string]bool{}
					}
					actions[sp.Name()][kv.Value.AsString()] = true
				}
			}
		}
		return actions["process mail.resumed"]["store"] && actions["recheck mail.held"]["resume"]
	})
	for name, want := range map[string][]string{
		"process mail.incoming": {"hold"},
		"process mail.resumed":  {"store"},
		"recheck mail.held":     {"keep", "resume"},
	} {
		for _, a := range want {
			if !actions[name][a] {
				t.Errorf("no %q span with action %s; the trace has %s with actions %v", name, a, s, actions)
			}
		}
	}
}
