package keyserver

import (
	"net"
	"strings"

	"github.com/miekg/dns"
)

// serveDNS answers one query.
func (s *Server) serveDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	if len(req.Question) != 1 || req.Opcode != dns.OpcodeQuery {
		m.SetRcode(req, dns.RcodeFormatError)
		w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	name := canonical(q.Name)
	_, overUDP := w.RemoteAddr().(*net.UDPAddr)

	s.mu.Lock()
	s.queries[name]++
	fault := s.faults[name]
	rec, found := s.records[name]
	negTTL := s.negTTL
	s.mu.Unlock()

	switch fault {
	case FaultTimeout:
		return
	case FaultServFail:
		m.SetRcode(req, dns.RcodeServerFailure)
		w.WriteMsg(m)
		return
	case FaultTCPOnly:
		if overUDP {
			m.SetReply(req)
			m.Authoritative = true
			m.Truncated = true
			w.WriteMsg(m)
			return
		}
	}

	m.SetReply(req)
	m.Authoritative = true
	switch {
	case !found:
		m.Rcode = dns.RcodeNameError
		m.Ns = []dns.RR{soa(name, negTTL)}
	case q.Qtype == dns.TypeTXT || q.Qtype == dns.TypeANY:
		m.Answer = []dns.RR{&dns.TXT{
			Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: rec.ttl},
			Txt: splitTXT(rec.txt),
		}}
	default:
		m.Ns = []dns.RR{soa(name, negTTL)}
	}
	if opt := req.IsEdns0(); opt != nil {
		m.SetEdns0(opt.UDPSize(), false)
	}
	if overUDP {
		// Like a real server: a response larger than the client's
		// buffer (512 bytes without EDNS0) is truncated with TC=1.
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil && int(opt.UDPSize()) > size {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	w.WriteMsg(m)
}

// soa returns the SOA record sent with negative answers for name. Its zone
// is the domain after "_domainkey." when there is one, else the root.
func soa(name string, ttl uint32) dns.RR {
	zone := "."
	if _, after, ok := strings.Cut(name, "._domainkey."); ok && after != "" {
		zone = after
	}
	return &dns.SOA{
		Hdr:     dns.RR_Header{Name: zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: ttl},
		Ns:      "ns.keyserver.invalid.",
		Mbox:    "hostmaster.keyserver.invalid.",
		Serial:  1,
		Refresh: 3600,
		Retry:   600,
		Expire:  86400,
		Minttl:  ttl,
	}
}
