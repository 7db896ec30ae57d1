package dev_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/dev"
	"github.com/mailscope/mailscope/provision"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/workers"
)

// TestResendOfProcessedMail: an MTA's resend of a mail already processed
// and acked (gone from the work queue) is recognised by its content id
// inside the mail stream's duplicate window (the server's dedup map
// outlives the message): answered 250, not stored, no second outcome. A
// resend that differs in a byte (another MTA host's Received) is another
// mail, with an outcome of its own.
func TestResendOfProcessedMail(t *testing.T) {
	b := setup(t, workers.Config{Release: "e2e-release"})
	putAllRules(t, b)
	outcomes := systest.NewStoredOutcomes(t, b.sys.JS, "MAIL_OUTCOMES", systest.ByRcpt)
	const rcpt = "resend@example.org"
	raw := mail(t, rcpt, "sent twice", b.rsaKey, "example.com", "s1")

	b.sendSMTP(t, raw, rcpt)
	first := outcomes.First(t, rcpt)
	if first.Disposition != contracts.Processed {
		t.Fatalf("first send: disposition %s (%s)", first.Disposition, first.Reason)
	}
	systest.WaitDrained(t, b.sys.JS) // acked: the message is gone
	last := b.lastSeq(t, "MAIL")

	// The 250 was lost on the way back: the MTA sends the mail again.
	b.sendSMTP(t, raw, rcpt)
	if got := b.lastSeq(t, "MAIL"); got != last {
		t.Fatalf("the resend was stored (mail stream's last sequence %d, was %d)", got, last)
	}

	// Re-queued by another MTA host, which adds its own Received: other
	// bytes, another mail.
	other := append([]byte("Received: from mx2.example.net by mx.example.org; Thu, 26 Nov 2026 12:05:00 +0000\r\n"), raw...)
	b.sendSMTP(t, other, rcpt)
	second := outcomes.Nth(t, rcpt, 2)
	systest.WaitDrained(t, b.sys.JS)
	if second.ID == first.ID {
		t.Errorf("a resend with other bytes has the first one's id %s", first.ID)
	}
	if n := len(outcomes.All()[rcpt]); n != 2 {
		t.Errorf("%d outcomes for three sends of which two are the same mail, want 2", n)
	}
	if n := b.streamCount(t, "MAIL_OUTCOMES"); n != 2 {
		t.Errorf("%d outcome events stored, want 2", n)
	}
}

// lastSeq returns the last sequence the stream ever stored.
func (b *bundle) lastSeq(t *testing.T, name string) uint64 {
	t.Helper()
	s, err := b.sys.JS.Stream(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.LastSeq
}

// TestTransactionAcrossNATSRestart: a transaction whose mail the producer
// stores while the nats-server restarts is answered 250, not 451: the
// publish fails while the server is down and is retried, under the same
// id, within the publish timeout. Meanwhile clients send without pause;
// every mail they were answered 451 for is sent again, as an MTA does,
// and every mail ends with exactly one outcome. The number of 451s is
// logged, not asserted: it depends on how long the restart takes.
func TestTransactionAcrossNATSRestart(t *testing.T) {
	// A short AckWait: an ack lost to the restart is redelivered (and
	// its outcome deduplicated) soon.
	b := setupDev(t, dev.Config{Worker: workers.Config{Release: "e2e-release"}, Provision: provision.Config{AckWait: 3 * time.Second}})
	putAllRules(t, b)

	// Clients sending distinct mails back to back across the restart.
	type sent struct {
		rcpt string
		raw  []byte
		err  error
	}
	var (
		mu    sync.Mutex
		all   []sent
		stop  = make(chan struct{})
		wg    sync.WaitGroup
		count = func() int { mu.Lock(); defer mu.Unlock(); return len(all) }
	)
	for c := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				rcpt := fmt.Sprintf("flow-%d-%d@example.org", c, i)
				raw := mail(t, rcpt, "across the restart", b.rsaKey, "example.com", "s1")
				err := dev.SendSMTP(b.sys.SMTPAddr, "alice@example.com", []string{rcpt}, raw)
				mu.Lock()
				all = append(all, sent{rcpt, raw, err})
				mu.Unlock()
			}
		})
	}
	systest.WaitFor(t, "mail flowing before the restart", func() bool { return count() >= 20 })

	const rcpt = "restart@example.org"
	raw := mail(t, rcpt, "stored while the server restarts", b.rsaKey, "example.com", "s1")
	reply := make(chan error, 1)
	retriesBefore := b.sys.Producer.PublishStats().Retries
	if err := b.sys.RestartNATS(t.Context(), func() {
		// The server is down: the transaction's publish fails and is
		// retried until the server is back.
		go func() {
			start := time.Now()
			err := dev.SendSMTP(b.sys.SMTPAddr, "alice@example.com", []string{rcpt}, raw)
			t.Logf("the transaction across the restart: %v after %v", err, time.Since(start).Round(time.Millisecond))
			reply <- err
		}()
		systest.WaitFor(t, "the producer retrying a publish while the server is down", func() bool {
			return b.sys.Producer.PublishStats().Retries > retriesBefore
		})
	}); err != nil {
		t.Fatal(err)
	}
	if err := <-reply; err != nil {
		t.Errorf("the transaction across the restart: %v, want 250", err)
	}
	atRestart := count()
	systest.WaitFor(t, "mail flowing after the restart", func() bool { return count() >= atRestart+20 })
	close(stop)
	wg.Wait()

	// The MTA keeps every mail answered 451 and sends it again.
	refused := 0
	for _, s := range all {
		var se *smtp.SMTPError
		if s.err == nil {
			continue
		}
		if !errors.As(s.err, &se) || se.Code != 451 {
			t.Fatalf("mail to %s: %v, want 250 or 451", s.rcpt, s.err)
		}
		refused++
		b.sendSMTP(t, s.raw, s.rcpt)
	}
	t.Logf("%d mails sent by 4 clients across the restart: %d answered 451 (sent again), producer retries %d",
		len(all), refused, b.sys.Producer.PublishStats().Retries-retriesBefore)

	outcomes := systest.NewStoredOutcomes(t, b.sys.JS, "MAIL_OUTCOMES", systest.ByRcpt)
	outcomes.First(t, rcpt)
	for _, s := range all {
		outcomes.First(t, s.rcpt)
	}
	// Every delivery settled. (Not WaitDrained: nats-server 2.15.2 may
	// keep a mail acked just before its shutdown in the work queue,
	// acked by the consumer, so never delivered again.)
	cons, err := b.sys.JS.Consumer(t.Context(), "MAIL", "workers")
	if err != nil {
		t.Fatal(err)
	}
	systest.WaitFor(t, "every delivery settled", func() bool {
		ci, err := cons.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return ci.NumPending == 0 && ci.NumAckPending == 0
	})
	if n, want := b.streamCount(t, "MAIL_OUTCOMES"), uint64(len(all)+1); n != want {
		t.Errorf("%d outcome events for %d mails", n, want)
	}
	for r, got := range outcomes.All() {
		if len(got) != 1 {
			t.Errorf("%d outcomes for the mail to %s", len(got), r)
		}
	}
}
