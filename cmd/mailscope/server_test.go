package main

import "testing"

// TestServerClusterFlagsRefused: cluster flags that cannot make a node
// are usage errors (exit 2) before anything starts.
func TestServerClusterFlagsRefused(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"--cluster", "127.0.0.1:6222"},
		{"--routes", "nats-route://127.0.0.1:6222"},
		{"--cluster-name", "c", "--cluster", "127.0.0.1:6222", "--routes", "nats-route://127.0.0.1:6222"},
		{"--cluster-name", "c", "--name", "n1", "--routes", "nats-route://127.0.0.1:6222"},
		{"--cluster-name", "c", "--name", "n1", "--cluster", "127.0.0.1:6222"},
		{"--cluster-name", "c", "--name", "n1", "--cluster", "127.0.0.1", "--routes", "nats-route://127.0.0.1:6222"},
		{"--cluster-name", "c", "--name", "n1", "--cluster", "127.0.0.1:0", "--routes", "nats-route://127.0.0.1:6222"},
	} {
		r := run(t, "", nil, nil, append([]string{"server", "--data-dir", dir, "--port", "-1"}, args...)...)
		if r.code != 2 {
			t.Errorf("server %q: exit %d, want 2 (%s)", args, r.code, r.stderr)
		}
	}
}
