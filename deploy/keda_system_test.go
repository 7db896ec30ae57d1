package deploy_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/dev"
	"github.com/mailscope/mailscope/producer"
	"github.com/mailscope/mailscope/provision"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/testkit"
	"github.com/mailscope/mailscope/workers"
)

// TestKEDALagOfTheSystem: the lag KEDA would scale on, read from the
// monitoring endpoint of the server the system runs on, with every part
// connected as its role: it rises by one with every mail the real
// producer accepts over SMTP while no worker runs (once the consumer has
// counted it), and falls to zero once
// a worker drains the queue, every mail with its outcome.
func TestKEDALagOfTheSystem(t *testing.T) {
	env := systest.Start(t)
	names := contracts.DefaultNames()
	if err := provision.Run(t.Context(), env.JetStream(t, access.Provisioner), provision.Config{}); err != nil {
		t.Fatal(err)
	}
	endpoint := strings.TrimPrefix(env.Server.MonitorURL(), "http://")
	lag := func() int64 {
		t.Helper()
		r, err := kedaRead(t, endpoint, access.Account, names.MailStream, names.Consumer)
		if err != nil {
			t.Fatal(err)
		}
		return r.Lag()
	}
	if l := lag(); l != 0 {
		t.Fatalf("lag %d before any mail", l)
	}

	quiet := slog.New(slog.DiscardHandler)
	p, err := producer.New(producer.Config{SMTPAddr: "127.0.0.1:0", LMTPAddr: "-", Names: names, Logger: quiet}, env.Conn(t, access.Producer))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	done := make(chan error, 2)
	go func() { done <- p.Run(ctx) }()

	const n = 6
	outcomes := systest.NewOutcomes(t, env.Conn(t, access.Operator), systest.ByRcpt)
	for i := range n {
		rcpt := fmt.Sprintf("lag-%d@example.org", i)
		raw := testkit.SampleMail("Alice <alice@example.com>", rcpt, "lag", "Hi.\r\n", time.Now(), fmt.Sprintf("lag-%d@example.com", i))
		if err := dev.SendSMTP(p.Addr(false), "alice@example.com", []string{rcpt}, raw); err != nil {
			t.Fatal(err)
		}
		// Accepted means stored; the consumer's pending count follows the
		// stream a moment later, so wait for it, and never past one per mail.
		want := int64(i + 1)
		systest.WaitFor(t, fmt.Sprintf("a lag of %d after %d mails accepted with no worker", want, want), func() bool {
			l := lag()
			if l > want {
				t.Fatalf("lag %d after %d mails accepted with no worker", l, want)
			}
			return l == want
		})
	}

	w, err := workers.New(ctx, workers.Config{Names: names, Logger: quiet}, env.Conn(t, access.Worker))
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- w.Run(ctx) }()
	systest.WaitFor(t, "the worker to drain the queue to a lag of 0", func() bool { return lag() == 0 })
	for i := range n {
		if o := outcomes.First(t, fmt.Sprintf("lag-%d@example.org", i)); o.Disposition != contracts.Processed {
			t.Errorf("mail %d: %s", i, o.Disposition)
		}
	}
	cons, err := env.JetStream(t, access.Observer).Consumer(t.Context(), names.MailStream, names.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := cons.Info(t.Context()); err != nil || info.NumPending+uint64(info.NumAckPending) != 0 {
		t.Errorf("consumer info %+v, %v: the observer's view disagrees with KEDA's", info, err)
	}
	stop()
	for range 2 {
		if err := <-done; err != nil && ctx.Err() == nil {
			t.Error(err)
		}
	}
}
