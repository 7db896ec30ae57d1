package dev_test

import (
	"testing"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/telemetry"
	"github.com/mailscope/mailscope/workers"
)

// The mail a worker holds shows on /metrics while it is held, by reason
// (mailscope_mail_held, and the age of the longest held), and leaves it
// when the pause ends and the mail is processed.
func TestHeldMailShowsOnMetrics(t *testing.T) {
	srv, err := telemetry.Start("127.0.0.1:0", telemetry.ServiceName("dev"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	b := setup(t, workers.Config{})
	b.putRules(t, rules.FlagPause, "rcpt:^held 10 true\n")
	b.sendSMTP(t, mail(t, "held@example.org", "held", b.rsaKey, "example.com", "s1"), "held@example.org")
	b.sendSMTP(t, mail(t, "held2@example.org", "held", b.rsaKey, "example.com", "s1"), "held2@example.org")
	systest.WaitFor(t, "two mails held", func() bool { return b.sys.Worker.Held() == 2 })

	pause := labels("reason", contracts.HoldPause)
	dns := labels("reason", contracts.HoldDNS)
	m := scrapeMetrics(t, srv)
	if got := m.value("mailscope_mail_held", pause); got != 2 {
		t.Errorf("mailscope_mail_held{reason=pause} = %v, want 2", got)
	}
	if got := m.value("mailscope_mail_held", dns); got != 0 {
		t.Errorf("mailscope_mail_held{reason=dns} = %v, want 0", got)
	}
	if got := m.value("mailscope_mail_held_oldest_age_seconds", pause); got <= 0 {
		t.Errorf("mailscope_mail_held_oldest_age_seconds{reason=pause} = %v, want the age of a held mail", got)
	}

	b.putRules(t, rules.FlagPause, "rcpt:^held2@ 10 true\n")
	wantDisposition(t, b.outcomes.First(t, "held@example.org"), contracts.Processed, "publish")
	systest.WaitFor(t, "one mail held", func() bool { return b.sys.Worker.Held() == 1 })
	if got := scrapeMetrics(t, srv).value("mailscope_mail_held", pause); got != 1 {
		t.Errorf("after the pause ended for one, mailscope_mail_held{reason=pause} = %v, want 1", got)
	}
}
