package keyserver

import (
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// setup starts a server on loopback and stops it when the test ends.
func setup(t *testing.T) *Server {
	t.Helper()
	s, err := Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// query sends one TXT query over net ("udp" or "tcp") with EDNS0 off.
func query(t *testing.T, s *Server, network, name string) (*dns.Msg, error) {
	t.Helper()
	c := &dns.Client{Net: network, Timeout: 300 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), dns.TypeTXT)
	r, _, err := c.ExchangeContext(t.Context(), m, s.Addr())
	return r, err
}

func txtOf(t *testing.T, r *dns.Msg) string {
	t.Helper()
	if len(r.Answer) != 1 {
		t.Fatalf("answers = %d, want 1: %v", len(r.Answer), r)
	}
	txt, ok := r.Answer[0].(*dns.TXT)
	if !ok {
		t.Fatalf("answer is %T", r.Answer[0])
	}
	return strings.Join(txt.Txt, "")
}

func TestTXTOverUDPAndTCP(t *testing.T) {
	s := setup(t)
	s.SetTXT("Sel._domainkey.Example.COM.", 300, "v=DKIM1; k=ed25519; p=abc")
	for _, network := range []string{"udp", "tcp"} {
		r, err := query(t, s, network, "sel._domainkey.example.com")
		if err != nil {
			t.Fatalf("%s: %v", network, err)
		}
		if r.Rcode != dns.RcodeSuccess || !r.Authoritative {
			t.Fatalf("%s: rcode %s aa %v", network, dns.RcodeToString[r.Rcode], r.Authoritative)
		}
		if got := txtOf(t, r); got != "v=DKIM1; k=ed25519; p=abc" {
			t.Errorf("%s: txt = %q", network, got)
		}
		if ttl := r.Answer[0].Header().Ttl; ttl != 300 {
			t.Errorf("%s: ttl = %d", network, ttl)
		}
	}
	if n := s.Queries("SEL._domainkey.example.com."); n != 2 {
		t.Errorf("Queries = %d, want 2", n)
	}
}

func TestNXDOMAIN(t *testing.T) {
	s := setup(t)
	s.SetTXT("a.example.com", 60, "x")
	s.Delete("a.example.com")
	s.SetNegativeTTL(42)
	r, err := query(t, s, "udp", "a.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if r.Rcode != dns.RcodeNameError || !r.Authoritative {
		t.Fatalf("rcode %s aa %v", dns.RcodeToString[r.Rcode], r.Authoritative)
	}
	if len(r.Ns) != 1 || r.Ns[0].(*dns.SOA).Minttl != 42 {
		t.Errorf("authority = %v, want SOA with minimum 42", r.Ns)
	}
}

func TestNoData(t *testing.T) {
	s := setup(t)
	s.SetTXT("a.example.com", 60, "x")
	c := &dns.Client{Timeout: 300 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion("a.example.com.", dns.TypeA)
	r, _, err := c.ExchangeContext(t.Context(), m, s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 0 || len(r.Ns) != 1 {
		t.Errorf("got %v, want NOERROR with no answer and an SOA", r)
	}
}

func TestLongTXT(t *testing.T) {
	s := setup(t)
	// About the size of a 4096-bit RSA key record, with characters that
	// need escaping in miekg/dns presentation format.
	long := "v=DKIM1; k=rsa; n=\"quoted\\\"; p=" + strings.Repeat("MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A", 24)
	s.SetTXT("big._domainkey.example.com", 60, long)

	// Without EDNS0 a UDP answer is at most 512 bytes: truncated.
	r, err := query(t, s, "udp", "big._domainkey.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !r.Truncated {
		t.Errorf("UDP answer of %d-byte record not truncated", len(long))
	}

	r, err = query(t, s, "tcp", "big._domainkey.example.com")
	if err != nil {
		t.Fatal(err)
	}
	txt := r.Answer[0].(*dns.TXT).Txt
	if want := (len(long) + 254) / 255; len(txt) != want {
		t.Errorf("character-strings = %d, want %d", len(txt), want)
	}
	if got := strings.Join(txt, ""); got != escapeTXT(long) {
		t.Errorf("txt = %q\nwant %q", got, escapeTXT(long))
	}

	// With a large EDNS0 buffer it fits in one datagram.
	c := &dns.Client{Timeout: 300 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion("big._domainkey.example.com.", dns.TypeTXT)
	m.SetEdns0(4096, false)
	r, _, err = c.ExchangeContext(t.Context(), m, s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	if r.Truncated || len(r.Answer) != 1 {
		t.Errorf("EDNS0 answer truncated=%v answers=%d", r.Truncated, len(r.Answer))
	}
}

func TestFaultTimeout(t *testing.T) {
	s := setup(t)
	s.SetTXT("slow.example.com", 60, "x")
	s.SetFault("slow.example.com", FaultTimeout)
	for _, network := range []string{"udp", "tcp"} {
		_, err := query(t, s, network, "slow.example.com")
		if err == nil {
			t.Fatalf("%s: answered, want timeout", network)
		}
		if ne, ok := err.(interface{ Timeout() bool }); !ok || !ne.Timeout() {
			t.Errorf("%s: err = %v, want a timeout", network, err)
		}
	}
	if n := s.Queries("slow.example.com"); n != 2 {
		t.Errorf("Queries = %d, want 2", n)
	}
}

func TestFaultServFail(t *testing.T) {
	s := setup(t)
	s.SetFault("sf.example.com", FaultServFail)
	r, err := query(t, s, "udp", "sf.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if r.Rcode != dns.RcodeServerFailure {
		t.Errorf("rcode = %s, want SERVFAIL", dns.RcodeToString[r.Rcode])
	}
	s.SetFault("sf.example.com", FaultNone)
	r, err = query(t, s, "udp", "sf.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if r.Rcode != dns.RcodeNameError {
		t.Errorf("after clearing fault: rcode = %s, want NXDOMAIN", dns.RcodeToString[r.Rcode])
	}
}

func TestFaultTCPOnly(t *testing.T) {
	s := setup(t)
	s.SetTXT("tc.example.com", 60, "short")
	s.SetFault("tc.example.com", FaultTCPOnly)
	r, err := query(t, s, "udp", "tc.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !r.Truncated || len(r.Answer) != 0 {
		t.Errorf("UDP: truncated=%v answers=%d, want TC and none", r.Truncated, len(r.Answer))
	}
	r, err = query(t, s, "tcp", "tc.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if r.Truncated || txtOf(t, r) != "short" {
		t.Errorf("TCP: %v", r)
	}
}

func TestStartOnFixedPort(t *testing.T) {
	s := setup(t)
	// The port is taken (by s) for both UDP and TCP.
	if s2, err := Start(s.Addr()); err == nil {
		s2.Close()
		t.Fatal("Start on a taken port succeeded")
	}
}
