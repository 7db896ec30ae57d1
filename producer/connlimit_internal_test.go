package producer

import (
	"net"
	"testing"
)

// TestClientKey: the per-client limit counts an IPv4 address, an
// IPv4-mapped address as its IPv4 one, and an IPv6 address by its /64.
func TestClientKey(t *testing.T) {
	for _, c := range []struct{ ip, want string }{
		{"192.0.2.7", "192.0.2.7"},
		{"::ffff:192.0.2.7", "192.0.2.7"},
		{"2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"},
		{"2001:db8:1:2:bbbb::9", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
	} {
		if got := clientKey(&net.TCPAddr{IP: net.ParseIP(c.ip), Port: 25}); got != c.want {
			t.Errorf("clientKey(%s) = %q, want %q", c.ip, got, c.want)
		}
	}
}

// TestConnSlots: a slot freed by one client is free for any, and the
// total counts every client.
func TestConnSlots(t *testing.T) {
	s := newConnSlots(3, 2)
	a1, _ := s.acquire("a")
	if r, _ := s.acquire("a"); r == nil {
		t.Fatal("second slot of a refused")
	}
	if _, why := s.acquire("a"); why != resultClientConns {
		t.Errorf("third of a: %q, want %s", why, resultClientConns)
	}
	if r, _ := s.acquire("b"); r == nil {
		t.Fatal("first slot of b refused")
	}
	if _, why := s.acquire("c"); why != resultConnections {
		t.Errorf("fourth in all: %q, want %s", why, resultConnections)
	}
	a1()
	if r, _ := s.acquire("c"); r == nil {
		t.Error("the freed slot was not given to c")
	}
}
