package auth

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/keyserver"
	"github.com/mailscope/mailscope/testkit"
)

// verifyOne verifies raw and returns its single signature result.
func verifyOne(t *testing.T, v *Verifier, raw []byte) (Result, contracts.DKIMResult) {
	t.Helper()
	res, err := v.Verify(t.Context(), raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Signatures) != 1 {
		t.Fatalf("signatures = %+v, want 1", res.Signatures)
	}
	return res, res.Signatures[0]
}

func TestVerifyPass(t *testing.T) {
	b := setup(t, Config{})
	for _, key := range []string{"rsa", "ed"} {
		t.Run(key, func(t *testing.T) {
			b.publish(t, key, "example.com", key)
			res, s := verifyOne(t, b.v, b.sign(t, mail("hi\n"), key, "Example.COM", key))
			alg := map[string]string{"rsa": "rsa-sha256", "ed": "ed25519-sha256"}[key]
			want := contracts.DKIMResult{Domain: "Example.COM", Selector: key, Algorithm: alg, Canonicalization: "relaxed/relaxed", Result: "pass"}
			if s != want {
				t.Errorf("got %+v\nwant %+v", s, want)
			}
			if len(res.PassDomains) != 1 || res.PassDomains[0] != "example.com" {
				t.Errorf("PassDomains = %v", res.PassDomains)
			}
			if res.TempError || res.CapHit {
				t.Errorf("TempError=%v CapHit=%v", res.TempError, res.CapHit)
			}
		})
	}
}

func TestVerifyResults(t *testing.T) {
	b := setup(t, Config{})
	b.publish(t, "sel", "example.com", "rsa")
	good := b.sign(t, mail("hi\n"), "sel", "example.com", "rsa")

	expired, err := testkit.Sign(mail("hi\n"), testkit.SignOptions{Domain: "example.com", Selector: "sel",
		Key: b.keys["rsa"], Expiration: time.Now().Add(-time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	withL, err := testkit.Sign(mail("hi\n"), testkit.SignOptions{Domain: "example.com", Selector: "sel",
		Key: b.keys["rsa"], BodyLength: true})
	if err != nil {
		t.Fatal(err)
	}
	b.publish(t, "wrong", "example.com", "rsa2") // a key that did not sign

	for _, tc := range []struct {
		name   string
		raw    []byte
		result string
		reason string
	}{
		{"tampered body", append(bytes.Clone(good), "more\r\n"...), "fail", "body hash did not verify"},
		{"tampered header", bytes.Replace(good, []byte("Subject: Hello"), []byte("Subject: Hullo"), 1), "fail", "signature did not verify"},
		{"wrong key", bytes.Replace(good, []byte("s=sel"), []byte("s=wrong"), 1), "fail", "signature did not verify"},
		{"missing key", b.sign(t, mail("hi\n"), "gone", "example.com", "rsa"), "permerror", "NXDOMAIN"},
		{"sha1", bytes.Replace(good, []byte("a=rsa-sha256"), []byte("a=rsa-sha1"), 1), "permerror", "too weak"},
		{"expired", expired, "permerror", "expired"},
		{"malformed", append([]byte("DKIM-Signature: v=1; garbage\r\n"), mail("hi\n")...), "permerror", "malformed"},
		{"missing tags", append([]byte("DKIM-Signature: v=1; d=example.com; s=sel\r\n"), mail("hi\n")...), "permerror", "missing required tag"},
		{"body length", withL, "policy", "body length"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, s := verifyOne(t, b.v, tc.raw)
			if s.Result != tc.result || !strings.Contains(s.Reason, tc.reason) {
				t.Errorf("got %s (%s), want %s (%s)", s.Result, s.Reason, tc.result, tc.reason)
			}
			if len(res.PassDomains) != 0 || res.TempError {
				t.Errorf("PassDomains=%v TempError=%v", res.PassDomains, res.TempError)
			}
		})
	}
	t.Run("domain from tags", func(t *testing.T) {
		_, s := verifyOne(t, b.v, append([]byte("DKIM-Signature: v=2; d=x.example; s=k; a=rsa-sha256\r\n"), mail("hi\n")...))
		if s.Domain != "x.example" || s.Selector != "k" || s.Algorithm != "rsa-sha256" || s.Result != "permerror" {
			t.Errorf("got %+v", s)
		}
	})
}

func TestVerifyUnsigned(t *testing.T) {
	b := setup(t, Config{})
	res, err := b.v.Verify(t.Context(), mail("hi\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []contracts.DKIMResult{{Result: "none"}}
	if len(res.Signatures) != 1 || res.Signatures[0] != want[0] {
		t.Errorf("got %+v, want %+v", res.Signatures, want)
	}
}

func TestVerifyHeaderOnlyMail(t *testing.T) {
	b := setup(t, Config{})
	b.publish(t, "sel", "example.com", "ed")
	signed := b.sign(t, []byte("From: a@example.com\r\nSubject: x\r\n\r\n"), "sel", "example.com", "ed")
	headerOnly := bytes.TrimSuffix(signed, []byte("\r\n"))
	noFinalEOL := bytes.TrimSuffix(headerOnly, []byte("\r\n"))
	for _, r := range [][]byte{signed, headerOnly, noFinalEOL} {
		if _, s := verifyOne(t, b.v, r); s.Result != "pass" {
			t.Errorf("%q: got %+v", r, s)
		}
	}
}

func TestVerifyTwoSignatures(t *testing.T) {
	b := setup(t, Config{})
	b.publish(t, "good", "example.com", "rsa")
	b.publish(t, "bad", "example.net", "rsa2")
	raw := b.sign(t, mail("hi\n"), "good", "example.com", "rsa")
	raw = b.sign(t, raw, "bad", "example.net", "ed") // published key is rsa2: mismatch
	res, err := b.v.Verify(t.Context(), raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Signatures) != 2 {
		t.Fatalf("got %+v", res.Signatures)
	}
	// Header order: the signature added last is on top.
	if s := res.Signatures[0]; s.Domain != "example.net" || s.Selector != "bad" || s.Algorithm != "ed25519-sha256" || s.Result != "permerror" {
		t.Errorf("first = %+v", s)
	}
	if s := res.Signatures[1]; s.Domain != "example.com" || s.Selector != "good" || s.Algorithm != "rsa-sha256" || s.Result != "pass" {
		t.Errorf("second = %+v", s)
	}
	if len(res.PassDomains) != 1 || res.PassDomains[0] != "example.com" {
		t.Errorf("PassDomains = %v", res.PassDomains)
	}
}

func TestVerifyCap(t *testing.T) {
	b := setup(t, Config{})
	raw := mail("hi\n")
	for i := range 6 {
		sel := fmt.Sprintf("s%d", i)
		b.publish(t, sel, "example.com", "ed")
		raw = b.sign(t, raw, sel, "example.com", "ed")
	}
	res, err := b.v.Verify(t.Context(), raw)
	if err != nil {
		t.Fatal(err)
	}
	if !res.CapHit || len(res.Signatures) != 5 {
		t.Fatalf("CapHit=%v signatures=%d, want true, 5", res.CapHit, len(res.Signatures))
	}
	for i, s := range res.Signatures {
		if want := fmt.Sprintf("s%d", 5-i); s.Selector != want || s.Result != "pass" {
			t.Errorf("signature %d = %+v, want pass from %s", i, s, want)
		}
	}
	if b.ks.Queries(testkit.DNSName("s0", "example.com")) != 0 {
		t.Error("the signature over the cap was looked up")
	}
}

func TestVerifyDNSFaults(t *testing.T) {
	for _, tc := range []struct {
		fault  keyserver.Fault
		result string
		reason string
	}{
		{keyserver.FaultTimeout, "temperror", "timeout"},
		{keyserver.FaultServFail, "temperror", "SERVFAIL"},
		{keyserver.FaultTCPOnly, "pass", ""},
	} {
		t.Run(tc.fault.String(), func(t *testing.T) {
			b := setup(t, Config{Timeout: 200 * time.Millisecond})
			b.publish(t, "sel", "example.com", "rsa")
			b.ks.SetFault(testkit.DNSName("sel", "example.com"), tc.fault)
			res, s := verifyOne(t, b.v, b.sign(t, mail("hi\n"), "sel", "example.com", "rsa"))
			if s.Result != tc.result || !strings.Contains(s.Reason, tc.reason) {
				t.Errorf("got %s (%s), want %s (%s)", s.Result, s.Reason, tc.result, tc.reason)
			}
			if res.TempError != (tc.result == "temperror") {
				t.Errorf("TempError = %v", res.TempError)
			}
		})
	}
}

func TestVerifyCached(t *testing.T) {
	b := setup(t, Config{})
	b.publish(t, "sel", "example.com", "rsa")
	raw := b.sign(t, mail("hi\n"), "sel", "example.com", "rsa")
	for range 2 {
		if _, s := verifyOne(t, b.v, raw); s.Result != "pass" {
			t.Fatalf("got %+v", s)
		}
	}
	if n := b.ks.Queries(testkit.DNSName("sel", "example.com")); n != 1 {
		t.Errorf("key server saw %d queries, want 1", n)
	}
}

func TestVerifyCancelled(t *testing.T) {
	b := setup(t, Config{})
	b.publish(t, "sel", "example.com", "ed")
	b.ks.SetFault(testkit.DNSName("sel", "example.com"), keyserver.FaultTimeout)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := b.v.Verify(ctx, b.sign(t, mail("hi\n"), "sel", "example.com", "ed")); err == nil {
		t.Error("Verify with a cancelled context returned a verdict")
	}
}
