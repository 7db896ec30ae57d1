package dev_test

import (
	"crypto"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailscope/mailscope/auth"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/keyserver"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/testkit"
	"github.com/mailscope/mailscope/workers"
)

// clock is a settable time for the worker's DNS cache.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestDKIMKeyCacheAndRotation: the worker caches key records for their
// TTL, keeping at most CacheSize names, the least recently used evicted
// first. With room for two names (a mail's key and its From domain's
// DMARC record), a key looked up again after another key took its place
// is asked of DNS again. A key rotated in DNS is not seen while the old record is
// cached (the new signature fails against the old key), and is used once
// the TTL has passed. Every mail is decided by the rules in force on
// its DKIM result. A server failure is cached for FailureTTL, at most
// five minutes whatever is configured.
func TestDKIMKeyCacheAndRotation(t *testing.T) {
	clk := &clock{now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)}
	b := setup(t, workers.Config{HoldDelay: 20 * time.Millisecond, BackoffBase: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
		Auth: auth.Config{CacheSize: 2, Now: clk.Now, FailureTTL: time.Hour}})
	b.putRules(t, rules.FlagHandler, "dkim:example.com 20 quarantine\ndkim:partner.example 10 discard\n")
	s1 := testkit.DNSName("s1", "example.com")

	o := sendOne(t, b, "first@example.org", b.rsaKey, "example.com", "s1")
	wantDKIM(t, o, "example.com", "s1", "rsa-sha256", contracts.ResultPass)
	wantDisposition(t, o, contracts.Quarantined, "quarantine")
	o = sendOne(t, b, "partner@example.org", b.edKey, "partner.example", "ed")
	wantDKIM(t, o, "partner.example", "ed", "ed25519-sha256", contracts.ResultPass)
	wantDisposition(t, o, contracts.Discarded, "discard")
	if n := b.keys.Queries(s1); n != 1 {
		t.Fatalf("%d queries for %s before its eviction, want 1", n, s1)
	}
	o = sendOne(t, b, "again@example.org", b.rsaKey, "example.com", "s1")
	wantDKIM(t, o, "example.com", "s1", "rsa-sha256", contracts.ResultPass)
	if n := b.keys.Queries(s1); n != 2 {
		t.Errorf("%d queries for %s after another key took its place, want 2", n, s1)
	}

	// Rotation: the record changes in DNS; the cached one holds for its
	// TTL (300s, as newKey publishes it).
	rotated := newKey(t, "rsa", b.keys, "s1", "example.com")
	o = sendOne(t, b, "early@example.org", rotated, "example.com", "s1")
	wantDKIM(t, o, "example.com", "s1", "rsa-sha256", contracts.ResultFail)
	if got := flag(t, o, rules.FlagHandler); got.Value == "quarantine" {
		t.Errorf("a failed signature matched the dkim: scope")
	}
	clk.advance(301 * time.Second)
	o = sendOne(t, b, "late@example.org", rotated, "example.com", "s1")
	wantDKIM(t, o, "example.com", "s1", "rsa-sha256", contracts.ResultPass)
	wantDisposition(t, o, contracts.Quarantined, "quarantine")
	if n := b.keys.Queries(s1); n != 3 {
		t.Errorf("%d queries for %s after its TTL passed, want 3", n, s1)
	}

	// A server failure is cached for FailureTTL, which is held to five
	// minutes (RFC 2308 7.1) although an hour was asked for: the mail,
	// held for DNS and re-checked, asks again once five minutes passed.
	flaky := newKey(t, "ed25519", b.keys, "flaky", "example.com")
	name := testkit.DNSName("flaky", "example.com")
	b.keys.SetFault(name, keyserver.FaultServFail)
	b.sendSMTP(t, mail(t, "flaky@example.org", "SERVFAIL", flaky, "example.com", "flaky"), "flaky@example.org")
	// The clock moves only once the failure is surely cached: the mail,
	// out of attempts, waits held for DNS, having asked DNS once (its
	// later attempts met the cached failure). Moving it at the first
	// query could date the cache entry after the move.
	systest.WaitFor(t, "the mail held for DNS after its attempts", func() bool { return b.sys.Worker.Held() >= 1 })
	if n := b.keys.Queries(name); n != 1 {
		t.Fatalf("%d queries for %s while its failure is cached, want 1", n, name)
	}
	clk.advance(auth.MaxFailureTTL + time.Second)
	systest.WaitFor(t, "a query for "+name+" once the failure's five minutes passed", func() bool { return b.keys.Queries(name) >= 2 })
}

// sendOne signs a mail to rcpt, sends it over SMTP and returns its
// outcome.
func sendOne(t *testing.T, b *bundle, rcpt string, key crypto.Signer, domain, selector string) contracts.Outcome {
	t.Helper()
	b.sendSMTP(t, mail(t, rcpt, "key cache", key, domain, selector), rcpt)
	return b.outcomes.First(t, rcpt)
}

// TestDKIMKeyRecordEscapes: a key record with tabs between its tags and
// before its p= value (whitespace RFC 6376 3.2 allows around a tag's
// value) and a double quote in its note n= travels in DNS presentation
// escapes (\009, \");
// the worker undoes them, so the signature verifies and the mail is
// decided by the rules in force.
func TestDKIMKeyRecordEscapes(t *testing.T) {
	b := setup(t, workers.Config{})
	b.putRules(t, rules.FlagHandler, "dkim:escapes.example 10 quarantine\n")
	k, err := testkit.GenerateKey("ed25519", 0)
	if err != nil {
		t.Fatal(err)
	}
	txt, err := testkit.TXTRecord(k)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(txt, "p=") + 2
	p := txt[i:]
	txt = "v=DKIM1;\tn=say \"hi\"; " + txt[strings.Index(txt, "k="):i] + "\t" + p
	b.keys.SetTXT(testkit.DNSName("esc", "escapes.example"), 300, txt)
	o := sendOne(t, b, "escapes@example.org", k, "escapes.example", "esc")
	wantDKIM(t, o, "escapes.example", "esc", "ed25519-sha256", contracts.ResultPass)
	wantDisposition(t, o, contracts.Quarantined, "quarantine")
}
