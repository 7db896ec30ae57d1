package producer

import (
	"fmt"
	"net"
	"sync"
	"time"
)

// connSlots counts the open connections of a Producer, SMTP and LMTP
// together, in total and per client (see clientKey).
type connSlots struct {
	max, maxClient int

	mu       sync.Mutex
	n        int
	byClient map[string]int
}

func newConnSlots(max, maxClient int) *connSlots {
	return &connSlots{max: max, maxClient: maxClient, byClient: map[string]int{}}
}

// acquire takes a slot for a connection from client. It returns the
// function that frees it, or the result a refusal is counted as.
func (s *connSlots) acquire(client string) (release func(), refused string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.n >= s.max:
		return nil, resultConnections
	case s.byClient[client] >= s.maxClient:
		return nil, resultClientConns
	}
	s.n++
	s.byClient[client]++
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.n--
		if s.byClient[client]--; s.byClient[client] == 0 {
			delete(s.byClient, client)
		}
	}, ""
}

// clientKey is what the per-client limit counts by: the IPv4 address
// (an IPv4-mapped IPv6 address is IPv4), or the /64 of an IPv6 address,
// since a single host is commonly given a whole /64.
func clientKey(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		return a.String()
	}
	if ip4 := tcp.IP.To4(); ip4 != nil {
		return ip4.String()
	}
	return tcp.IP.Mask(net.CIDRMask(64, 128)).String() + "/64"
}

// limitedListener hands go-smtp only the connections that get a slot,
// each wrapped in its guard; the others are answered 421 4.7.0 and
// closed without reaching go-smtp.
type limitedListener struct {
	net.Listener
	p        *Producer
	protocol string
	guard    *guardConfig
}

func (l *limitedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		release, refused := l.p.slots.acquire(clientKey(c.RemoteAddr()))
		if release == nil {
			l.p.met.mail(l.protocol, refused)
			go l.refuse(c, refused)
			continue
		}
		var g *guard
		g = newGuard(c, l.guard, func() { release(); l.p.open.remove(g) })
		l.p.open.add(g)
		return g, nil
	}
}

// refuse answers a connection over a limit and closes it. RFC 5321 3.8
// lets a server close after a 421; X.7.0 is RFC 3463's policy refusal.
func (l *limitedListener) refuse(c net.Conn, why string) {
	defer c.Close()
	what := "Too many connections"
	if why == resultClientConns {
		what = "Too many connections from your address"
	}
	c.SetWriteDeadline(time.Now().Add(l.p.cfg.WriteTimeout))
	fmt.Fprintf(c, "421 4.7.0 %s %s, try again later\r\n", l.p.cfg.Domain, what)
}
