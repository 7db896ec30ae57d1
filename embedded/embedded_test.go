package embedded_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/embedded"
	"github.com/mailscope/mailscope/systest"
)

// TestNoAnonymousServer: a server without users is refused, and one with
// users refuses a client without credentials and takes a role's.
func TestNoAnonymousServer(t *testing.T) {
	if _, err := embedded.Start(embedded.Config{Port: -1, StoreDir: t.TempDir()}); err == nil || !strings.Contains(err.Error(), "anonymous") {
		t.Fatalf("a server without users: %v, want a refusal naming anonymous clients", err)
	}
	keys, err := access.OpenKeyring(t.TempDir(), access.Observer)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := embedded.Start(embedded.Config{Port: -1, HTTPPort: -1, StoreDir: t.TempDir(), Users: keys.PublicKeys()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if !strings.HasPrefix(srv.MonitorURL(), "http://127.0.0.1:") {
		t.Errorf("monitor URL %q", srv.MonitorURL())
	}
	if nc, err := nats.Connect(srv.ClientURL()); err == nil {
		nc.Close()
		t.Fatal("an anonymous client was let in")
	}
	opts, err := keys.Options(access.Observer)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(srv.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("the observer: %v", err)
	}
	nc.Close()
}

// TestCluster: three nodes given each other's routes form a cluster whose
// JetStream keeps a stream of three replicas, one on each node, with a
// leader that the stream's info names.
func TestCluster(t *testing.T) {
	keys, err := access.OpenKeyring(t.TempDir(), access.Provisioner, access.Observer)
	if err != nil {
		t.Fatal(err)
	}
	ports := systest.FreePorts(t, 3)
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	var nodes []*embedded.Server
	for i, p := range ports {
		srv, err := embedded.Start(embedded.Config{Port: -1, StoreDir: t.TempDir(), Users: keys.PublicKeys(), ServerName: fmt.Sprintf("n%d", i+1),
			Cluster: embedded.Cluster{Name: "test", Port: p, Routes: routes}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Close)
		nodes = append(nodes, srv)
	}

	opts, err := keys.Options(access.Provisioner)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(nodes[2].ClientURL(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// The first stream waits for the cluster's JetStream to elect its
	// meta leader; until then creating it fails.
	var stream jetstream.Stream
	systest.WaitFor(t, "clustered JetStream to take a stream of 3 replicas", func() bool {
		stream, err = js.CreateOrUpdateStream(t.Context(), jetstream.StreamConfig{Name: "MAIL", Subjects: []string{"mail.incoming"}, Replicas: 3, Storage: jetstream.FileStorage})
		return err == nil
	})
	systest.WaitFor(t, "the stream's leader and its two followers", func() bool {
		info, err := stream.Info(t.Context())
		return err == nil && info.Cluster != nil && info.Cluster.Leader != "" && len(info.Cluster.Replicas) == 2
	})
	info, err := stream.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{info.Cluster.Leader: true}
	for _, r := range info.Cluster.Replicas {
		names[r.Name] = true
	}
	for _, n := range nodes {
		if !names[n.Name()] {
			t.Errorf("node %s holds no replica: leader %s, replicas %+v", n.Name(), info.Cluster.Leader, info.Cluster.Replicas)
		}
	}
	if info.Cluster.Name != "test" {
		t.Errorf("cluster name %q, want test", info.Cluster.Name)
	}
}

// TestClusterRefused: a cluster node without a name of its own, routes
// or a route port, or with a route that is not a route URL, is refused.
func TestClusterRefused(t *testing.T) {
	keys, err := access.OpenKeyring(t.TempDir(), access.Observer)
	if err != nil {
		t.Fatal(err)
	}
	route := []string{"nats-route://127.0.0.1:6222"}
	for _, c := range []struct {
		name    string
		cluster embedded.Cluster
	}{
		{"", embedded.Cluster{Name: "test", Port: -1, Routes: route}},
		{"n1", embedded.Cluster{Name: "test", Port: -1}},
		{"n1", embedded.Cluster{Name: "test", Routes: route}},
		{"n1", embedded.Cluster{Name: "test", Port: -1, Routes: []string{"127.0.0.1:6222"}}},
	} {
		name, c := c.name, c.cluster
		srv, err := embedded.Start(embedded.Config{Port: -1, StoreDir: t.TempDir(), Users: keys.PublicKeys(), ServerName: name, Cluster: c})
		if err == nil {
			srv.Close()
			t.Errorf("cluster %+v (server name %q) accepted", c, name)
		}
	}
}
