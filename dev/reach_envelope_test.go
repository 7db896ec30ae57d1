package dev_test

import (
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/mailq"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/workers"
)

// TestBrokenEnvelopesAreDeadLettered: a client of the mail subject other
// than the producer (any program holding the producer's credentials may
// publish there) writes envelopes the contracts refuse. Each such mail is
// dead-lettered at once as malformed, never processed and never retried,
// and the operator's queue listing (mailq, as `mailscope mailq dead`
// shows it) says for each, in the dead letter's reason, why its envelope
// did not decode, with its class and attempts. A well-formed envelope for the
// special recipient postmaster, published the same way, is processed by
// the rules in force.
func TestBrokenEnvelopesAreDeadLettered(t *testing.T) {
	b := setup(t, workers.Config{})
	b.putRules(t, rules.FlagHandler, "rcpt:^postmaster$ 10 quarantine\n")
	nc := b.conn(t, access.Producer)

	received := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC).Format(time.RFC3339Nano)
	type envCase struct {
		name    string
		headers map[string][]string
		want    string // in the envelope error
	}
	cases := []envCase{
		{"no id", map[string][]string{contracts.HeaderRcptTo: {"noid@example.org"}, contracts.HeaderReceivedAt: {received}},
			"missing " + contracts.HeaderMsgID},
		{"no recipient", map[string][]string{contracts.HeaderMsgID: {"env-norcpt"}, contracts.HeaderReceivedAt: {received}},
			"missing " + contracts.HeaderRcptTo},
		{"recipient without domain", map[string][]string{contracts.HeaderMsgID: {"env-badrcpt"}, contracts.HeaderRcptTo: {"nodomain@"}, contracts.HeaderReceivedAt: {received}},
			"not of the form local@domain"},
		{"sender with an angle bracket", map[string][]string{contracts.HeaderMsgID: {"env-badfrom"}, contracts.HeaderRcptTo: {"badfrom@example.org"},
			contracts.HeaderMailFrom: {"<a@example.com>"}, contracts.HeaderReceivedAt: {received}}, "forbidden character"},
		{"no receive time", map[string][]string{contracts.HeaderMsgID: {"env-notime"}, contracts.HeaderRcptTo: {"notime@example.org"}},
			"missing " + contracts.HeaderReceivedAt},
		{"receive time not RFC 3339", map[string][]string{contracts.HeaderMsgID: {"env-badtime"}, contracts.HeaderRcptTo: {"badtime@example.org"},
			contracts.HeaderReceivedAt: {"yesterday"}}, `cannot parse "yesterday"`},
		{"claim without a size", map[string][]string{contracts.HeaderMsgID: {"env-badclaim"}, contracts.HeaderRcptTo: {"badclaim@example.org"},
			contracts.HeaderReceivedAt: {received}, contracts.HeaderClaim: {"mail_claims/env-badclaim"}, contracts.HeaderClaimSize: {"-1"}},
			contracts.HeaderClaimSize},
	}
	publish := func(h nats.Header, raw []byte) {
		t.Helper()
		m := &nats.Msg{Subject: b.sys.Config.Worker.Names.MailSubject, Header: h, Data: raw}
		if err := nc.PublishMsg(m); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range cases {
		h := nats.Header{contracts.HeaderProtocol: {"publish"}}
		for k, v := range c.headers {
			h[k] = v
		}
		publish(h, mail(t, "broken@example.org", c.name, nil, "", ""))
	}
	good := nats.Header{}
	contracts.Envelope{ID: "env-postmaster", RcptTo: []string{"postmaster"}, ReceivedAt: time.Now(), Protocol: "publish"}.Encode(good)
	publish(good, mail(t, "postmaster", "to the postmaster", nil, "", ""))
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	o := b.outcomes.First(t, "postmaster")
	wantRule(t, o, rules.FlagHandler, "quarantine", 1)
	wantDisposition(t, o, contracts.Quarantined, "quarantine")

	var dead []mailq.Entry
	systest.WaitFor(t, "a dead letter for every broken envelope", func() bool {
		var err error
		dead, err = mailq.List(t.Context(), b.sys.JS, b.sys.Config.Worker.Names.DeadStream, mailq.Filter{Class: "malformed"})
		if err != nil {
			t.Fatal(err)
		}
		return len(dead) >= len(cases)
	})
	if len(dead) != len(cases) {
		t.Fatalf("%d malformed dead letters, want %d: %+v", len(dead), len(cases), dead)
	}
	for _, c := range cases {
		var found []mailq.Entry
		for _, e := range dead {
			if strings.Contains(e.Reason, c.want) {
				found = append(found, e)
			}
		}
		if len(found) != 1 {
			t.Errorf("%s: %d dead letters whose reason names %q, want 1", c.name, len(found), c.want)
			continue
		}
		e := found[0]
		if !strings.Contains(e.Reason, "bad envelope") || e.Class != "malformed" || e.Attempts != 1 {
			t.Errorf("%s: dead letter reason %q class %q attempts %d, want bad envelope, malformed, 1", c.name, e.Reason, e.Class, e.Attempts)
		}
		if e.ID == "" {
			t.Errorf("%s: dead letter without a mail id", c.name)
		}
	}
}
