package embedded_test

import (
	"strings"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/embedded"
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
