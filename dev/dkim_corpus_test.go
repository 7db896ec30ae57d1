//go:debug rsa1024min=0

// The directive above lets this test binary generate and sign with a
// 512-bit RSA key (Go refuses keys under 1024 bits by default), so that
// the corpus can show the verifier refusing one.

package dev_test

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/auth"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/dev"
	"github.com/mailscope/mailscope/keyserver"
	"github.com/mailscope/mailscope/producer"
	"github.com/mailscope/mailscope/provision"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/testkit"
	"github.com/mailscope/mailscope/workers"
)

// sigWant is the expected result of one DKIM signature.
type sigWant struct {
	domain, selector, alg, canon, result string
	// reason must be contained in the result's reason; every result but
	// pass must have a reason anyway.
	reason string
}

// wantSigs checks every DKIM result of o, in order.
func wantSigs(t *testing.T, o contracts.Outcome, want ...sigWant) {
	t.Helper()
	if len(o.Auth.DKIM) != len(want) {
		t.Fatalf("%d DKIM results %+v, want %d", len(o.Auth.DKIM), o.Auth.DKIM, len(want))
	}
	for i, w := range want {
		got := o.Auth.DKIM[i]
		if got.Domain != w.domain || got.Selector != w.selector || got.Algorithm != w.alg || got.Result != w.result ||
			(w.canon != "" && got.Canonicalization != w.canon) {
			t.Errorf("signature %d: %+v\nwant d=%s s=%s a=%s c=%s %s", i, got, w.domain, w.selector, w.alg, w.canon, w.result)
		}
		if w.result != contracts.ResultPass && got.Reason == "" {
			t.Errorf("signature %d: %s without a reason", i, got.Result)
		}
		if !strings.Contains(got.Reason, w.reason) {
			t.Errorf("signature %d: reason %q, want it to contain %q", i, got.Reason, w.reason)
		}
		if w.result == contracts.ResultPass && got.Reason != "" {
			t.Errorf("signature %d: pass with reason %q", i, got.Reason)
		}
	}
	if n := strings.Count(o.Auth.AuthenticationResults, "dkim="); n != len(want) {
		t.Errorf("Authentication-Results %q has %d dkim= results, want %d", o.Auth.AuthenticationResults, n, len(want))
	}
}

// corpusMail is a mail from from to rcpt with a body of a few lines,
// some with trailing and inner white space (which the canonicalizations
// treat differently).
func corpusMail(from, rcpt, subject string) []byte {
	body := "Hello " + rcpt + ".\n\nThis  line has\tinner white space.   \nAnd this one ends in spaces.  \n\n"
	return testkit.SampleMail(from, rcpt, subject, body,
		time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), strings.ReplaceAll(rcpt, "@", ".")+"@example.com")
}

// signWith signs raw, failing the test on error.
func signWith(t *testing.T, raw []byte, o testkit.SignOptions) []byte {
	t.Helper()
	signed, err := testkit.Sign(raw, o)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// genKey generates a key and publishes its record as selector of domain
// on ks.
func genKey(t *testing.T, ks *keyserver.Server, alg string, bits int, selector, domain string) (crypto.Signer, string) {
	t.Helper()
	k, err := testkit.GenerateKey(alg, bits)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := testkit.TXTRecord(k)
	if err != nil {
		t.Fatal(err)
	}
	if ks != nil {
		ks.SetTXT(testkit.DNSName(selector, domain), 300, rec)
	}
	return k, rec
}

// publishDirect puts raw on the mail stream as `mailscope publish` does:
// byte for byte, with no SMTP in between.
func (b *bundle) publishDirect(t *testing.T, raw []byte, rcpt string) {
	t.Helper()
	env := contracts.Envelope{MailFrom: "alice@example.com", RcptTo: []string{rcpt}, Protocol: "publish"}
	if _, err := producer.NewPublisher(b.js(t, access.Producer), "", 0).Publish(t.Context(), &env, raw); err != nil {
		t.Fatal(err)
	}
}

// TestDKIMCorpus verifies a corpus of mail made by the test through the
// whole system (SMTP or a direct publish, the stream, the worker), with
// keys served by a DNS server on loopback, and checks the result of
// every signature.
func TestDKIMCorpus(t *testing.T) {
	b := setup(t, workers.Config{Auth: auth.Config{Timeout: 200 * time.Millisecond}})
	// Aligned passes are strong, so that trust tells alignment apart.
	b.putRules(t, rules.FlagDKIMStrong, "default 0 true\n")
	ks := b.keys
	const d = "example.com"
	const from = "Alice <alice@example.com>"

	k512, _ := genKey(t, ks, "rsa", 512, "r512", d)
	k1024, _ := genKey(t, ks, "rsa", 1024, "r1024", d)
	k2048 := b.rsaKey // published by setup as s1
	k4096, rec4096 := genKey(t, ks, "rsa", 4096, "r4096", d)
	// The same 4096-bit key under a name the key server answers over TCP
	// only, as a server whose answer does not fit a datagram would.
	ks.SetTXT(testkit.DNSName("r4096tcp", d), 300, rec4096)
	ks.SetFault(testkit.DNSName("r4096tcp", d), keyserver.FaultTCPOnly)
	ked, _ := genKey(t, ks, "ed25519", 0, "ed", d)
	kRevoked, _ := genKey(t, nil, "rsa", 1024, "", "")
	ks.SetTXT(testkit.DNSName("revoked", d), 300, "v=DKIM1; k=rsa; p=")
	for i := range 6 {
		ks.SetTXT(testkit.DNSName(fmt.Sprintf("c%d", i), d), 300, mustTXT(t, ked))
	}
	ks.SetTXT("_dmarc.example.com", 300, "v=DMARC1; p=reject; sp=quarantine; adkim=r")
	ks.SetTXT("_dmarc.slow.example", 300, "v=DMARC1; p=reject")
	ks.SetFault("_dmarc.slow.example", keyserver.FaultTimeout)
	if len(rec4096) <= 512 {
		t.Fatalf("the 4096-bit key record is %d bytes; the test wants one over the 512 of plain DNS over UDP", len(rec4096))
	}

	opts := func(k crypto.Signer, sel string) testkit.SignOptions {
		return testkit.SignOptions{Domain: d, Selector: sel, Key: k}
	}
	signed := func(rcpt string, o testkit.SignOptions) []byte {
		return signWith(t, corpusMail(from, rcpt, "Corpus "+rcpt), o)
	}
	rsa := func(sel, canon, result, reason string) sigWant {
		return sigWant{d, sel, "rsa-sha256", canon, result, reason}
	}
	ed := func(domain, sel, result, reason string) sigWant {
		return sigWant{domain, sel, "ed25519-sha256", "relaxed/relaxed", result, reason}
	}
	rr := "relaxed/relaxed"

	type tc struct {
		name  string
		rcpt  string
		raw   []byte
		send  func(*testing.T, []byte, string) // default SMTP
		sigs  []sigWant
		trust string
		check func(*testing.T, contracts.Outcome)
	}
	var cases []tc
	add := func(c tc) { cases = append(cases, c) }

	// Key sizes and algorithms (RFC 8301, RFC 8463).
	add(tc{name: "rsa 512 is refused", rcpt: "rsa512@corpus.test", raw: signed("rsa512@corpus.test", opts(k512, "r512")),
		sigs: []sigWant{rsa("r512", rr, "permerror", "key is too short")}, trust: "none"})
	add(tc{name: "rsa 1024", rcpt: "rsa1024@corpus.test", raw: signed("rsa1024@corpus.test", opts(k1024, "r1024")),
		sigs: []sigWant{rsa("r1024", rr, "pass", "")}, trust: "strong"})
	add(tc{name: "rsa 2048", rcpt: "rsa2048@corpus.test", raw: signed("rsa2048@corpus.test", opts(k2048, "s1")),
		sigs: []sigWant{rsa("s1", rr, "pass", "")}, trust: "strong"})
	add(tc{name: "rsa 4096", rcpt: "rsa4096@corpus.test", raw: signed("rsa4096@corpus.test", opts(k4096, "r4096")),
		sigs: []sigWant{rsa("r4096", rr, "pass", "")}, trust: "strong"})
	add(tc{name: "rsa 4096 over TCP", rcpt: "rsa4096tcp@corpus.test", raw: signed("rsa4096tcp@corpus.test", opts(k4096, "r4096tcp")),
		sigs: []sigWant{rsa("r4096tcp", rr, "pass", "")}, trust: "strong"})
	add(tc{name: "ed25519", rcpt: "ed25519@corpus.test", raw: signed("ed25519@corpus.test", opts(ked, "ed")),
		sigs: []sigWant{ed(d, "ed", "pass", "")}, trust: "strong"})

	// Canonicalizations.
	for _, c := range []string{"simple/simple", "simple/relaxed", "relaxed/simple"} {
		rcpt := "canon-" + strings.ReplaceAll(c, "/", "-") + "@corpus.test"
		o := opts(k2048, "s1")
		o.HeaderCanon, o.BodyCanon, _ = strings.Cut(c, "/")
		add(tc{name: "canonicalization " + c, rcpt: rcpt, raw: signed(rcpt, o), sigs: []sigWant{rsa("s1", c, "pass", "")}, trust: "strong"})
	}

	// Several signers.
	two := signWith(t, signed("two@corpus.test", opts(k2048, "s1")),
		testkit.SignOptions{Domain: "partner.example", Selector: "ed", Key: b.edKey})
	add(tc{name: "two signatures, in header order", rcpt: "two@corpus.test", raw: two,
		sigs: []sigWant{ed("partner.example", "ed", "pass", ""), rsa("s1", rr, "pass", "")}, trust: "strong"})
	add(tc{name: "third-party signature is weak", rcpt: "third@corpus.test",
		raw:  signWith(t, corpusMail(from, "third@corpus.test", "third party"), testkit.SignOptions{Domain: "partner.example", Selector: "ed", Key: b.edKey}),
		sigs: []sigWant{ed("partner.example", "ed", "pass", "")}, trust: "weak"})

	// Changes after signing.
	add(tc{name: "tampered header", rcpt: "tamperhdr@corpus.test",
		raw:  bytes.Replace(signed("tamperhdr@corpus.test", opts(k2048, "s1")), []byte("Subject: Corpus"), []byte("Subject: Changed"), 1),
		sigs: []sigWant{rsa("s1", rr, "fail", "signature did not verify")}, trust: "none"})
	add(tc{name: "tampered body", rcpt: "tamperbody@corpus.test",
		raw:  bytes.Replace(signed("tamperbody@corpus.test", opts(k2048, "s1")), []byte("This  line"), []byte("That  line"), 1),
		sigs: []sigWant{rsa("s1", rr, "fail", "body hash did not verify")}, trust: "none"})
	add(tc{name: "unsigned header added", rcpt: "added@corpus.test",
		raw:  append([]byte("X-Added-Later: by a relay\r\n"), signed("added@corpus.test", opts(k2048, "s1"))...),
		sigs: []sigWant{rsa("s1", rr, "pass", "")}, trust: "strong"})
	over := opts(k2048, "s1")
	over.Headers = append([]string{"from"}, testkit.DefaultHeaders...) // h=from:from:...
	add(tc{name: "oversigned From, untouched", rcpt: "oversigned@corpus.test", raw: signed("oversigned@corpus.test", over),
		sigs: []sigWant{rsa("s1", rr, "pass", "")}, trust: "strong"})
	add(tc{name: "extra From over an oversigned From", rcpt: "extrafrom@corpus.test",
		raw:  append([]byte("From: Mallory <mallory@example.com>\r\n"), signed("extrafrom@corpus.test", over)...),
		sigs: []sigWant{rsa("s1", rr, "fail", "signature did not verify")}, trust: "none"})

	// Tags and keys the verifier refuses.
	withL := opts(k2048, "s1")
	withL.BodyLength = true
	add(tc{name: "l= is refused by policy", rcpt: "bodylength@corpus.test", raw: signed("bodylength@corpus.test", withL),
		sigs: []sigWant{rsa("s1", rr, "policy", "body length")}, trust: "none"})
	expired := opts(k2048, "s1")
	expired.Expiration = time.Now().Add(-time.Hour)
	add(tc{name: "x= in the past", rcpt: "expired@corpus.test", raw: signed("expired@corpus.test", expired),
		sigs: []sigWant{rsa("s1", rr, "permerror", "expired")}, trust: "none"})
	add(tc{name: "revoked key", rcpt: "revoked@corpus.test", raw: signed("revoked@corpus.test", opts(kRevoked, "revoked")),
		sigs: []sigWant{rsa("revoked", rr, "permerror", "key revoked")}, trust: "none"})
	add(tc{name: "missing selector record", rcpt: "missing@corpus.test", raw: signed("missing@corpus.test", opts(k2048, "nosuch")),
		sigs: []sigWant{rsa("nosuch", rr, "permerror", "NXDOMAIN")}, trust: "none"})
	add(tc{name: "malformed signature", rcpt: "malformed@corpus.test",
		raw:  append([]byte("DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s1; c=relaxed/relaxed; this is not a tag\r\n"), corpusMail(from, "malformed@corpus.test", "malformed")...),
		sigs: []sigWant{rsa("s1", rr, "permerror", "malformed")}, trust: "none"})

	// Bare LF line endings: over SMTP the client sends CRLF; published
	// directly, the mail is stored byte for byte, and verified as if it
	// had CRLF.
	lfMail := bytes.ReplaceAll(signed("barelf-smtp@corpus.test", opts(ked, "ed")), []byte("\r\n"), []byte("\n"))
	add(tc{name: "bare LF over SMTP", rcpt: "barelf-smtp@corpus.test", raw: lfMail,
		sigs: []sigWant{ed(d, "ed", "pass", "")}, trust: "strong",
		check: func(t *testing.T, o contracts.Outcome) {
			if want := len(lfMail) + bytes.Count(lfMail, []byte("\n")); o.Summary == nil || o.Summary.Size != want {
				t.Errorf("stored size %v, want %d: SMTP should have carried CRLF", summarySize(o), want)
			}
		}})
	lfDirect := bytes.ReplaceAll(signed("barelf-publish@corpus.test", opts(ked, "ed")), []byte("\r\n"), []byte("\n"))
	add(tc{name: "bare LF published directly", rcpt: "barelf-publish@corpus.test", raw: lfDirect, send: b.publishDirect,
		sigs: []sigWant{ed(d, "ed", "pass", "")}, trust: "strong",
		check: func(t *testing.T, o contracts.Outcome) {
			if o.Summary == nil || o.Summary.Size != len(lfDirect) {
				t.Errorf("stored size %v, want %d: the stored mail must keep its bare LFs", summarySize(o), len(lfDirect))
			}
		}})

	// More signatures than the cap (5).
	six := corpusMail(from, "six@corpus.test", "six signatures")
	for i := range 6 {
		six = signWith(t, six, opts(ked, fmt.Sprintf("c%d", i)))
	}
	var five []sigWant
	for i := 5; i >= 1; i-- {
		five = append(five, ed(d, fmt.Sprintf("c%d", i), "pass", ""))
	}
	add(tc{name: "six signatures, cap five", rcpt: "six@corpus.test", raw: six, sigs: five, trust: "strong",
		check: func(t *testing.T, o contracts.Outcome) {
			if !strings.Contains(o.Auth.Note, "5") {
				t.Errorf("note %q, want one about the cap of 5", o.Auth.Note)
			}
			if n := ks.Queries(testkit.DNSName("c0", d)); n != 0 {
				t.Errorf("the signature over the cap was looked up %d times", n)
			}
		}})

	// DMARC policy of the From domain.
	add(tc{name: "DMARC policy of the From domain", rcpt: "dmarc@corpus.test", raw: signed("dmarc@corpus.test", opts(ked, "ed")),
		sigs: []sigWant{ed(d, "ed", "pass", "")}, trust: "strong",
		check: func(t *testing.T, o contracts.Outcome) {
			wantDMARC(t, o, "example.com", "found", "example.com", "reject", "reject")
		}})
	add(tc{name: "DMARC policy of the organizational domain", rcpt: "dmarc-sub@corpus.test",
		raw:  signWith(t, corpusMail("Bob <bob@news.example.com>", "dmarc-sub@corpus.test", "sub"), opts(ked, "ed")),
		sigs: []sigWant{ed(d, "ed", "pass", "")}, trust: "strong", // relaxed alignment: example.com with news.example.com
		check: func(t *testing.T, o contracts.Outcome) {
			wantDMARC(t, o, "news.example.com", "found", "example.com", "reject", "quarantine")
		}})
	add(tc{name: "DMARC temperror does not hold the mail", rcpt: "dmarc-slow@corpus.test",
		raw:  signWith(t, corpusMail("Carol <carol@slow.example>", "dmarc-slow@corpus.test", "slow"), opts(ked, "ed")),
		sigs: []sigWant{ed(d, "ed", "pass", "")}, trust: "weak",
		check: func(t *testing.T, o contracts.Outcome) {
			wantDMARC(t, o, "slow.example", "temperror", "", "", "")
			if o.Attempt != 1 {
				t.Errorf("attempt %d, want 1: a DMARC temperror must not cause a retry", o.Attempt)
			}
		}})
	add(tc{name: "no DMARC record", rcpt: "dmarc-none@corpus.test",
		raw:  signWith(t, corpusMail("Dan <dan@partner.example>", "dmarc-none@corpus.test", "none"), testkit.SignOptions{Domain: "partner.example", Selector: "ed", Key: b.edKey}),
		sigs: []sigWant{ed("partner.example", "ed", "pass", "")}, trust: "strong",
		check: func(t *testing.T, o contracts.Outcome) {
			wantDMARC(t, o, "partner.example", "none", "", "", "")
		}})

	for _, c := range cases {
		send := c.send
		if send == nil {
			send = func(t *testing.T, raw []byte, rcpt string) { b.sendSMTP(t, raw, rcpt) }
		}
		send(t, c.raw, c.rcpt)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := b.outcomes.First(t, c.rcpt)
			wantDisposition(t, o, contracts.Processed, "publish")
			wantSigs(t, o, c.sigs...)
			if o.Auth.Trust != c.trust {
				t.Errorf("trust %s, want %s", o.Auth.Trust, c.trust)
			}
			if c.check != nil {
				c.check(t, o)
			}
		})
	}
	if n := ks.Queries(testkit.DNSName("r4096tcp", d)); n < 2 {
		t.Errorf("TCP-only key: %d queries, want the UDP try and the TCP one", n)
	}
	// Without Names.KeyBucket, provisioning creates no key bucket.
	if _, err := b.sys.JS.KeyValue(t.Context(), "mail_dkim_keys"); !errors.Is(err, jetstream.ErrBucketNotFound) {
		t.Errorf("key bucket without asking for it: %v", err)
	}
}

func mustTXT(t *testing.T, k crypto.Signer) string {
	t.Helper()
	rec, err := testkit.TXTRecord(k)
	if err != nil {
		t.Fatal(err)
	}
	return rec
}

func summarySize(o contracts.Outcome) any {
	if o.Summary == nil {
		return "no summary"
	}
	return o.Summary.Size
}

func wantDMARC(t *testing.T, o contracts.Outcome, domain, status, recordDomain, policy, effective string) {
	t.Helper()
	p := o.Auth.DMARC
	if p == nil {
		t.Fatalf("no DMARC policy recorded")
	}
	if p.Domain != domain || p.Status != status || p.RecordDomain != recordDomain || p.Policy != policy || p.EffectivePolicy != effective {
		t.Errorf("DMARC %+v, want domain %s status %s record at %q p=%q effective %q", *p, domain, status, recordDomain, policy, effective)
	}
	if (status == "temperror" || status == "permerror") && p.Reason == "" {
		t.Errorf("DMARC %s without a reason", status)
	}
}

// setupKeyBucket is setup with the staging key bucket provisioned and
// given to the worker.
func setupKeyBucket(t *testing.T, bucket string) *bundle {
	t.Helper()
	keys, err := keyserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keys.Close() })
	sys, err := dev.Start(t.Context(), dev.Config{
		DataDir:   t.TempDir(),
		NATSPort:  -1,
		SMTPAddr:  "127.0.0.1:0",
		LMTPAddr:  "127.0.0.1:0",
		DNSServer: keys.Addr(),
		Worker:    workers.Config{Env: "e2e", Auth: auth.Config{Timeout: 200 * time.Millisecond}},
		Provision: provision.Config{Names: contracts.Names{KeyBucket: bucket}},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sys.Close)
	b := &bundle{sys: sys, keys: keys}
	if b.kv, err = sys.JS.KeyValue(t.Context(), "mail_flags"); err != nil {
		t.Fatal(err)
	}
	b.outcomes = systest.NewOutcomes(t, sys.Conn, systest.ByRcpt)
	return b
}

// TestStagingKeyBucket: a mail signed with a key that exists only in the
// staging key bucket passes; the bucket is read before DNS; once the key
// is deleted, the next mail is a permerror.
func TestStagingKeyBucket(t *testing.T) {
	const bucket = "mail_dkim_keys"
	b := setupKeyBucket(t, bucket)
	kv, err := b.sys.JS.KeyValue(t.Context(), bucket)
	if err != nil {
		t.Fatalf("key bucket not provisioned: %v", err)
	}
	keys := auth.NewKVKeys(kv)
	staged, rec := genKey(t, nil, "ed25519", 0, "", "")
	// DNS has another key under the same name: the bucket must win.
	genKey(t, b.keys, "ed25519", 0, "staging", "example.com")
	if _, err := keys.Put(t.Context(), testkit.DNSName("Staging", "Example.COM"), rec); err != nil {
		t.Fatal(err)
	}
	sign := func(rcpt, sel string) []byte {
		return signWith(t, corpusMail("Alice <alice@example.com>", rcpt, "staging"),
			testkit.SignOptions{Domain: "example.com", Selector: sel, Key: staged})
	}

	b.sendSMTP(t, sign("first@staging.test", "staging"), "first@staging.test")
	wantSigs(t, b.outcomes.First(t, "first@staging.test"),
		sigWant{"example.com", "staging", "ed25519-sha256", "relaxed/relaxed", "pass", ""})

	// A selector that is no valid KV key falls through to DNS
	// (NXDOMAIN), instead of failing the lookup.
	b.sendSMTP(t, sign("badkey@staging.test", "bad*sel"), "badkey@staging.test")
	wantSigs(t, b.outcomes.First(t, "badkey@staging.test"),
		sigWant{"example.com", "bad*sel", "ed25519-sha256", "relaxed/relaxed", "permerror", "no key"})

	if err := keys.Delete(t.Context(), testkit.DNSName("staging", "example.com")); err != nil {
		t.Fatal(err)
	}
	b.keys.Delete(testkit.DNSName("staging", "example.com"))
	b.sendSMTP(t, sign("second@staging.test", "staging"), "second@staging.test")
	second := b.outcomes.First(t, "second@staging.test")
	wantSigs(t, second, sigWant{"example.com", "staging", "ed25519-sha256", "relaxed/relaxed", "permerror", "no key"})
	if second.Attempt != 1 {
		t.Errorf("attempt %d: a missing key is permanent, not retried", second.Attempt)
	}
}
