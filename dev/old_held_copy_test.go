package dev_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/telemetry"
	"github.com/mailscope/mailscope/workers"
)

// Held copies parked before hold reasons were recorded (no reason, no
// time) are still watched and resumed, and counted on /metrics under the
// reason "unknown"; a held copy whose envelope does not decode is
// dead-lettered as malformed instead of being watched forever.
func TestOldHeldCopies(t *testing.T) {
	srv, err := telemetry.Start("127.0.0.1:0", telemetry.ServiceName("dev"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	b := setup(t, workers.Config{})
	b.putRules(t, rules.FlagPause, "rcpt:^old-held@ 10 true\n")
	held := b.sys.Config.Worker.Names.HeldSubject
	js, err := jetstream.New(b.conn(t, access.Worker))
	if err != nil {
		t.Fatal(err)
	}
	// A held copy as workers park it: the mail id in its own header,
	// a message id of the copy's.
	publish := func(h nats.Header, raw []byte) {
		t.Helper()
		id := h.Get(contracts.HeaderMsgID)
		h.Set(contracts.HeaderMailID, id)
		h.Set(contracts.HeaderMsgID, id+".held.1")
		if _, err := js.PublishMsg(t.Context(), &nats.Msg{Subject: held, Header: h, Data: raw}, jetstream.WithMsgID(id+".held.1")); err != nil {
			t.Fatal(err)
		}
	}

	env := contracts.Envelope{ID: "old-held-copy", MailFrom: "alice@example.com", RcptTo: []string{"old-held@example.org"},
		ReceivedAt: time.Now(), Protocol: "smtp"}
	h := nats.Header{}
	env.Encode(h)
	publish(h, mail(t, "old-held@example.org", "old held", b.rsaKey, "example.com", "s1"))

	h = nats.Header{}
	h.Set(contracts.HeaderMsgID, "broken-held-copy")
	h.Add(contracts.HeaderRcptTo, "broken-held@example.org")
	publish(h, mail(t, "broken-held@example.org", "broken held", b.rsaKey, "example.com", "s1"))

	o := b.outcomes.First(t, "broken-held@example.org")
	if o.Disposition != contracts.Dead || o.ID != "broken-held-copy" || !strings.Contains(o.Reason, "missing "+contracts.HeaderReceivedAt) {
		t.Errorf("broken held copy: %s id %q reason %q, want dead, malformed envelope", o.Disposition, o.ID, o.Reason)
	}

	systest.WaitFor(t, "the old held copy watched", func() bool { return b.sys.Worker.Held() == 1 })
	if got := scrapeMetrics(t, srv).value("mailscope_mail_held", labels("reason", "unknown")); got != 1 {
		t.Errorf(`mailscope_mail_held{reason="unknown"} = %v, want 1`, got)
	}
	b.putRules(t, rules.FlagPause, "rcpt:^old-held@ 10 false\n")
	o = b.outcomes.First(t, "old-held@example.org")
	wantDisposition(t, o, contracts.Processed, "publish")
	if o.ID != "old-held-copy" {
		t.Errorf("resumed mail id %q, want old-held-copy", o.ID)
	}
}
