package dev

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/nats-io/nats.go"

	"github.com/mailscope/mailscope/embedded"
)

// RestartNATS shuts the embedded nats-server down, calls between (which
// may be nil) while it is down, and starts it again on the same host and
// port with the same data directory, so that streams, consumers and
// buckets come back from disk. It returns once every connection of the
// system (Conn, the producer's and the worker's) is connected again: the
// clients reconnect on their own (access.ReconnectOptions), within their
// reconnect wait (100ms plus up to 100ms of jitter). Fault tests use it.
func (s *System) RestartNATS(ctx context.Context, between func()) error {
	addr, ok := s.NATS.Addr().(*net.TCPAddr)
	if !ok {
		return errors.New("dev: restart: the nats-server has no client listener")
	}
	// Listen before the shutdown, so that no reconnect goes unseen.
	s.mu.Lock()
	var conns []*nats.Conn
	for _, nc := range s.conns {
		if !nc.IsClosed() {
			conns = append(conns, nc)
		}
	}
	s.mu.Unlock()
	back := make([]chan nats.Status, len(conns))
	for i, nc := range conns {
		back[i] = nc.StatusChanged(nats.CONNECTED)
		defer nc.RemoveStatusListener(back[i])
	}
	c := s.natsConfig
	c.Port = addr.Port
	if mon := s.NATS.MonitorAddr(); mon != nil {
		c.HTTPPort = mon.Port
	}
	s.NATS.Close()
	if between != nil {
		between()
	}
	srv, err := embedded.Start(c)
	if err != nil {
		return fmt.Errorf("dev: restart nats-server on port %d: %w", addr.Port, err)
	}
	s.NATS = srv
	for i, nc := range conns {
		select {
		case <-back[i]:
		case <-ctx.Done():
			return fmt.Errorf("dev: restart: connection %q not back: %w", nc.Opts.Name, ctx.Err())
		}
	}
	return nil
}
