// Package embedded runs the real nats-server, with JetStream, inside the
// process: what `mailscope dev` and the end-to-end tests stand on.
package embedded

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/contracts"
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
	// HTTPPort, when not 0, serves nats-server's monitoring endpoint
	// (/varz, /jsz, ...: what KEDA's nats-jetstream scaler reads) on
	// Host; -1 picks a free port. Default 0: none.
	HTTPPort int
	// Users are the clients the server takes: one NKey user per role
	// (role to public key, e.g. access.Keyring.PublicKeys), each with its
	// role's permissions (package access) in access.Account. Required
	// unless AdminKey is set: no mailscope server takes anonymous
	// clients.
	Users map[access.Role]string
	// Names are the names the permissions are derived for. Default
	// contracts.DefaultNames.
	Names contracts.Names
	// AdminKey, when set, is the public NKey of a user of access.Account
	// with every permission: for tests of one component apart from the
	// system (a stream of their own), never for a role. Default "".
	AdminKey string
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
	if len(c.Users) == 0 && c.AdminKey == "" {
		return nil, errors.New("embedded nats-server: no users: anonymous clients are refused, so give it the roles' keys")
	}
	opts, err := accountOptions(c)
	if err != nil {
		return nil, err
	}
	opts.ServerName = "mailscope-dev"
	opts.Host, opts.Port = c.Host, c.Port
	opts.JetStream, opts.StoreDir, opts.SyncAlways = true, c.StoreDir, !c.NoSyncAlways
	opts.MaxPayload = c.MaxPayload
	opts.NoSigs, opts.NoLog = true, !c.Logs
	opts.HTTPHost, opts.HTTPPort = c.Host, c.HTTPPort
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

// accountOptions parses the accounts and users of c with nats-server's
// own configuration parser, as a configuration file would give them.
func accountOptions(c Config) (*server.Options, error) {
	accounts := access.Accounts(c.Names, c.Users)
	if c.AdminKey != "" {
		acc := accounts[access.Account].(map[string]any)
		acc["users"] = append(acc["users"].([]any), map[string]any{"nkey": c.AdminKey})
	}
	conf, err := access.ConfigJSON(map[string]any{"accounts": accounts})
	if err != nil {
		return nil, err
	}
	opts := &server.Options{}
	if err := opts.ProcessConfigString(string(conf)); err != nil {
		return nil, fmt.Errorf("embedded nats-server: accounts: %w", err)
	}
	return opts, nil
}

// MonitorURL returns the base URL of the monitoring endpoint
// ("http://host:port"), or "" when Config.HTTPPort was 0.
func (s *Server) MonitorURL() string {
	addr := s.MonitorAddr()
	if addr == nil {
		return ""
	}
	return "http://" + addr.String()
}

// Close shuts the server down and waits for it to finish.
func (s *Server) Close() {
	s.Shutdown()
	s.WaitForShutdown()
}
