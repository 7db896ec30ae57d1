// Package embedded runs the real nats-server, with JetStream, inside the
// process: what `mailscope dev` and the end-to-end tests stand on.
package embedded

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Config configures the embedded server.
type Config struct {
	// Host to listen on. Default "127.0.0.1".
	Host string
	// Port for clients. Default 4222; -1 picks a free port.
	Port int
	// StoreDir holds JetStream data. Required; created if missing.
	StoreDir string
	// MaxPayload is the largest message the server accepts, in bytes.
	// Default 8 MiB (the nats-server default is 1 MiB).
	MaxPayload int32
	// NoSyncAlways turns off fsync-before-acknowledge. Default false: the
	// server fsyncs every write before it acknowledges it, so a mail the
	// producer answered 250 for survives a power loss. Setting it trades
	// that promise for throughput (see README, "Durability").
	NoSyncAlways bool
	// Logs enables the server's own log on stderr. Default off.
	Logs bool
	// ReadyTimeout bounds the wait for the server to accept clients.
	// Default 10 seconds.
	ReadyTimeout time.Duration
}

// Server is a running embedded nats-server.
type Server struct {
	*server.Server
}

// Start starts the server and waits until it accepts clients.
func Start(c Config) (*Server, error) {
	if c.StoreDir == "" {
		return nil, errors.New("embedded nats-server: StoreDir is required")
	}
	if err := os.MkdirAll(c.StoreDir, 0o750); err != nil {
		return nil, fmt.Errorf("embedded nats-server: %w", err)
	}
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	if c.Port == 0 {
		c.Port = 4222
	}
	if c.MaxPayload == 0 {
		c.MaxPayload = 8 << 20
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = 10 * time.Second
	}
	opts := &server.Options{
		ServerName: "mailscope-dev",
		Host:       c.Host,
		Port:       c.Port,
		JetStream:  true,
		StoreDir:   c.StoreDir,
		MaxPayload: c.MaxPayload,
		SyncAlways: !c.NoSyncAlways,
		NoSigs:     true,
		NoLog:      !c.Logs,
	}
	s, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats-server: %w", err)
	}
	if c.Logs {
		s.ConfigureLogger()
	}
	go s.Start()
	if !s.ReadyForConnections(c.ReadyTimeout) {
		s.Shutdown()
		return nil, fmt.Errorf("embedded nats-server: not ready after %s (is %s:%d in use?)", c.ReadyTimeout, c.Host, c.Port)
	}
	return &Server{s}, nil
}

// Close shuts the server down and waits for it to finish.
func (s *Server) Close() {
	s.Shutdown()
	s.WaitForShutdown()
}
