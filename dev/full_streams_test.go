package dev_test

import (
	"strconv"
	"strings"
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

// When the dead-letter or the held-mail stream is full (DiscardNew), no
// mail is lost: a mail to dead-letter keeps its dead outcome and is
// retried with capped backoff, a mail to hold is kept on the mail stream
// and parked again every HoldDelay; once provisioning gives the streams
// room, the dead letter is stored (with the first attempt's reason, and
// still one outcome) and the held mail is parked, then processed when its
// pause ends.
func TestFullStreamsKeepMailUntilProvisioned(t *testing.T) {
	small := provision.Config{DeadMaxBytes: 2 << 10, HeldMaxBytes: 2 << 10}
	b := setupDev(t, dev.Config{
		Worker:    workers.Config{BackoffBase: 5 * time.Millisecond, BackoffMax: 20 * time.Millisecond, HoldDelay: 20 * time.Millisecond},
		Provision: small,
	})
	b.putRules(t, rules.FlagPause, "rcpt:^held@ 10 true\n")
	filler := "X-Filler: " + strings.Repeat("f", 4<<10)

	// No From field: malformed, dead-lettered at once, if it fits.
	deadRaw := []byte(filler + "\r\nTo: dead@example.org\r\nSubject: no sender\r\n\r\nbody\r\n")
	b.sendSMTP(t, deadRaw, "dead@example.org")
	b.sendSMTP(t, mail(t, "held@example.org", "held", b.rsaKey, "example.com", "s1", filler), "held@example.org")

	dead := b.outcomes.First(t, "dead@example.org")
	if dead.Disposition != contracts.Dead {
		t.Fatalf("disposition %s, want dead", dead.Disposition)
	}
	// Both mails are tried again and again while the streams are full.
	cons, err := b.sys.JS.Consumer(t.Context(), "MAIL", "workers")
	if err != nil {
		t.Fatal(err)
	}
	systest.WaitFor(t, "both mails redelivered", func() bool {
		info, err := cons.Info(t.Context())
		return err == nil && info.NumRedelivered >= 2
	})
	if n := b.streamCount(t, "MAIL_DEAD"); n != 0 {
		t.Fatalf("%d dead letters in a stream too small for one", n)
	}
	if n := b.streamCount(t, "MAIL"); n != 2 {
		t.Errorf("%d mails on the mail stream, want both kept", n)
	}

	// Provisioning again, with the default limits, makes room.
	if err := provision.Run(t.Context(), b.js(t, access.Provisioner), provision.Config{}); err != nil {
		t.Fatal(err)
	}
	ds, err := b.sys.JS.Stream(t.Context(), "MAIL_DEAD")
	if err != nil {
		t.Fatal(err)
	}
	var dl *jetstream.RawStreamMsg
	systest.WaitFor(t, "the dead letter stored", func() bool {
		dl, err = ds.GetLastMsgForSubject(t.Context(), "mail.dead")
		return err == nil
	})
	if dl.Header.Get(contracts.HeaderOriginalID) != dead.ID || dl.Header.Get(contracts.HeaderAttempts) != strconv.Itoa(dead.Attempt) ||
		dl.Header.Get(contracts.HeaderDeadClass) != "malformed" || dl.Header.Get(contracts.HeaderDeadReason) != dead.Reason {
		t.Errorf("dead letter headers %v, want those of the outcome %+v", dl.Header, dead)
	}
	systest.WaitFor(t, "the held mail parked", func() bool { return b.sys.Worker.Held() == 1 })

	b.putRules(t, rules.FlagPause, "rcpt:^held@ 10 false\n")
	o := b.outcomes.First(t, "held@example.org")
	wantDisposition(t, o, contracts.Processed, "publish")
	wantDKIM(t, o, "example.com", "s1", "rsa-sha256", contracts.ResultPass)

	systest.WaitDrained(t, b.sys.JS)
	// Each attempt published the dead outcome again; the stream kept one.
	if n := b.streamCount(t, "MAIL_OUTCOMES"); n != 2 {
		t.Errorf("%d outcome events stored, want 2", n)
	}
}
