package auth

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/mailscope/mailscope/testkit"
)

// benchMail is an 8 KiB mail signed with one rsa-2048 signature, and the
// key record that verifies it.
func benchMail(b *testing.B, bd *bundle) []byte {
	body := strings.Repeat(strings.Repeat("x", 78)+"\n", 8192/80)
	bd.publish(b, "sel", "example.com", "rsa")
	return bd.sign(b, mail(body), "sel", "example.com", "rsa")
}

// BenchmarkVerify is Verifier.Verify with a warm cache; compare with
// BenchmarkVerifyRaw for the overhead over bare go-msgauth.
func BenchmarkVerify(b *testing.B) {
	bd := setup(b, Config{})
	raw := benchMail(b, bd)
	if res, err := bd.v.Verify(b.Context(), raw); err != nil || res.Signatures[0].Result != "pass" {
		b.Fatalf("%+v %v", res, err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bd.v.Verify(b.Context(), raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyRaw is dkim.VerifyWithOptions with a map for DNS.
func BenchmarkVerifyRaw(b *testing.B) {
	bd := setup(b, Config{})
	raw := benchMail(b, bd)
	rec, err := testkit.TXTRecord(bd.keys["rsa"])
	if err != nil {
		b.Fatal(err)
	}
	records := map[string]string{testkit.DNSName("sel", "example.com"): rec}
	opts := &dkim.VerifyOptions{LookupTXT: func(name string) ([]string, error) {
		if r, ok := records[name]; ok {
			return []string{r}, nil
		}
		return nil, errors.New("not found")
	}}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		vs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), opts)
		if err != nil || vs[0].Err != nil {
			b.Fatal(err, vs[0].Err)
		}
	}
}

// BenchmarkVerifyUnsigned is the cost of an unsigned mail: a header scan.
func BenchmarkVerifyUnsigned(b *testing.B) {
	bd := setup(b, Config{})
	raw := mail(strings.Repeat(strings.Repeat("x", 78)+"\n", 8192/80))
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bd.v.Verify(b.Context(), raw); err != nil {
			b.Fatal(err)
		}
	}
}
