package testkit

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
)

var date = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

func sample() []byte {
	return SampleMail("Alice <alice@example.com>", "bob@example.org", "Grüße",
		"Hello  Bob, \n\nsee you.\n\n\n", date, "m1@example.com")
}

// lookup answers DKIM key queries from a map, like DNS would.
func lookup(records map[string]string) func(string) ([]string, error) {
	return func(name string) ([]string, error) {
		if r, ok := records[name]; ok {
			return []string{r}, nil
		}
		return nil, errors.New("no such name")
	}
}

func verify(t *testing.T, signed []byte, records map[string]string) *dkim.Verification {
	t.Helper()
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(signed), &dkim.VerifyOptions{LookupTXT: lookup(records)})
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 {
		t.Fatalf("verifications = %d, want 1", len(vs))
	}
	return vs[0]
}

func TestSignVerify(t *testing.T) {
	rsaKey, err := GenerateKey("rsa", 0)
	if err != nil {
		t.Fatal(err)
	}
	if n := rsaKey.(*rsa.PrivateKey).N.BitLen(); n != 2048 {
		t.Fatalf("default rsa key has %d bits", n)
	}
	edKey, err := GenerateKey("ed25519", 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []struct {
		alg string
		key crypto.Signer
	}{{"rsa", rsaKey}, {"ed25519", edKey}} {
		rec, err := TXTRecord(k.key)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(rec, "v=DKIM1; k="+k.alg+"; p=") {
			t.Errorf("record = %q", rec)
		}
		records := map[string]string{DNSName("sel", "example.com"): rec}
		for _, canon := range []string{"relaxed", "simple"} {
			for _, own := range []bool{false, true} {
				name := k.alg + "/" + canon
				if own {
					name += "/own"
				}
				t.Run(name, func(t *testing.T) {
					o := SignOptions{Domain: "example.com", Selector: "sel", Key: k.key, HeaderCanon: canon, BodyCanon: canon}
					var signed []byte
					var err error
					if own {
						// The l= signer without l=, cross-checked
						// against go-msgauth.
						o.Headers = DefaultHeaders
						signed, err = signOwn(sample(), o)
					} else {
						signed, err = Sign(sample(), o)
					}
					if err != nil {
						t.Fatal(err)
					}
					if !bytes.HasPrefix(signed, []byte("DKIM-Signature:")) || !bytes.HasSuffix(signed, sample()) {
						t.Fatalf("signature not prepended:\n%s", signed)
					}
					v := verify(t, signed, records)
					if v.Err != nil {
						t.Fatalf("verify: %v\n%s", v.Err, signed)
					}
					if v.Domain != "example.com" {
						t.Errorf("domain = %q", v.Domain)
					}
					tampered := bytes.Replace(signed, []byte("see you"), []byte("see ya"), 1)
					if v := verify(t, tampered, records); v.Err == nil {
						t.Error("tampered body verified")
					}
				})
			}
		}
	}
}

func TestSignOptions(t *testing.T) {
	k, err := GenerateKey("ed25519", 0)
	if err != nil {
		t.Fatal(err)
	}
	rec, _ := TXTRecord(k)
	records := map[string]string{DNSName("s", "example.com"): rec}

	signed, err := Sign(sample(), SignOptions{Domain: "example.com", Selector: "s", Key: k,
		Expiration: time.Now().Add(-time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if v := verify(t, signed, records); !dkim.IsPermFail(v.Err) {
		t.Errorf("expired signature: err = %v, want permfail", v.Err)
	}

	signed, err = Sign(sample(), SignOptions{Domain: "example.com", Selector: "s", Key: k, BodyLength: true})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(signed, []byte("l=")) {
		t.Fatalf("no l= tag:\n%s", signed)
	}
	if v := verify(t, signed, records); v.Err == nil || !strings.Contains(v.Err.Error(), "body length") {
		t.Errorf("l= signature: err = %v, want refused for body length", v.Err)
	}

	if _, err := Sign(sample(), SignOptions{Domain: "example.com", Selector: "s", Key: k, Headers: []string{"to"}}); err == nil {
		t.Error("signing without From succeeded")
	}
	if _, err := Sign(sample(), SignOptions{Domain: "example.com", Selector: "s", Key: k, HeaderCanon: "nofws"}); err == nil {
		t.Error("unknown canonicalization accepted")
	}
}

func TestPEMRoundTrip(t *testing.T) {
	for _, alg := range []string{"rsa", "ed25519"} {
		k, err := GenerateKey(alg, 0)
		if err != nil {
			t.Fatal(err)
		}
		p, err := MarshalPrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(p, []byte("-----BEGIN PRIVATE KEY-----")) {
			t.Errorf("%s: PEM = %s", alg, p)
		}
		k2, err := ParsePrivateKey(p)
		if err != nil {
			t.Fatal(err)
		}
		switch k := k.(type) {
		case *rsa.PrivateKey:
			if !k.Equal(k2) {
				t.Errorf("rsa key changed in round trip")
			}
		case ed25519.PrivateKey:
			if !k.Equal(k2) {
				t.Errorf("ed25519 key changed in round trip")
			}
		}
	}
	if _, err := ParsePrivateKey([]byte("junk")); err == nil {
		t.Error("parsed junk")
	}
	if _, err := GenerateKey("dsa", 0); err == nil {
		t.Error("generated a dsa key")
	}
}

func TestSampleMail(t *testing.T) {
	got := string(SampleMail("a@example.com", "b@example.org", "Hi", "one\ntwo\r\n", date, "<x@y>"))
	want := "From: a@example.com\r\nTo: b@example.org\r\nSubject: Hi\r\n" +
		"Date: Tue, 04 Mar 2025 05:06:07 +0000\r\nMessage-ID: <x@y>\r\n" +
		"MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n" +
		"Content-Transfer-Encoding: 8bit\r\n\r\none\r\ntwo\r\n"
	if got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
	if s := string(sample()); !strings.Contains(s, "Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n") {
		t.Errorf("subject not encoded:\n%s", s)
	}
}
