package keyserver

import (
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/miekg/dns"
)

// Server is a running DNS server. It is safe for concurrent use.
type Server struct {
	addr string
	udp  *dns.Server
	tcp  *dns.Server

	mu      sync.Mutex
	records map[string]record
	faults  map[string]Fault
	queries map[string]int
	negTTL  uint32

	closeOnce sync.Once
	closeErr  error
}

// record is the TXT record set of one name.
type record struct {
	ttl uint32
	txt string
}

// DefaultNegativeTTL is the SOA minimum sent with negative answers
// (NXDOMAIN and no-data) until [Server.SetNegativeTTL] changes it.
const DefaultNegativeTTL = 60

// bindAttempts is how often Start tries to find a port free for both UDP
// and TCP when addr has port 0.
const bindAttempts = 10

// Start starts a server listening on addr for UDP and TCP on the same
// port, for example "127.0.0.1:0" for a free port on loopback. It returns
// once both listeners serve.
func Start(addr string) (*Server, error) {
	pc, ln, err := listen(addr)
	if err != nil {
		return nil, err
	}
	s := &Server{
		addr:    pc.LocalAddr().String(),
		records: make(map[string]record),
		faults:  make(map[string]Fault),
		queries: make(map[string]int),
		negTTL:  DefaultNegativeTTL,
	}
	h := dns.HandlerFunc(s.serveDNS)
	started := make(chan struct{}, 2)
	notify := func() { started <- struct{}{} }
	s.udp = &dns.Server{PacketConn: pc, Handler: h, NotifyStartedFunc: notify}
	s.tcp = &dns.Server{Listener: ln, Handler: h, NotifyStartedFunc: notify}
	errc := make(chan error, 2)
	for _, srv := range []*dns.Server{s.udp, s.tcp} {
		go func() { errc <- srv.ActivateAndServe() }()
	}
	for range 2 {
		select {
		case <-started:
		case err := <-errc:
			pc.Close()
			ln.Close()
			return nil, fmt.Errorf("keyserver: serve: %w", err)
		}
	}
	return s, nil
}

// listen binds UDP first, then TCP on the same port. With port 0 the
// kernel picks the UDP port, which may be taken for TCP; it then retries
// with a new port a few times.
func listen(addr string) (net.PacketConn, net.Listener, error) {
	var lastErr error
	for range bindAttempts {
		pc, err := net.ListenPacket("udp", addr)
		if err != nil {
			return nil, nil, fmt.Errorf("keyserver: listen udp: %w", err)
		}
		ln, err := net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			return pc, ln, nil
		}
		pc.Close()
		lastErr = err
		if _, port, _ := net.SplitHostPort(addr); port != "0" {
			break
		}
	}
	return nil, nil, fmt.Errorf("keyserver: listen tcp: %w", lastErr)
}

// Addr returns the address the server listens on, "127.0.0.1:PORT" for a
// server started on "127.0.0.1:0".
func (s *Server) Addr() string { return s.addr }

// Close stops the server. Calling it again returns the first result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = errors.Join(s.udp.Shutdown(), s.tcp.Shutdown())
	})
	return s.closeErr
}
