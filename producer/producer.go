// Package producer receives mail from an MTA over SMTP or LMTP and puts
// it on the mail stream. It answers 250 only after JetStream has
// acknowledged the mail; 451 4.3.0 when it did not (NATS down, timeout,
// stream full), so the MTA keeps the mail and retries; 552 5.3.4 for mail
// over the size limit.
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
)

// Producer runs the SMTP and LMTP servers.
type Producer struct {
	cfg     Config
	pub     *Publisher
	met     metrics
	claims  claimBucket
	servers []*smtp.Server
	lns     []net.Listener
}

// New returns a Producer publishing through nc. It does not listen yet.
func New(cfg Config, nc *nats.Conn) (*Producer, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("producer: %w", err)
	}
	cfg = cfg.WithDefaults(nc.MaxPayload())
	pub := NewPublisher(js, cfg.Names.MailSubject, cfg.PublishTimeout)
	pub.useBatching(cfg.Batch)
	return &Producer{cfg: cfg, pub: pub, met: newMetrics()}, nil
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
		p.lns = append(p.lns, ln)
		p.servers = append(p.servers, p.newServer(l.lmtp))
	}
	return nil
}

func (p *Producer) closeListeners() {
	for _, ln := range p.lns {
		ln.Close()
	}
	p.lns, p.servers = nil, nil
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

func (p *Producer) newServer(lmtp bool) *smtp.Server {
	protocol := "smtp"
	if lmtp {
		protocol = "lmtp"
	}
	s := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		return &session{p: p, protocol: protocol, client: c.Conn().RemoteAddr().String(), conn: c}, nil
	}))
	s.LMTP = lmtp
	s.Domain = p.cfg.Domain
	s.MaxMessageBytes = p.cfg.MaxSize
	s.MaxRecipients = p.cfg.MaxRecipients
	s.ReadTimeout = p.cfg.ReadTimeout
	s.WriteTimeout = p.cfg.WriteTimeout
	s.EnableSMTPUTF8 = true
	s.ErrorLog = slogPrinter{p.cfg.Logger}
	return s
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
			if err := s.Serve(p.lns[i]); err != nil && !errors.Is(err, smtp.ErrServerClosed) {
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
			s.Close()
		}
	}
	wg.Wait()
	return err
}
