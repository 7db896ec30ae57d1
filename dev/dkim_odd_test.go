package dev_test

import (
	"bytes"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"slices"
	"strings"
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

// TestDKIMSignatureCorners: signatures as other signers write them verify
// and are reported as they are: a b= value broken by white space (FWS,
// RFC 6376 3.5) passes; a signature without c=, with FWS in h= and
// around its d= and s= values, passes and is reported simple/simple, the RFC 6376 3.5 default; an
// l= larger than any body fails and an l= without digits is a
// permerror; a From field without an address makes a pass weak and
// looks no DMARC record up; a signature by a public
// suffix (d=co.uk) passes but never aligns with a From domain under it,
// so the mail is weakly authenticated; an l= signature over a body with
// bare LF line ends is judged on the body counted as CRLF, as an
// l= that covers the whole body is (policy). A From domain that is a
// public suffix has no organizational domain to ask for DMARC: none.
// Rules on DKIM and trust decide each mail.
func TestDKIMSignatureCorners(t *testing.T) {
	b := setup(t, workers.Config{})
	suffixKey := newKey(t, "ed25519", b.keys, "ps", "co.uk")
	b.putRules(t, rules.FlagDKIMStrong, "default 10 true\n")
	b.putRules(t, rules.FlagHandler, "trust:strong 20 quarantine\ntrust:weak 10 discard\n")
	date := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

	// b= with white space inside.
	raw := mail(t, "folded@example.org", "folded b=", b.rsaKey, "example.com", "s1")
	i := bytes.Index(raw, []byte("; b=")) + 4
	end := i + bytes.IndexAny(raw[i:], ";\r")
	val := string(raw[i:end])
	var folded strings.Builder
	for len(val) > 40 {
		folded.WriteString(val[:40] + "\r\n ")
		val = val[40:]
	}
	folded.WriteString(val)
	raw = slices.Concat(raw[:i], []byte(folded.String()), raw[end:])
	b.sendSMTP(t, raw, "folded@example.org")
	o := b.outcomes.First(t, "folded@example.org")
	wantDKIM(t, o, "example.com", "s1", "rsa-sha256", contracts.ResultPass)
	wantDisposition(t, o, contracts.Quarantined, "quarantine")

	// Signed by hand (RFC 8463: Ed25519 over the SHA-256 of the signed
	// data), simple/simple, with FWS around the d= and s= values (RFC
	// 6376 3.2) and the given tags before b=.
	handSigned := func(rcpt, from, tags string) []byte {
		t.Helper()
		body := "Hello from a hand-made signature.\r\n"
		headers := "From: " + from + "\r\nTo: " + rcpt + "\r\nSubject: hand-made\r\n"
		bh := sha256.Sum256([]byte(body))
		sig := "v=1; a=ed25519-sha256; d= partner.example ; s=\r\n ed; " + tags + "bh=" + base64.StdEncoding.EncodeToString(bh[:]) + "; b="
		digest := sha256.Sum256([]byte(headers + "DKIM-Signature: " + sig))
		sb, err := b.edKey.Sign(nil, digest[:], crypto.Hash(0))
		if err != nil {
			t.Fatal(err)
		}
		return []byte("DKIM-Signature: " + sig + base64.StdEncoding.EncodeToString(sb) + "\r\n" + headers +
			"Message-ID: <" + strings.ReplaceAll(rcpt, "@", ".") + "@partner.example>\r\n\r\n" + body)
	}
	// No c= tag, and white space in h= (FWS around its colons).
	b.sendSMTP(t, handSigned("nocanon@example.org", "Partner <p@partner.example>", "h=from : to :\r\n subject; "), "nocanon@example.org")
	o = b.outcomes.First(t, "nocanon@example.org")
	wantDKIM(t, o, "partner.example", "ed", "ed25519-sha256", contracts.ResultPass)
	if c := o.Auth.DKIM[0].Canonicalization; c != "simple/simple" {
		t.Errorf("canonicalization %q without c=, want simple/simple", c)
	}
	wantDisposition(t, o, contracts.Quarantined, "quarantine")
	// l= far larger than any body: the signer hashed a body that is not
	// all there (RFC 6376 3.7).
	b.sendSMTP(t, handSigned("hugel@example.org", "Partner <p@partner.example>", "h=from:to:subject; l=123456789012345678901234; "), "hugel@example.org")
	wantDKIM(t, b.outcomes.First(t, "hugel@example.org"), "partner.example", "ed", "ed25519-sha256", contracts.ResultFail)
	// l= without digits: malformed.
	b.sendSMTP(t, handSigned("emptyl@example.org", "Partner <p@partner.example>", "h=from:to:subject; l=; "), "emptyl@example.org")
	wantDKIM(t, b.outcomes.First(t, "emptyl@example.org"), "partner.example", "ed", "ed25519-sha256", contracts.ResultPermError)
	// A From field that holds no address: a pass aligns with nothing,
	// and there is no domain to ask for DMARC.
	b.sendSMTP(t, handSigned("noaddr@example.org", "not an address", "h=from:to:subject; "), "noaddr@example.org")
	o = b.outcomes.First(t, "noaddr@example.org")
	wantDKIM(t, o, "partner.example", "ed", "ed25519-sha256", contracts.ResultPass)
	if o.Auth.Trust != contracts.TrustWeak || o.Auth.DMARC != nil {
		t.Errorf("trust %s, DMARC %+v for a From without an address; want weak, none looked up", o.Auth.Trust, o.Auth.DMARC)
	}
	wantDisposition(t, o, contracts.Discarded, "discard")

	// d=co.uk for From example.co.uk.
	raw, err := testkit.Sign(testkit.SampleMail("Alice <alice@example.co.uk>", "suffix@example.org", "by a public suffix", "Hello.\r\n", date, "suffix@example.co.uk"),
		testkit.SignOptions{Domain: "co.uk", Selector: "ps", Key: suffixKey})
	if err != nil {
		t.Fatal(err)
	}
	b.sendSMTP(t, raw, "suffix@example.org")
	o = b.outcomes.First(t, "suffix@example.org")
	wantDKIM(t, o, "co.uk", "ps", "ed25519-sha256", contracts.ResultPass)
	if o.Auth.Trust != contracts.TrustWeak {
		t.Errorf("trust %s for d=co.uk, From example.co.uk; want weak", o.Auth.Trust)
	}
	wantDisposition(t, o, contracts.Discarded, "discard")

	// From a public suffix, unsigned.
	b.sendSMTP(t, testkit.SampleMail("Bob <bob@co.uk>", "fromsuffix@example.org", "from a public suffix", "Hello.\r\n", date, "fromsuffix@co.uk"), "fromsuffix@example.org")
	o = b.outcomes.First(t, "fromsuffix@example.org")
	if d := o.Auth.DMARC; d == nil || d.Status != contracts.DMARCNone {
		t.Errorf("DMARC %+v for From co.uk, want none", d)
	}

	// l= over a bare-LF body, published by a client of its own (SMTP
	// would carry CRLF).
	lf, err := testkit.Sign(mail(t, "lf-l@example.org", "l= and LF", nil, "", ""), testkit.SignOptions{Domain: "example.com", Selector: "s1", Key: b.rsaKey, BodyLength: true})
	if err != nil {
		t.Fatal(err)
	}
	lf = bytes.ReplaceAll(lf, []byte("\r\n"), []byte("\n"))
	h := nats.Header{}
	contracts.Envelope{ID: "corners-lf-l", MailFrom: "alice@example.com", RcptTo: []string{"lf-l@example.org"}, ReceivedAt: date, Protocol: "publish"}.Encode(h)
	nc := b.conn(t, access.Producer)
	if err := nc.PublishMsg(&nats.Msg{Subject: b.sys.Config.Worker.Names.MailSubject, Header: h, Data: lf}); err != nil {
		t.Fatal(err)
	}
	o = b.outcomes.First(t, "lf-l@example.org")
	wantDKIM(t, o, "example.com", "s1", "rsa-sha256", contracts.ResultPolicy)
}

// TestDKIMKeyCacheOff: with the cache off (CacheSize negative), every
// mail asks DNS for its key again, and still verifies.
func TestDKIMKeyCacheOff(t *testing.T) {
	b := setup(t, workers.Config{Auth: auth.Config{CacheSize: -1}})
	b.putRules(t, rules.FlagHandler, "dkim:example.com 10 quarantine\n")
	for _, rcpt := range []string{"one@example.org", "two@example.org"} {
		o := sendOne(t, b, rcpt, b.rsaKey, "example.com", "s1")
		wantDKIM(t, o, "example.com", "s1", "rsa-sha256", contracts.ResultPass)
		wantDisposition(t, o, contracts.Quarantined, "quarantine")
	}
	if n := b.keys.Queries(testkit.DNSName("s1", "example.com")); n != 2 {
		t.Errorf("%d queries for two mails with the cache off, want 2", n)
	}
}
