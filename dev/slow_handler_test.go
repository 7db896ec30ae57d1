package dev_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/dev"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/workers"
)

// TestSlowHandlerOutlivesAckWait: a handler that takes longer than the
// consumer's AckWait keeps its mail, because the worker tells the server
// it is still in progress; the mail is not handed to a second delivery
// and gets one outcome, at attempt 1. The handler's slowness is the
// scenario (three AckWaits), not a measurement: nothing here is timed.
func TestSlowHandlerOutlivesAckWait(t *testing.T) {
	const ackWait = 2 * time.Second
	var calls atomic.Int32
	slow := workers.HandlerFunc(func(ctx context.Context, m *workers.Mail, _ bool) (workers.HandlerResult, error) {
		calls.Add(1)
		select {
		case <-time.After(3 * ackWait):
		case <-ctx.Done():
			return workers.HandlerResult{}, ctx.Err()
		}
		return workers.HandlerResult{Disposition: contracts.Quarantined, Reason: "slow review"}, nil
	})
	var cfg dev.Config
	cfg.Provision.AckWait = ackWait
	cfg.Worker = workers.Config{ProgressInterval: 20 * time.Millisecond,
		Handlers: map[string]workers.Handler{"quarantine": slow}}
	b := setupDev(t, cfg)
	b.putRules(t, rules.FlagHandler, "rcpt:^slow@ 10 quarantine\ndefault 0 publish\n")
	b.sendSMTP(t, mail(t, "slow@example.org", "slow", b.rsaKey, "example.com", "s1"), "slow@example.org")
	o := b.outcomes.First(t, "slow@example.org")
	if o.Disposition != contracts.Quarantined || o.Attempt != 1 || o.Reason != "slow review" {
		t.Errorf("%s at attempt %d (%q), want quarantined at attempt 1 by the slow handler", o.Disposition, o.Attempt, o.Reason)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("the handler ran %d times, want once: the mail was redelivered while in progress", n)
	}
	if n := len(b.outcomes.All()["slow@example.org"]); n != 1 {
		t.Errorf("%d outcomes, want 1", n)
	}
}
