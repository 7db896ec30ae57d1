package dev_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/producer"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/workers"
)

// A message on mail.incoming whose envelope is broken (another publisher
// than the producer, an old one) is dead-lettered at once as malformed,
// with what could be read of its envelope: its own id, or its stream
// sequence when it has none; so is an empty mail with a good envelope.
func TestBrokenEnvelopeIsDeadLettered(t *testing.T) {
	b := setup(t, workers.Config{})
	js := b.js(t, access.Producer)
	raw := mail(t, "nodate@example.org", "broken", b.rsaKey, "example.com", "s1")

	publish := func(h nats.Header, data []byte) *jetstream.PubAck {
		t.Helper()
		ack, err := js.PublishMsg(t.Context(), &nats.Msg{Subject: b.sys.Config.Worker.Names.MailSubject, Header: h, Data: data})
		if err != nil {
			t.Fatal(err)
		}
		return ack
	}
	h := nats.Header{}
	h.Set(contracts.HeaderMsgID, "broken-no-date")
	h.Set(contracts.HeaderMailFrom, "alice@example.com")
	h.Add(contracts.HeaderRcptTo, "nodate@example.org")
	h.Set(contracts.HeaderProtocol, "smtp")
	publish(h, raw)

	h = nats.Header{}
	h.Add(contracts.HeaderRcptTo, "noid@example.org")
	h.Set(contracts.HeaderReceivedAt, time.Now().UTC().Format(time.RFC3339Nano))
	noID := publish(h, raw)

	// A recipient so long that the reason is cut to fit a header.
	h = nats.Header{}
	h.Set(contracts.HeaderMsgID, "broken-long-rcpt")
	h.Add(contracts.HeaderRcptTo, "long@example.org")
	h.Add(contracts.HeaderRcptTo, "<"+strings.Repeat("x", 2<<10)+"@example.org>")
	h.Set(contracts.HeaderReceivedAt, time.Now().UTC().Format(time.RFC3339Nano))
	publish(h, raw)

	env := contracts.Envelope{ID: "empty-mail", MailFrom: "alice@example.com", RcptTo: []string{"empty@example.org"},
		ReceivedAt: time.Now(), Protocol: "smtp"}
	if _, err := producer.NewPublisher(js, "", 0).Publish(t.Context(), &env, nil); err != nil {
		t.Fatal(err)
	}

	dead, err := b.sys.JS.Stream(t.Context(), "MAIL_DEAD")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ rcpt, id, reason string }{
		{"nodate@example.org", "broken-no-date", "missing " + contracts.HeaderReceivedAt},
		{"noid@example.org", "seq-" + strconv.FormatUint(noID.Sequence, 10), "missing " + contracts.HeaderMsgID},
		{"empty@example.org", "empty-mail", "malformed mail: empty"},
		{"long@example.org", "broken-long-rcpt", `recipient "<xxxx`},
	} {
		o := b.outcomes.First(t, c.rcpt)
		if o.Disposition != contracts.Dead || o.ID != c.id || !strings.Contains(o.Reason, c.reason) {
			t.Errorf("%s: outcome %s id %q reason %q, want dead %q saying %q", c.rcpt, o.Disposition, o.ID, o.Reason, c.id, c.reason)
		}
		if o.Attempt != 1 {
			t.Errorf("%s: dead at attempt %d, want at once", c.rcpt, o.Attempt)
		}
		var dl *jetstream.RawStreamMsg
		systest.WaitFor(t, "the dead letter of "+c.id, func() bool {
			msgs, err := dead.Info(t.Context())
			if err != nil || msgs.State.Msgs == 0 {
				return false
			}
			for seq := msgs.State.FirstSeq; seq <= msgs.State.LastSeq; seq++ {
				m, err := dead.GetMsg(t.Context(), seq)
				if err == nil && m.Header.Get(contracts.HeaderOriginalID) == c.id {
					dl = m
					return true
				}
			}
			return false
		})
		if r := dl.Header.Get(contracts.HeaderDeadReason); len(r) > 1024 || len(o.Reason) > 1024 ||
			(c.rcpt == "long@example.org" && (len(r) != 1024 || r != o.Reason)) {
			t.Errorf("%s: reason of %d bytes in the dead letter, %d in the outcome; want the same, at most 1 KiB", c.rcpt, len(r), len(o.Reason))
		}
		if dl.Header.Get(contracts.HeaderDeadClass) != "malformed" || !strings.Contains(dl.Header.Get(contracts.HeaderDeadReason), c.reason) {
			t.Errorf("%s: dead letter headers %v", c.rcpt, dl.Header)
		}
	}
}
