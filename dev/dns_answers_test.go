package dev_test

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/mailscope/mailscope/auth"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/dev"
	"github.com/mailscope/mailscope/provision"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/testkit"
	"github.com/mailscope/mailscope/workers"
)

// oddDNS answers, over UDP only, what real DNS servers sometimes do and
// the keyserver never does: NXDOMAIN without an SOA, NOERROR without
// data, two TXT records for one key, a truncated answer whose TCP retry
// finds no server, and an rcode no standard names.
func oddDNS(t *testing.T, records map[string]string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, req *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(req)
		name := req.Question[0].Name
		txt := func(v string) dns.RR {
			return &dns.TXT{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 300}, Txt: []string{v}}
		}
		switch sel, _, _ := strings.Cut(name, "."); sel {
		case "nosoa":
			m.Rcode = dns.RcodeNameError
		case "nodata":
		case "two":
			m.Answer = []dns.RR{txt(records["two"]), txt(records["two"])}
		case "trunc":
			m.Truncated = true
		case "odd":
			m.Rcode = 12 // unassigned (RFC 6895)
		default:
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

// TestOddDNSAnswers: through the real wiring with a staging key bucket
// and a DNS server that answers oddly, a missing key answered NXDOMAIN
// without an SOA and one answered NOERROR without data are permerrors; a
// name with two key records is a permerror too (RFC 6376 3.6.2.2); a
// truncated answer whose TCP retry finds no server and an unknown rcode
// are temperrors, the mail held for DNS until DNSHoldMax and then
// decided with dkim=temperror recorded. The staging key bucket, which
// has none of these keys, is asked first. Rules on trust decide every
// mail.
func TestOddDNSAnswers(t *testing.T) {
	const bucket = "mail_dkim_keys"
	k, err := testkit.GenerateKey("ed25519", 0)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := testkit.TXTRecord(k)
	if err != nil {
		t.Fatal(err)
	}
	dnsAddr := oddDNS(t, map[string]string{"two": rec})
	sys, err := dev.Start(t.Context(), dev.Config{
		DataDir: t.TempDir(), NATSPort: -1, SMTPAddr: "127.0.0.1:0", LMTPAddr: "127.0.0.1:0", DNSServer: dnsAddr,
		Worker: workers.Config{Env: "e2e", MaxAttempts: 2, BackoffBase: time.Millisecond, BackoffMax: time.Millisecond, HoldDelay: 20 * time.Millisecond, DNSHoldMax: 300 * time.Millisecond,
			Auth: auth.Config{Timeout: 200 * time.Millisecond, Retries: -1}},
		Provision: provision.Config{Names: contracts.Names{KeyBucket: bucket}},
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sys.Close)
	b := &bundle{sys: sys}
	if b.kv, err = sys.JS.KeyValue(t.Context(), "mail_flags"); err != nil {
		t.Fatal(err)
	}
	b.outcomes = systest.NewOutcomes(t, sys.Conn, systest.ByRcpt)
	b.putRules(t, rules.FlagHandler, "trust:none 10 quarantine\n")

	send := func(sel string) contracts.Outcome {
		t.Helper()
		rcpt := sel + "@example.org"
		b.sendSMTP(t, mail(t, rcpt, "odd DNS", k, "odd.example", sel), rcpt)
		o := b.outcomes.First(t, rcpt)
		wantDisposition(t, o, contracts.Quarantined, "quarantine")
		return o
	}
	for _, c := range []struct{ sel, result string }{
		{"nosoa", contracts.ResultPermError},
		{"nodata", contracts.ResultPermError},
		{"two", contracts.ResultPermError},
		{"trunc", contracts.ResultTempError},
		{"odd", contracts.ResultTempError},
	} {
		wantDKIM(t, send(c.sel), "odd.example", c.sel, "ed25519-sha256", c.result)
	}
}
