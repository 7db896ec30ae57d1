package auth

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/miekg/dns"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/testkit"
)

var fuzzMail = testkit.SampleMail("Alice <alice@example.com>", "bob@example.org", "Hello", "Hi.\r\n",
	time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC), "m1@example.com")

// FuzzSignatureTags feeds the DKIM-Signature scanner and tag parser any
// header section: they never panic, keep only the tags they report, and
// strip every space from a value.
func FuzzSignatureTags(f *testing.F) {
	f.Add([]byte("DKIM-Signature: v=1; a=rsa-sha256; d=example.com; s=s1;\r\n c=relaxed/relaxed; h=from; l=10; bh=x; b=y\r\nFrom: a@b\r\n\r\nbody"))
	f.Add([]byte("dkim-signature:d=a;d=b;;=;s\r\n\tcontinued\r\n"))
	f.Add([]byte(" leading continuation\r\nDKIM-Signature : l = 1 0 \r\n"))
	f.Add([]byte("DKIM-Signature: \xff\x00; d=\u00e9xample.com\n\n"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		sigs, ended, body := scanSignatures(raw)
		if body < 0 || body > len(raw) || (!ended && body != len(raw)) {
			t.Fatalf("body at %d of %d (header ended: %v)", body, len(raw), ended)
		}
		if len(sigs) > strings.Count(strings.ToLower(string(raw)), "dkim-signature") {
			t.Fatalf("%d signatures from %d field names", len(sigs), strings.Count(strings.ToLower(string(raw)), "dkim-signature"))
		}
		for _, s := range sigs {
			for k, v := range parseTags(s) {
				if !slices.Contains(reportedTags, k) {
					t.Fatalf("tag %q kept", k)
				}
				if strings.IndexFunc(v, unicode.IsSpace) >= 0 {
					t.Fatalf("tag %s=%q keeps a space", k, v)
				}
			}
		}
	})
}

// txtPresentation writes b as miekg/dns writes a TXT character-string in
// TXT.Txt: printable ASCII as is, '"' and '\' escaped, anything else as
// \DDD.
func txtPresentation(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		switch {
		case c == '"' || c == '\\':
			s.WriteByte('\\')
			s.WriteByte(c)
		case c < ' ' || c > '~':
			s.WriteByte('\\')
			s.WriteByte('0' + c/100)
			s.WriteByte('0' + c/10%10)
			s.WriteByte('0' + c%10)
		default:
			s.WriteByte(c)
		}
	}
	return s.String()
}

// FuzzTXTJoin: any bytes, split into character-strings, packed into a
// DNS answer and unpacked as a resolver receives it, are joined back into
// exactly those bytes (a key record's value is the concatenation of its
// strings, RFC 6376 3.6.2.2).
func FuzzTXTJoin(f *testing.F) {
	f.Add([]byte("v=DKIM1; k=rsa; p=MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA"), 7)
	f.Add([]byte(`quote " backslash \ \065 end`), 3)
	f.Add([]byte{0, 1, 0xff, '\\', '0', '6', '5'}, 1)
	f.Fuzz(func(t *testing.T, value []byte, split int) {
		if len(value) > 4000 {
			return
		}
		n := 1 + abs(split)%255
		var parts []string
		for rest := value; len(rest) > 0; {
			k := min(n, len(rest))
			parts = append(parts, txtPresentation(rest[:k]))
			rest = rest[k:]
		}
		if len(parts) == 0 {
			parts = []string{""}
		}
		m := new(dns.Msg)
		m.SetQuestion("s1._domainkey.example.com.", dns.TypeTXT)
		m.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: "s1._domainkey.example.com.", Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 60}, Txt: parts}}
		wire, err := m.Pack()
		if err != nil {
			t.Fatalf("pack: %v", err)
		}
		var back dns.Msg
		if err := back.Unpack(wire); err != nil {
			t.Fatalf("unpack: %v", err)
		}
		if got := joinTXT(back.Answer[0].(*dns.TXT).Txt); got != string(value) {
			t.Fatalf("joined %q, want %q", got, value)
		}
	})
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

// FuzzParseAnswer feeds the resolver's answer parser any DNS message a
// server could send: it never panics; an answer it caches either holds
// records or a not-found error, and expires in the future.
func FuzzParseAnswer(f *testing.F) {
	ok := new(dns.Msg)
	ok.SetQuestion("s1._domainkey.example.com.", dns.TypeTXT)
	ok.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: "s1._domainkey.example.com.", Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 300}, Txt: []string{"v=DKIM1; p=abc"}}}
	nx := new(dns.Msg)
	nx.SetQuestion("s1._domainkey.example.com.", dns.TypeTXT)
	nx.Rcode = dns.RcodeNameError
	nx.Ns = []dns.RR{&dns.SOA{Hdr: dns.RR_Header{Name: "example.com.", Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: 30}, Ns: "ns.example.com.", Mbox: "h.example.com.", Minttl: 10}}
	for _, m := range []*dns.Msg{ok, nx} {
		w, err := m.Pack()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(w)
	}
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, wire []byte) {
		var m dns.Msg
		if m.Unpack(wire) != nil {
			return
		}
		e, err := parseAnswer("s1._domainkey.example.com.", &m, now)
		if err != nil {
			if m.Rcode == dns.RcodeSuccess || m.Rcode == dns.RcodeNameError {
				t.Fatalf("rcode %d refused: %v", m.Rcode, err)
			}
			return
		}
		if !e.expires.After(now) {
			t.Fatalf("entry expires at %v, not after %v", e.expires, now)
		}
		if (len(e.txts) == 0) == (e.err == nil) {
			t.Fatalf("entry with %d records and error %v", len(e.txts), e.err)
		}
	})
}

// keyFunc is a KeySource answering every name with one record.
type keyFunc func(name string) (string, error)

func (k keyFunc) LookupKey(_ context.Context, name string) (string, error) { return k(name) }

// FuzzKeyRecord verifies a mail signed with a real key against any key
// record published for it: verification never panics or errs, always
// gives one of the result words, and passes only when the record holds
// the signer's public key.
func FuzzKeyRecord(f *testing.F) {
	ks, err := keys()
	if err != nil {
		f.Fatal(err)
	}
	rsaRec, err := testkit.TXTRecord(ks["rsa"])
	if err != nil {
		f.Fatal(err)
	}
	edRec, err := testkit.TXTRecord(ks["ed"])
	if err != nil {
		f.Fatal(err)
	}
	signed := map[bool][]byte{}
	for _, ed := range []bool{false, true} {
		k := ks["rsa"]
		if ed {
			k = ks["ed"]
		}
		if signed[ed], err = testkit.Sign(fuzzMail, testkit.SignOptions{Domain: "example.com", Selector: "s1", Key: k}); err != nil {
			f.Fatal(err)
		}
	}
	pOf := func(rec string) string {
		_, p, _ := strings.Cut(rec, "p=")
		p, _, _ = strings.Cut(p, ";")
		return strings.TrimSpace(p)
	}
	f.Add(rsaRec, false)
	f.Add(edRec, true)
	f.Add(rsaRec+"; t=s", false)
	f.Add("v=DKIM1; k=ed25519; h=sha1; p="+pOf(edRec), true)
	f.Add("v=DKIM2; p=", false)
	f.Add("p="+pOf(rsaRec)+"; s=email; t=y:s", false)
	f.Add("k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDwIRP/UC3SBsEmGqZ9ZJW3/DkMoGeLnQg1fWn7/zYtIxN2SnFCjxOCKG9v3b4jYfcTNh5ijSsq631uBItLa7od+v/RtdC2UzJ1lWT947qR+Rcac2gbto/NMqJ0fzfVjH4OuKhitdY9tf6mcwGjaNBcWToIMmPSPDdQPNUYckcQ2QIDAQAB", false)
	truth := map[bool]string{false: pOf(rsaRec), true: pOf(edRec)}
	words := map[string]bool{contracts.ResultPass: true, contracts.ResultFail: true, contracts.ResultNeutral: true,
		contracts.ResultNone: true, contracts.ResultPolicy: true, contracts.ResultTempError: true, contracts.ResultPermError: true}
	f.Fuzz(func(t *testing.T, record string, ed bool) {
		v := NewVerifier(Config{KeySource: keyFunc(func(string) (string, error) { return record, nil })}, NewResolver(Config{DNSServers: []string{"127.0.0.1:1"}, Timeout: time.Millisecond}))
		res, err := v.Verify(t.Context(), signed[ed])
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if len(res.Signatures) != 1 {
			t.Fatalf("%d results for one signature", len(res.Signatures))
		}
		s := res.Signatures[0]
		if !words[s.Result] {
			t.Fatalf("result %q is no result word", s.Result)
		}
		if s.Result == contracts.ResultPass && !strings.Contains(strings.Join(strings.Fields(record), ""), truth[ed]) {
			t.Fatalf("pass with record %q, which does not hold the signer's key", record)
		}
	})
}
