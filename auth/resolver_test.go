package auth

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailscope/mailscope/keyserver"
	"github.com/miekg/dns"
)

// isTempForMsgauth is go-msgauth's own test of a temporary lookup error
// (dkim/query.go): a type assertion, not errors.As.
func isTempForMsgauth(err error) bool {
	netErr, ok := err.(net.Error)
	//lint:ignore SA1019 this mirrors go-msgauth's check on purpose.
	return ok && netErr.Temporary()
}

// clock is a settable clock for Config.Now.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) advance(d time.Duration) { c.ns.Add(int64(d)) }
func newClock() *clock                   { c := new(clock); c.ns.Store(time.Unix(1e9, 0).UnixNano()); return c }

func TestLookupTXT(t *testing.T) {
	b := setup(t, Config{})
	long := `v=DKIM1; n="quoted \\ text"; p=` + strings.Repeat("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/", 40)
	b.ks.SetTXT("long.example.com", 60, long)
	got, err := b.res.LookupTXT(t.Context(), "LONG.example.com.")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != long {
		t.Errorf("got %q\nwant %q", got, long)
	}
}

func TestLookupNotFound(t *testing.T) {
	b := setup(t, Config{})
	_, err := b.res.LookupTXT(t.Context(), "missing.example.com")
	if !errors.Is(err, ErrNotFound) || isTempForMsgauth(err) {
		t.Errorf("err = %v, want ErrNotFound, not temporary", err)
	}
}

func TestLookupTempErrors(t *testing.T) {
	for _, f := range []keyserver.Fault{keyserver.FaultTimeout, keyserver.FaultServFail} {
		t.Run(f.String(), func(t *testing.T) {
			clk := newClock()
			b := setup(t, Config{Timeout: 100 * time.Millisecond, Retries: -1, Now: clk.now})
			b.ks.SetTXT("k.example.com", 60, "x")
			b.ks.SetFault("k.example.com", f)
			_, err := b.res.LookupTXT(t.Context(), "k.example.com")
			if !isTempForMsgauth(err) {
				t.Fatalf("err = %v (%T), want a bare temporary net.Error", err, err)
			}
			var te *TempError
			if !errors.As(err, &te) || te.Server != b.ks.Addr() || te.Timeout() != (f == keyserver.FaultTimeout) {
				t.Errorf("err = %#v", err)
			}
			// The failure is remembered for FailureTTL, then asked again.
			b.ks.SetFault("k.example.com", keyserver.FaultNone)
			if _, err2 := b.res.LookupTXT(t.Context(), "k.example.com"); err2 != err {
				t.Errorf("within FailureTTL: %v, want the cached %v", err2, err)
			}
			clk.advance(DefaultFailureTTL)
			if _, err := b.res.LookupTXT(t.Context(), "k.example.com"); err != nil {
				t.Errorf("after recovery: %v", err)
			}
		})
	}
}

func TestLookupRetries(t *testing.T) {
	b := setup(t, Config{Timeout: 100 * time.Millisecond, Retries: 2})
	b.ks.SetFault("k.example.com", keyserver.FaultTimeout)
	b.res.LookupTXT(t.Context(), "k.example.com")
	if n := b.ks.Queries("k.example.com"); n != 3 {
		t.Errorf("queries = %d, want 3 (1 + 2 retries)", n)
	}
}

func TestLookupNextServer(t *testing.T) {
	for _, f := range []keyserver.Fault{keyserver.FaultTimeout, keyserver.FaultServFail} {
		t.Run(f.String(), func(t *testing.T) {
			bad := setup(t, Config{})
			bad.ks.SetFault("k.example.com", f)
			good := setup(t, Config{})
			good.ks.SetTXT("k.example.com", 60, "x")
			r := NewResolver(Config{DNSServers: []string{bad.ks.Addr(), good.ks.Addr()}, Timeout: 100 * time.Millisecond, Retries: -1})
			got, err := r.LookupTXT(t.Context(), "k.example.com")
			if err != nil || len(got) != 1 || got[0] != "x" {
				t.Errorf("got %q, %v", got, err)
			}
			if bad.ks.Queries("k.example.com") != 1 {
				t.Error("first server not asked")
			}
		})
	}
}

func TestLookupCache(t *testing.T) {
	clk := newClock()
	b := setup(t, Config{Now: clk.now, CacheSize: 2})
	b.ks.SetTXT("a.example.com", 30, "a")
	b.ks.SetTXT("b.example.com", 0, "b") // TTL 0 is cached for the 1s minimum
	b.ks.SetNegativeTTL(10)
	lookup := func(name string) {
		t.Helper()
		if _, err := b.res.LookupTXT(t.Context(), name); err != nil && !errors.Is(err, ErrNotFound) {
			t.Fatal(err)
		}
	}
	want := func(name string, n int) {
		t.Helper()
		if got := b.ks.Queries(name); got != n {
			t.Errorf("%s: %d queries, want %d", name, got, n)
		}
	}

	lookup("a.example.com")
	lookup("a.example.com")
	want("a.example.com", 1)

	lookup("b.example.com")
	clk.advance(999 * time.Millisecond)
	lookup("b.example.com")
	want("b.example.com", 1)
	clk.advance(time.Millisecond)
	lookup("b.example.com")
	want("b.example.com", 2)

	// Negative answers are cached for the SOA minimum. The cache holds
	// two names: a.example.com, the least recently used, is evicted.
	lookup("none.example.com")
	lookup("none.example.com")
	want("none.example.com", 1)
	lookup("a.example.com")
	want("a.example.com", 2)

	clk.advance(10 * time.Second)
	lookup("none.example.com")
	want("none.example.com", 2)
	if n := b.res.cache.len(); n != 2 {
		t.Errorf("cache holds %d names, want 2", n)
	}
}

func TestLookupSingleflight(t *testing.T) {
	b := setup(t, Config{})
	b.ks.SetTXT("k.example.com", 60, "x")
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if got, err := b.res.LookupTXT(t.Context(), "k.example.com"); err != nil || got[0] != "x" {
				t.Errorf("got %q, %v", got, err)
			}
		})
	}
	wg.Wait()
	if n := b.ks.Queries("k.example.com"); n != 1 {
		t.Errorf("queries = %d, want 1", n)
	}
}

func TestLookupCancelled(t *testing.T) {
	b := setup(t, Config{Timeout: 200 * time.Millisecond})
	b.ks.SetFault("k.example.com", keyserver.FaultTimeout)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := b.res.LookupTXT(ctx, "k.example.com")
	if !isTempForMsgauth(err) || !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want a temporary error wrapping context.Canceled", err)
	}
	if n := b.ks.Queries("k.example.com"); n != 0 {
		t.Errorf("queries = %d, want none", n)
	}
}

func TestJoinTXT(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:         "plain",
		`a\"b\\c`:       `a"b\c`,
		`\065\066\0677`: "ABC7",
		`end\`:          `end\`,
	} {
		if got := joinTXT([]string{in}); got != want {
			t.Errorf("joinTXT(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestParseAnswer(t *testing.T) {
	now := time.Unix(1e9, 0)
	hdr := func(typ uint16, ttl uint32) dns.RR_Header {
		return dns.RR_Header{Name: "k.example.com.", Rrtype: typ, Class: dns.ClassINET, Ttl: ttl}
	}
	soa := &dns.SOA{Hdr: hdr(dns.TypeSOA, 7200), Minttl: 3600}
	for _, tc := range []struct {
		name     string
		msg      dns.Msg
		txts     []string
		notFound bool
		ttl      time.Duration
		fails    bool
	}{
		{name: "records", msg: dns.Msg{Answer: []dns.RR{
			&dns.CNAME{Hdr: hdr(dns.TypeCNAME, 20), Target: "x."},
			&dns.TXT{Hdr: hdr(dns.TypeTXT, 300), Txt: []string{"a", "b"}},
			&dns.TXT{Hdr: hdr(dns.TypeTXT, 300), Txt: []string{"c"}},
		}}, txts: []string{"ab", "c"}, ttl: 20 * time.Second},
		{name: "long ttl", msg: dns.Msg{Answer: []dns.RR{&dns.TXT{Hdr: hdr(dns.TypeTXT, 86400), Txt: []string{"a"}}}},
			txts: []string{"a"}, ttl: time.Hour},
		{name: "no data", msg: dns.Msg{Ns: []dns.RR{soa}}, notFound: true, ttl: 5 * time.Minute},
		{name: "nxdomain without soa", msg: dns.Msg{MsgHdr: dns.MsgHdr{Rcode: dns.RcodeNameError}}, notFound: true, ttl: time.Minute},
		{name: "refused", msg: dns.Msg{MsgHdr: dns.MsgHdr{Rcode: dns.RcodeRefused}}, fails: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := parseAnswer("k.example.com.", &tc.msg, now)
			if tc.fails {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if errors.Is(e.err, ErrNotFound) != tc.notFound || !slices.Equal(e.txts, tc.txts) {
				t.Errorf("got %q, %v", e.txts, e.err)
			}
			if ttl := e.expires.Sub(now); ttl != tc.ttl {
				t.Errorf("ttl = %v, want %v", ttl, tc.ttl)
			}
		})
	}
}
