// Package embedded runs the real nats-server, with JetStream, inside the
// process: what `mailscope dev` and the end-to-end tests stand on.
package embedded

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
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
	// ServerName is the server's name: what a stream's Cluster.Leader
	// and Cluster.Replicas name. Default "mailscope-dev"; required, and
	// unique, on every node of a cluster.
	ServerName string
	// Cluster, when its Name is set, makes the server one node of a
	// NATS cluster with clustered JetStream (streams with replicas).
	// Default: none, a server of its own.
	Cluster Cluster
}

// Cluster says how a server joins a NATS cluster: where it listens for
// routes and where it finds the other nodes (each with its own
// Config.ServerName and StoreDir). JetStream runs clustered: a
// stream of R replicas keeps them on R nodes, with one leader elected
// by Raft.
type Cluster struct {
	// Name is the cluster's name, the same on every node. Required for a
	// cluster; empty: no cluster.
	Name string
	// Host is the address to listen on for routes from the other nodes.
	// Default Config.Host. Routes are not authenticated: listen on a
	// private network (loopback in tests) only.
	Host string
	// Port is the route port. Required for a cluster; -1 picks a free
	// one.
	Port int
	// Routes are the nodes' route URLs ("nats-route://127.0.0.1:6222").
	// Required (clustered JetStream refuses to start without routes); a
	// node's own URL among them is ignored, so every node can be given
	// the same list.
	Routes []string
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
	opts.ServerName = c.ServerName
	if opts.ServerName == "" {
		opts.ServerName = "mailscope-dev"
	}
	if c.Cluster.Name != "" {
		if err := clusterOptions(opts, c); err != nil {
			return nil, err
		}
	}
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

// clusterOptions makes opts a node of the cluster c.Cluster.
func clusterOptions(opts *server.Options, c Config) error {
	cl := c.Cluster
	if c.ServerName == "" {
		return errors.New("embedded nats-server: a cluster node needs a server name of its own")
	}
	if cl.Port == 0 {
		return errors.New("embedded nats-server: a cluster node needs a route port (-1: any free one)")
	}
	opts.Cluster.Name, opts.Cluster.Host, opts.Cluster.Port = cl.Name, cl.Host, cl.Port
	if opts.Cluster.Host == "" {
		opts.Cluster.Host = c.Host
	}
	if len(cl.Routes) == 0 {
		return errors.New("embedded nats-server: a cluster node needs routes (every node's nats-route:// URL; its own is ignored)")
	}
	for _, r := range cl.Routes {
		u, err := url.Parse(strings.TrimSpace(r))
		if err != nil || u.Scheme != "nats-route" || u.Port() == "" {
			return fmt.Errorf("embedded nats-server: route %q: want nats-route://HOST:PORT", r)
		}
		// A route to this node itself is detected and dropped by
		// nats-server.
		opts.Routes = append(opts.Routes, u)
	}
	return nil
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
