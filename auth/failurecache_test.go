package auth

import (
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/keyserver"
	"github.com/miekg/dns"
)

// refusingServer is a DNS server on loopback that answers every query
// REFUSED and counts the queries it got.
type refusingServer struct {
	addr    string
	queries atomic.Int64
}

func startRefusing(t *testing.T) *refusingServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rs := &refusingServer{addr: pc.LocalAddr().String()}
	started := make(chan struct{})
	srv := &dns.Server{PacketConn: pc, NotifyStartedFunc: func() { close(started) },
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
			rs.queries.Add(1)
			m := new(dns.Msg)
			m.SetRcode(req, dns.RcodeRefused)
			w.WriteMsg(m)
		})}
	served := make(chan error, 1)
	go func() { served <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-served:
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); <-served })
	return rs
}

// TestFailureCached: a name whose server fails (SERVFAIL, REFUSED, no
// answer) is asked once within FailureTTL and again after it, and every
// lookup in between returns the same bare temporary error.
func TestFailureCached(t *testing.T) {
	const name = "k.example.com"
	for _, tc := range []struct {
		fault string
		ttl   time.Duration // Config.FailureTTL
		want  time.Duration // the TTL in force
	}{
		{fault: "servfail", want: DefaultFailureTTL},
		{fault: "refused", want: DefaultFailureTTL},
		{fault: "timeout", want: DefaultFailureTTL},
		{fault: "servfail", ttl: 30 * time.Second, want: 30 * time.Second},
		{fault: "refused", ttl: time.Hour, want: MaxFailureTTL},
	} {
		t.Run(tc.fault+"/"+tc.want.String(), func(t *testing.T) {
			clk := newClock()
			cfg := Config{Now: clk.now, FailureTTL: tc.ttl, Timeout: 100 * time.Millisecond, Retries: -1}
			var queries func() int
			switch tc.fault {
			case "refused":
				rs := startRefusing(t)
				cfg.DNSServers = []string{rs.addr}
				queries = func() int { return int(rs.queries.Load()) }
			default:
				f := keyserver.FaultServFail
				if tc.fault == "timeout" {
					f = keyserver.FaultTimeout
				}
				b := setup(t, Config{})
				b.ks.SetFault(name, f)
				cfg.DNSServers = []string{b.ks.Addr()}
				queries = func() int { return b.ks.Queries(name) }
			}
			r := NewResolver(cfg)
			lookup := func(wantQueries int) error {
				t.Helper()
				txts, err := r.LookupTXT(t.Context(), name)
				if txts != nil || !isTempForMsgauth(err) {
					t.Fatalf("got %q, %v (%T), want a bare temporary net.Error", txts, err, err)
				}
				if n := queries(); n != wantQueries {
					t.Fatalf("%d queries, want %d", n, wantQueries)
				}
				return err
			}
			first := lookup(1)
			var te *TempError
			if !errors.As(first, &te) || te.Timeout() != (tc.fault == "timeout") {
				t.Errorf("err = %#v", first)
			}
			if err := lookup(1); err != first {
				t.Errorf("cached failure %v, want the same error %v", err, first)
			}
			clk.advance(tc.want - time.Millisecond)
			lookup(1)
			clk.advance(time.Millisecond)
			if err := lookup(2); err == first {
				t.Error("after FailureTTL: the old error, want a new lookup's")
			}
			lookup(2)
		})
	}
}

// TestFailureCacheDisabled: a negative FailureTTL asks every time.
func TestFailureCacheDisabled(t *testing.T) {
	rs := startRefusing(t)
	r := NewResolver(Config{DNSServers: []string{rs.addr}, FailureTTL: -1, Retries: -1})
	for i := range 3 {
		if _, err := r.LookupTXT(t.Context(), "k.example.com"); !isTempForMsgauth(err) {
			t.Fatalf("err = %v", err)
		}
		if n := rs.queries.Load(); n != int64(i+1) {
			t.Fatalf("%d queries after %d lookups", n, i+1)
		}
	}
}

// TestFailureCacheBounded: failures share the size bound of the cache.
func TestFailureCacheBounded(t *testing.T) {
	rs := startRefusing(t)
	r := NewResolver(Config{DNSServers: []string{rs.addr}, CacheSize: 2, Retries: -1})
	for _, n := range []string{"a.example.com", "b.example.com", "c.example.com"} {
		r.LookupTXT(t.Context(), n)
	}
	if n := r.cache.len(); n != 2 {
		t.Errorf("cache holds %d names, want 2", n)
	}
	r.LookupTXT(t.Context(), "a.example.com") // evicted: asked again
	if n := rs.queries.Load(); n != 4 {
		t.Errorf("%d queries, want 4", n)
	}
}

// TestDMARCRefusedAskedOnce: the DMARC lookups of a mail's From domain and
// its organizational domain, whose server fails, are asked once per
// FailureTTL, not once per mail.
func TestDMARCRefusedAskedOnce(t *testing.T) {
	clk := newClock()
	b := setup(t, Config{Now: clk.now})
	b.ks.SetFault("_dmarc.example.com", keyserver.FaultServFail)
	for range 3 {
		if p := b.v.DMARC(t.Context(), "mail.example.com"); p.Status != contracts.DMARCTempError {
			t.Fatalf("status %q, want %q", p.Status, contracts.DMARCTempError)
		}
	}
	if n := b.ks.Queries("_dmarc.example.com"); n != 1 {
		t.Errorf("%d queries of the organizational domain, want 1", n)
	}
	clk.advance(DefaultFailureTTL)
	b.v.DMARC(t.Context(), "mail.example.com")
	if n := b.ks.Queries("_dmarc.example.com"); n != 2 {
		t.Errorf("%d queries after FailureTTL, want 2", n)
	}
}
