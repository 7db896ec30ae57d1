package dev_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/workers"
)

// A handler whose backend stays down, or that panics on a mail, fails
// the mail transiently: it is tried MaxAttempts times with growing,
// capped backoff, then dead-lettered as transient with the last reason;
// the panic never stops the worker, which goes on with other mail.
func TestHandlerDownDeadLettersAfterMaxAttempts(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	broken := workers.HandlerFunc(func(ctx context.Context, m *workers.Mail, dryRun bool) (workers.HandlerResult, error) {
		rcpt := m.Env.RcptTo[0]
		mu.Lock()
		calls[rcpt]++
		mu.Unlock()
		if strings.HasPrefix(rcpt, "panic@") {
			panic("handler bug")
		}
		return workers.HandlerResult{}, errors.New("archive backend unreachable")
	})
	const attempts = 4
	b := setup(t, workers.Config{MaxAttempts: attempts, BackoffBase: time.Millisecond, BackoffMax: 3 * time.Millisecond,
		Handlers: map[string]workers.Handler{"quarantine": broken}})
	b.putRules(t, rules.FlagHandler, "rcpt:^(down|panic)@ 10 quarantine\ndefault 0 publish\n")

	for _, rcpt := range []string{"down@example.org", "panic@example.org"} {
		b.sendSMTP(t, mail(t, rcpt, "handler down", b.rsaKey, "example.com", "s1"), rcpt)
	}
	dead, err := b.sys.JS.Stream(t.Context(), "MAIL_DEAD")
	if err != nil {
		t.Fatal(err)
	}
	for rcpt, reason := range map[string]string{"down@example.org": "archive backend unreachable", "panic@example.org": "panic while processing (act): handler bug"} {
		o := b.outcomes.First(t, rcpt)
		if o.Disposition != contracts.Dead || o.Attempt != attempts || !strings.Contains(o.Reason, reason) {
			t.Errorf("%s: %s at attempt %d reason %q; want dead at attempt %d saying %q", rcpt, o.Disposition, o.Attempt, o.Reason, attempts, reason)
		}
		var dl *jetstream.RawStreamMsg
		systest.WaitFor(t, "the dead letter of "+rcpt, func() bool {
			info, err := dead.Info(t.Context())
			if err != nil {
				return false
			}
			for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
				if m, err := dead.GetMsg(t.Context(), seq); err == nil && m.Header.Get(contracts.HeaderOriginalID) == o.ID {
					dl = m
					return true
				}
			}
			return false
		})
		if dl.Header.Get(contracts.HeaderDeadClass) != "transient" || dl.Header.Get(contracts.HeaderAttempts) != "4" {
			t.Errorf("%s: dead letter headers %v, want class transient after 4 attempts", rcpt, dl.Header)
		}
	}
	mu.Lock()
	for rcpt, n := range calls {
		if n != attempts {
			t.Errorf("%s: the handler ran %d times, want %d", rcpt, n, attempts)
		}
	}
	mu.Unlock()

	// The worker goes on.
	b.sendSMTP(t, mail(t, "after@example.org", "after", b.rsaKey, "example.com", "s1"), "after@example.org")
	wantDisposition(t, b.outcomes.First(t, "after@example.org"), contracts.Processed, "publish")
}
