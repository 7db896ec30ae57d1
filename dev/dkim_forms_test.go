package dev_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/auth"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/testkit"
	"github.com/mailscope/mailscope/workers"
)

// TestDKIMMailForms: signed mail in the forms an MTA or another
// publisher may hand over verifies as its signer meant: a mail of header
// fields only (no empty line, no body) over SMTP, and, published on the
// mail subject by a client of its own, the same without a final line
// end and a mail with bare LF line endings. Each is decided by the rules
// in force on its dkim=pass.
func TestDKIMMailForms(t *testing.T) {
	b := setup(t, workers.Config{})
	b.putRules(t, rules.FlagHandler, "dkim:example.com 10 quarantine\n")
	date := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	sign := func(raw []byte) []byte {
		t.Helper()
		signed, err := testkit.Sign(raw, testkit.SignOptions{Domain: "example.com", Selector: "s1", Key: b.rsaKey})
		if err != nil {
			t.Fatal(err)
		}
		return signed
	}
	headersOnly := func(rcpt string) []byte {
		t.Helper()
		// Signed with an empty body, sent without the empty line.
		raw := sign(testkit.SampleMail("Alice <alice@example.com>", rcpt, "header fields only", "", date, rcpt+".id@example.com"))
		raw = bytes.TrimSuffix(raw, []byte("\r\n"))
		if bytes.Contains(raw, []byte("\r\n\r\n")) {
			t.Fatalf("mail %q still has an empty line", raw)
		}
		return raw
	}

	b.sendSMTP(t, headersOnly("headers@example.org"), "headers@example.org")

	nc := b.conn(t, access.Producer)
	publish := func(id, rcpt string, raw []byte) {
		t.Helper()
		h := nats.Header{}
		contracts.Envelope{ID: id, MailFrom: "alice@example.com", RcptTo: []string{rcpt}, ReceivedAt: date, Protocol: "publish"}.Encode(h)
		if err := nc.PublishMsg(&nats.Msg{Subject: b.sys.Config.Worker.Names.MailSubject, Header: h, Data: raw}); err != nil {
			t.Fatal(err)
		}
	}
	publish("forms-noeol", "noeol@example.org", bytes.TrimSuffix(headersOnly("noeol@example.org"), []byte("\r\n")))
	publish("forms-lf", "lf@example.org", bytes.ReplaceAll(mail(t, "lf@example.org", "bare LF", b.rsaKey, "example.com", "s1"), []byte("\r\n"), []byte("\n")))
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	for _, rcpt := range []string{"headers@example.org", "noeol@example.org", "lf@example.org"} {
		o := b.outcomes.First(t, rcpt)
		wantDKIM(t, o, "example.com", "s1", "rsa-sha256", contracts.ResultPass)
		wantDisposition(t, o, contracts.Quarantined, "quarantine")
	}
}

// TestStrictAlignmentAndDMARC: with StrictAlignment, a pass by a
// subdomain of the From domain (d=mail.example.com for alice@example.com)
// makes the mail weakly authenticated, not strongly, although
// mail.auth.dkim_strong is on; a pass by the From domain itself is
// strong. The From domain's DMARC record is recorded in the outcome
// with its pct=, and a DMARC record that does not parse is a permerror
// naming the domain that published it. Rules on trust decide each mail.
func TestStrictAlignmentAndDMARC(t *testing.T) {
	b := setup(t, workers.Config{Auth: auth.Config{StrictAlignment: true}})
	sub := newKey(t, "ed25519", b.keys, "sub", "mail.example.com")
	b.keys.SetTXT("_dmarc.example.com", 300, "v=DMARC1; p=reject; pct=50")
	b.keys.SetTXT("_dmarc.broken.example", 300, "v=DMARC1; p=bogus")
	b.putRules(t, rules.FlagDKIMStrong, "default 10 true\n")
	b.putRules(t, rules.FlagHandler, "trust:strong 20 quarantine\ntrust:weak 10 discard\n")

	b.sendSMTP(t, mail(t, "sub@example.org", "signed by a subdomain", sub, "mail.example.com", "sub"), "sub@example.org")
	o := b.outcomes.First(t, "sub@example.org")
	wantDKIM(t, o, "mail.example.com", "sub", "ed25519-sha256", contracts.ResultPass)
	if o.Auth.Trust != contracts.TrustWeak {
		t.Errorf("trust %s under strict alignment for d=mail.example.com, From example.com; want weak", o.Auth.Trust)
	}
	wantDisposition(t, o, contracts.Discarded, "discard")
	if d := o.Auth.DMARC; d == nil || d.Status != contracts.DMARCFound || d.Policy != "reject" || d.Percent == nil || *d.Percent != 50 {
		t.Errorf("DMARC %+v, want found, p=reject, pct=50", d)
	}

	b.sendSMTP(t, mail(t, "exact@example.org", "signed by the From domain", b.rsaKey, "example.com", "s1"), "exact@example.org")
	o = b.outcomes.First(t, "exact@example.org")
	if o.Auth.Trust != contracts.TrustStrong {
		t.Errorf("trust %s for d=example.com, From example.com; want strong", o.Auth.Trust)
	}
	wantDisposition(t, o, contracts.Quarantined, "quarantine")

	raw := testkit.SampleMail("Bob <bob@broken.example>", "broken@example.org", "broken DMARC", "Hello.\r\n",
		time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), "broken.dmarc@broken.example")
	b.sendSMTP(t, raw, "broken@example.org")
	o = b.outcomes.First(t, "broken@example.org")
	if d := o.Auth.DMARC; d == nil || d.Status != contracts.DMARCPermError || d.RecordDomain != "broken.example" || d.Reason == "" {
		t.Errorf("DMARC %+v, want a permerror of broken.example with a reason", d)
	}
}
