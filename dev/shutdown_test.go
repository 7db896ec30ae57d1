package dev_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/dev"
	"github.com/mailscope/mailscope/provision"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/workers"
)

// TestShutdownReleasesPrefetchedMail: mail a stopping worker has only
// buffered, not started, is handed back to the server at once (not left
// to wait out AckWait), while the mail it is processing is finished and
// gets its outcome.
func TestShutdownReleasesPrefetchedMail(t *testing.T) {
	entered := make(chan struct{})
	gate := make(chan struct{})
	var once sync.Once
	publish := workers.Handlers(64 << 10)["publish"]
	blocking := workers.HandlerFunc(func(ctx context.Context, m *workers.Mail, dryRun bool) (workers.HandlerResult, error) {
		once.Do(func() { close(entered) })
		<-gate
		return publish.Handle(ctx, m, dryRun)
	})
	const n = 5
	b := setupDev(t, dev.Config{
		Worker:    workers.Config{Concurrency: 1, Prefetch: n, Handlers: map[string]workers.Handler{"quarantine": blocking}},
		Provision: provision.Config{AckWait: time.Hour},
	})
	b.putRules(t, rules.FlagHandler, "rcpt:^slow- 10 quarantine\ndefault 0 publish\n")
	for i := range n {
		rcpt := "slow-" + strconv.Itoa(i) + "@example.org"
		b.sendSMTP(t, mail(t, rcpt, "shutdown", nil, "", ""), rcpt)
	}
	<-entered
	// Outcomes on a connection of the test's own: Close ends the system's.
	nc := b.conn(t, access.Operator)
	outcomes := systest.NewOutcomes(t, nc, systest.ByRcpt)
	cons, err := b.js(t, access.Worker).Consumer(t.Context(), "MAIL", "workers") // a worker of the fleet
	if err != nil {
		t.Fatal(err)
	}
	systest.WaitFor(t, "every mail delivered to the worker (1 in process, the rest buffered)", func() bool {
		info, err := cons.Info(t.Context())
		return err == nil && info.NumAckPending == n
	})

	closed := make(chan struct{})
	go func() { defer close(closed); b.sys.Close() }()
	// AckWait is an hour: only a hand-back makes the buffered mail
	// available again while the test runs. Another worker of the fleet
	// (here: the test, on the same durable consumer) gets it at once.
	batch, err := cons.Fetch(n-1, jetstream.FetchMaxWait(wait))
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for m := range batch.Messages() {
		got++
		if err := m.Ack(); err != nil {
			t.Error(err)
		}
	}
	if got != n-1 {
		t.Errorf("%d mails handed back by the stopping worker, want %d (%v)", got, n-1, batch.Error())
	}
	close(gate)
	<-closed
	if o := outcomes.First(t, "slow-0@example.org"); o.Disposition != contracts.Processed {
		t.Errorf("the mail in process ended %s", o.Disposition)
	}
	if got := outcomes.All(); len(got) != 1 {
		t.Errorf("%d mails have outcomes after the shutdown, want only the one in process", len(got))
	}
}
