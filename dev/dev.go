// Package dev runs the whole system in one process for development and
// demonstration: an embedded nats-server with JetStream, provisioning, the
// producer's SMTP and LMTP servers, a worker, and a loopback DNS server
// that serves the DKIM keys made by the demo (the built-in key source).
// The end-to-end tests drive the same wiring.
package dev

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/embedded"
	"github.com/mailscope/mailscope/keyserver"
	"github.com/mailscope/mailscope/producer"
	"github.com/mailscope/mailscope/provision"
	"github.com/mailscope/mailscope/workers"
)

// Config configures a development system.
type Config struct {
	// DataDir holds the embedded server's JetStream data. Default
	// "mailscope-dev" under the system temporary directory.
	DataDir string
	// NATSHost and NATSPort are where the embedded nats-server listens
	// for clients. Defaults "127.0.0.1" and 4222; port -1 picks a free one.
	NATSHost string
	NATSPort int
	// SMTPAddr and LMTPAddr are the producer's listen addresses.
	// Defaults "127.0.0.1:2525" and "127.0.0.1:2424".
	SMTPAddr, LMTPAddr string
	// DNSServer, when set ("host:port"), is used for DKIM key lookups
	// instead of the built-in key source.
	DNSServer string
	// KeyServerAddr is where the built-in key source (a DNS server)
	// listens. Default "127.0.0.1:0" (a free port).
	KeyServerAddr string
	// Worker is the worker configuration; its Auth.DNSServers is set from
	// DNSServer or the key source. Env defaults to "dev".
	Worker workers.Config
	// Producer is the producer configuration; its addresses, names and
	// logger are set from the fields above. Its zero Batch group-commits
	// mail, as a production producer does by default.
	Producer producer.Config
	// Provision is the provisioning configuration. Default: single node.
	Provision provision.Config
	// CredentialsDir holds every role's NKey seed (access.Keyring),
	// made on the first start and kept, so the operator's nats context
	// stays valid across restarts. Default DataDir/credentials.
	CredentialsDir string
	// MonitorPort, when not 0, serves the embedded nats-server's
	// monitoring endpoint (/jsz: what KEDA reads) on NATSHost; -1 picks
	// a free port. Default 0: none (`mailscope dev` serves it on 8222).
	MonitorPort int
	// Logger for every part. Default slog.Default().
	Logger *slog.Logger
}

// System is a running development system.
type System struct {
	// NATS is the embedded server; URL its client URL.
	NATS *embedded.Server
	URL  string
	// Conn is a connection as the operator, for callers (tests, the
	// demo): it may write flag rules and read everything, no more.
	Conn *nats.Conn
	JS   jetstream.JetStream
	// Credentials holds every role's NKey seed; Connect connects as one.
	Credentials *access.Keyring
	// Keys is the built-in key source; nil when DNSServer was given.
	Keys *keyserver.Server
	// DNSServer is the DNS server workers query.
	DNSServer string
	// SMTPAddr and LMTPAddr are the producer's bound addresses.
	SMTPAddr, LMTPAddr string
	// Producer is the in-process producer.
	Producer *producer.Producer
	// Worker is the in-process worker.
	Worker *workers.Worker
	// Config is the effective configuration.
	Config Config

	cancel context.CancelFunc
	wg     sync.WaitGroup
	errs   chan error
	// natsConfig is what the embedded server was started with.
	natsConfig embedded.Config
	mu         sync.Mutex
	conns      []*nats.Conn
}

// Start brings the whole system up and returns once the worker has
// loaded the flag rules and takes mail. Close stops it.
func Start(ctx context.Context, cfg Config) (_ *System, err error) {
	if cfg.DataDir == "" {
		cfg.DataDir = filepath.Join(os.TempDir(), "mailscope-dev")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.KeyServerAddr == "" {
		cfg.KeyServerAddr = "127.0.0.1:0"
	}
	if cfg.Worker.Env == "" {
		cfg.Worker.Env = "dev"
	}
	if cfg.CredentialsDir == "" {
		cfg.CredentialsDir = filepath.Join(cfg.DataDir, "credentials")
	}
	cfg.Worker.Logger = cfg.Logger
	cfg.Worker.Names = cfg.Provision.WithDefaults().Names
	s := &System{Config: cfg, errs: make(chan error, 2)}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.Credentials, err = access.OpenKeyring(cfg.CredentialsDir, append(access.Roles(), access.LoadTest)...); err != nil {
		return nil, fmt.Errorf("dev: %w", err)
	}
	s.natsConfig = embedded.Config{Host: cfg.NATSHost, Port: cfg.NATSPort, HTTPPort: cfg.MonitorPort,
		StoreDir: cfg.DataDir, Users: s.Credentials.PublicKeys(), Names: cfg.Worker.Names}
	s.NATS, err = embedded.Start(s.natsConfig)
	if err != nil {
		return nil, err
	}
	s.URL = s.NATS.ClientURL()
	if s.Conn, err = s.Connect(access.Operator); err != nil {
		return nil, err
	}
	if s.JS, err = jetstream.New(s.Conn); err != nil {
		return nil, err
	}
	if err := s.provision(ctx); err != nil {
		return nil, err
	}

	s.DNSServer = cfg.DNSServer
	if s.DNSServer == "" {
		if s.Keys, err = keyserver.Start(cfg.KeyServerAddr); err != nil {
			return nil, fmt.Errorf("dev: key source: %w", err)
		}
		s.DNSServer = s.Keys.Addr()
	}
	cfg.Worker.Auth.DNSServers = []string{s.DNSServer}

	pnc, err := s.Connect(access.Producer)
	if err != nil {
		return nil, err
	}
	pcfg := cfg.Producer
	pcfg.SMTPAddr, pcfg.LMTPAddr, pcfg.Names, pcfg.Logger = cfg.SMTPAddr, cfg.LMTPAddr, cfg.Worker.Names, cfg.Logger
	p, err := producer.New(pcfg, pnc)
	if err != nil {
		return nil, err
	}
	if err := p.Listen(); err != nil {
		return nil, err
	}
	s.SMTPAddr, s.LMTPAddr = p.Addr(false), p.Addr(true)
	s.Producer = p

	wnc, err := s.Connect(access.Worker)
	if err != nil {
		return nil, err
	}
	if s.Worker, err = workers.New(ctx, cfg.Worker, wnc); err != nil {
		return nil, err
	}

	runCtx, cancelRun := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel = cancelRun
	s.run(func() error { return p.Run(runCtx) })
	s.run(func() error { return s.Worker.Run(runCtx) })

	ready := time.NewTicker(5 * time.Millisecond)
	defer ready.Stop()
	deadline := time.After(30 * time.Second)
	for !s.Worker.Ready() {
		select {
		case err := <-s.errs:
			return nil, fmt.Errorf("dev: %w", err)
		case <-deadline:
			return nil, errors.New("dev: worker not ready after 30s")
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-ready.C:
		}
	}
	return s, nil
}

// provision runs provisioning as the provisioner, on a connection of
// its own that ends with it.
func (s *System) provision(ctx context.Context) error {
	nc, err := s.Connect(access.Provisioner)
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return provision.Run(pctx, js, s.Config.Provision)
}

// Connect connects to the embedded server as role r, with r's
// credentials and inbox prefix; Close closes the connection. It is how
// every part of the system connects, so a permission the system lacks
// fails in development and in the tests.
func (s *System) Connect(r access.Role, opts ...nats.Option) (*nats.Conn, error) {
	ropts, err := s.Credentials.Options(r)
	if err != nil {
		return nil, err
	}
	// Fast reconnects, no reconnect buffer: see access.ReconnectOptions.
	all := append(append(access.ReconnectOptions(), nats.Name("mailscope-"+string(r))), ropts...)
	nc, err := nats.Connect(s.URL, append(all, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("dev: connect to %s as %s: %w", s.URL, r, err)
	}
	s.mu.Lock()
	s.conns = append(s.conns, nc)
	s.mu.Unlock()
	return nc, nil
}

func (s *System) run(f func() error) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := f(); err != nil {
			s.errs <- err
		}
	}()
}

// Err returns a channel that receives the first error of the producer or
// the worker, if either stops on its own.
func (s *System) Err() <-chan error { return s.errs }

// Close stops the producer and the worker (letting mail in progress
// finish), then the servers.
func (s *System) Close() {
	if s.cancel != nil {
		s.cancel()
	}
	s.wg.Wait()
	s.mu.Lock()
	for _, nc := range s.conns {
		nc.Close()
	}
	s.mu.Unlock()
	if s.Keys != nil {
		s.Keys.Close()
	}
	if s.NATS != nil {
		s.NATS.Close()
	}
}

// NATSContextName is the nats CLI context `mailscope dev` writes: the
// operator's credentials on the embedded server.
const NATSContextName = "mailscope-dev"

// WriteNATSContext writes the operator's nats CLI context,
// NATSContextName, under root (access.NATSConfigRoot for the user's own)
// and returns its path. `nats context select mailscope-dev` then makes
// every `nats` command act as the operator, as a production operator's
// context does.
func (s *System) WriteNATSContext(root string) (string, error) {
	c := s.Credentials.NATSContext(access.Operator, s.URL, "mailscope dev: the operator on the embedded nats-server")
	return c.Write(root, NATSContextName)
}
