// Package producer receives mail from an MTA over SMTP or LMTP and puts
// it on the mail stream. It answers 250 only after JetStream has
// acknowledged the mail; 451 4.3.0 when it did not (NATS down, timeout,
// stream full), so the MTA keeps the mail and retries; 552 5.3.4 for mail
// over the size limit, and the permanent or closing replies of the other
// limits in docs/smtp.md (line and header sizes, connections, timeouts).
package producer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/emersion/go-smtp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
)

// Producer runs the SMTP and LMTP servers.
type Producer struct {
	cfg     Config
	pub     *Publisher
	met     metrics
	tracer  trace.Tracer
	claims  claimBucket
	slots   *connSlots
	open    openConns
	servers []*smtp.Server
	lns     []net.Listener // the listeners opened
	served  []net.Listener // what the servers accept from: lns, limited
}

// New returns a Producer publishing through nc. It does not listen yet.
func New(cfg Config, nc *nats.Conn) (*Producer, error) {
	// jetstream.New fails only on a bad option, and none is given.
	js, _ := jetstream.New(nc)
	cfg = cfg.WithDefaults(nc.MaxPayload())
	pub := NewPublisher(js, cfg.Names.MailSubject, cfg.PublishTimeout)
	pub.useBatching(cfg.Batch)
	return &Producer{cfg: cfg, pub: pub, met: newMetrics(), tracer: cfg.TracerProvider.Tracer(tracerName), slots: newConnSlots(cfg.MaxConnections, cfg.MaxClientConnections)}, nil
}

// Config returns the effective configuration, defaults applied.
func (p *Producer) Config() Config { return p.cfg }

// Listen opens the configured listeners. After it returns, SMTPAddr and
// LMTPAddr report the bound addresses (useful with port 0).
func (p *Producer) Listen() error {
	for _, l := range []struct {
		addr string
		lmtp bool
	}{{p.cfg.SMTPAddr, false}, {p.cfg.LMTPAddr, true}} {
		if l.addr == "-" {
			continue
		}
		ln, err := net.Listen("tcp", l.addr)
		if err != nil {
			p.closeListeners()
			return fmt.Errorf("producer: listen %s: %w", l.addr, err)
		}
		s, guard := p.newServer(l.lmtp)
		p.lns = append(p.lns, ln)
		p.served = append(p.served, &limitedListener{Listener: ln, p: p, protocol: protocolName(l.lmtp), guard: guard})
		p.servers = append(p.servers, s)
	}
	return nil
}

func (p *Producer) closeListeners() {
	for _, ln := range p.lns {
		ln.Close()
	}
	p.lns, p.served, p.servers = nil, nil, nil
}

func protocolName(lmtp bool) string {
	if lmtp {
		return "lmtp"
	}
	return "smtp"
}

// Addr returns the bound address of the SMTP (lmtp=false) or LMTP
// listener, or "" when it is disabled or Listen was not called.
func (p *Producer) Addr(lmtp bool) string {
	for i, s := range p.servers {
		if s.LMTP == lmtp {
			return p.lns[i].Addr().String()
		}
	}
	return ""
}

// newServer returns the go-smtp server of one protocol and the
// configuration of its connections' guards, which enforce the limits
// go-smtp does not (docs/smtp.md).
func (p *Producer) newServer(lmtp bool) (*smtp.Server, *guardConfig) {
	protocol := protocolName(lmtp)
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{p: p, protocol: protocol, client: c.Conn().RemoteAddr().String(), conn: c}, nil
	}))
	s.LMTP = lmtp
	s.Domain = p.cfg.Domain
	// go-smtp's DATA reader refuses a mail of exactly MaxMessageBytes:
	// it fails as soon as that many bytes are read, before it can see
	// the terminating dot. So go-smtp is given one byte more, the
	// session's reader enforces MaxSize exactly, Mail checks the SIZE
	// parameter against MaxSize, and the guard advertises SIZE MaxSize.
	s.MaxMessageBytes = p.cfg.MaxSize + 1
	s.MaxRecipients = p.cfg.MaxRecipients
	// go-smtp's line limit covers commands and DATA alike, and answers a
	// long DATA line with 451; the guard limits command lines and the
	// session's reader content lines instead.
	s.MaxLineLength = 0
	s.ReadTimeout = p.cfg.CommandTimeout
	s.WriteTimeout = p.cfg.WriteTimeout
	s.EnableSMTPUTF8 = true
	s.ErrorLog = slogPrinter{p.cfg.Logger}
	sizeLines := map[string][]byte{}
	for _, sep := range []string{"-", " "} {
		sizeLines[fmt.Sprintf("250%sSIZE %d\r\n", sep, s.MaxMessageBytes)] = fmt.Appendf(nil, "250%sSIZE %d\r\n", sep, p.cfg.MaxSize)
	}
	return s, &guardConfig{
		maxCommandLine: p.cfg.MaxCommandLine,
		dataTimeout:    p.cfg.DataTimeout,
		idleTimeout:    p.cfg.IdleTimeout,
		writeTimeout:   p.cfg.WriteTimeout,
		domain:         p.cfg.Domain,
		sizeLines:      sizeLines,
		event:          func(result string) { p.met.mail(protocol, result) },
	}
}

// Run serves until ctx is done, then stops accepting, lets transactions
// in progress finish (bounded by their timeouts) and returns. It calls
// Listen if that was not done.
func (p *Producer) Run(ctx context.Context) error {
	if p.lns == nil {
		if err := p.Listen(); err != nil {
			return err
		}
	}
	if len(p.servers) == 0 {
		return errors.New("producer: both SMTP and LMTP are disabled")
	}
	errc := make(chan error, len(p.servers))
	var wg sync.WaitGroup
	for i, s := range p.servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Serve(p.served[i]); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
				errc <- err
			}
		}()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	// Stop accepting first. go-smtp's Shutdown closes only the listeners
	// Serve has registered so far; one whose Serve goroutine had not yet
	// started when ctx was cancelled would otherwise stay open, its
	// Accept would never return and neither would Run. (Serve errors
	// after this point are the closed listeners and are not reported.)
	for _, ln := range p.lns {
		ln.Close()
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), p.cfg.WriteTimeout)
	defer cancel()
	for _, s := range p.servers {
		if err := s.Shutdown(shutdownCtx); errors.Is(err, context.DeadlineExceeded) {
			// Connections still open past the grace period are closed.
			p.open.closeAll()
		}
	}
	wg.Wait()
	return err
}
