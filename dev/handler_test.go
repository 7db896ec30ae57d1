package dev_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/workers"
)

// TestHandlerErrorClasses: a handler chosen by a rule in the bucket
// returns each of the error classes a handler has, and each mail ends as
// its class says, through the real wiring: Reject stores a rejected
// outcome with the reason at once, RetryLater redelivers the mail and the
// next attempt is processed, Unprocessable dead-letters it at once.
func TestHandlerErrorClasses(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{} // by recipient
	publish := workers.Handlers(64 << 10)["publish"]
	picky := workers.HandlerFunc(func(ctx context.Context, m *workers.Mail, dryRun bool) (workers.HandlerResult, error) {
		rcpt := m.Env.RcptTo[0]
		mu.Lock()
		calls[rcpt]++
		n := calls[rcpt]
		mu.Unlock()
		switch {
		case strings.HasPrefix(rcpt, "h-reject@"):
			return workers.HandlerResult{}, workers.Reject("no such list")
		case strings.HasPrefix(rcpt, "h-retry@") && n == 1:
			return workers.HandlerResult{}, workers.RetryLater(errors.New("backend busy"), 20*time.Millisecond)
		case strings.HasPrefix(rcpt, "h-bad@"):
			return workers.HandlerResult{}, workers.Unprocessable(errors.New("no list address in the mail"))
		}
		return publish.Handle(ctx, m, dryRun)
	})
	b := setup(t, workers.Config{MaxAttempts: 3, Handlers: map[string]workers.Handler{"quarantine": picky}})
	b.putRules(t, rules.FlagHandler, "rcpt:^h- 10 quarantine\ndefault 0 publish\n")

	for _, rcpt := range []string{"h-reject@example.org", "h-retry@example.org", "h-bad@example.org"} {
		b.sendSMTP(t, mail(t, rcpt, "handler classes", b.edKey, "partner.example", "ed"), rcpt)
	}

	o := b.outcomes.First(t, "h-reject@example.org")
	if o.Disposition != contracts.Rejected || o.Reason != "no such list" || o.Attempt != 1 || o.Handler != "quarantine" {
		t.Errorf("Reject: %s reason %q attempt %d handler %q, want rejected %q at attempt 1 by quarantine",
			o.Disposition, o.Reason, o.Attempt, o.Handler, "no such list")
	}
	o = b.outcomes.First(t, "h-retry@example.org")
	if o.Disposition != contracts.Processed || o.Attempt != 2 || o.Handler != "quarantine" {
		t.Errorf("RetryLater: %s at attempt %d by %q, want processed at attempt 2 by quarantine", o.Disposition, o.Attempt, o.Handler)
	}
	o = b.outcomes.First(t, "h-bad@example.org")
	if o.Disposition != contracts.Dead || o.Attempt != 1 || !strings.Contains(o.Reason, "no list address") {
		t.Errorf("Unprocessable: %s reason %q attempt %d, want dead at attempt 1 with the reason", o.Disposition, o.Reason, o.Attempt)
	}
	mu.Lock()
	defer mu.Unlock()
	for rcpt, want := range map[string]int{"h-reject@example.org": 1, "h-retry@example.org": 2, "h-bad@example.org": 1} {
		if calls[rcpt] != want {
			t.Errorf("%s: the handler ran %d times, want %d", rcpt, calls[rcpt], want)
		}
	}
}
