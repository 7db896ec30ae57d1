// Package systest holds what the tests that drive a running system share:
// an embedded nats-server to talk to, a log of outcome events to wait on,
// and a wait on a condition. It is for tests only, like net/http/httptest.
package systest

import (
	"encoding/json"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/embedded"
)

// Wait bounds every wait of these helpers; it is a safety net against
// hangs, never a measurement.
const Wait = 60 * time.Second

// Env is an embedded nats-server for one test, with the credentials of
// every role (access.Roles and access.LoadTest) and of a test-only admin
// user; it ends with the test.
type Env struct {
	// Server is the running server; URL its client URL.
	Server *embedded.Server
	URL    string
	// Keys holds every role's seed (and "admin.nk").
	Keys *access.Keyring
}

// Start starts an embedded nats-server for the test, with its
// monitoring endpoint on a free loopback port.
func Start(t testing.TB) *Env {
	t.Helper()
	return StartWith(t, embedded.Config{})
}

// StartWith is Start with more of the server's configuration
// (MaxPayload, Names ...); its Port, HTTPPort, StoreDir, Users and
// AdminKey are the test's, whatever cfg says.
func StartWith(t testing.TB, cfg embedded.Config) *Env {
	t.Helper()
	keys, err := access.OpenKeyring(t.TempDir(), append(access.Roles(), access.LoadTest, admin)...)
	if err != nil {
		t.Fatal(err)
	}
	users := keys.PublicKeys()
	delete(users, admin)
	cfg.Port, cfg.HTTPPort, cfg.StoreDir = -1, -1, t.TempDir()
	cfg.Users, cfg.AdminKey = users, keys.PublicKey(admin)
	srv, err := embedded.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return &Env{Server: srv, URL: srv.ClientURL(), Keys: keys}
}

// admin is the test-only user with every permission.
const admin access.Role = "admin"

// Conn connects as role r (its key, its inbox prefix, the roles'
// reconnect behaviour); the connection ends with the test.
func (e *Env) Conn(t testing.TB, r access.Role, opts ...nats.Option) *nats.Conn {
	t.Helper()
	ropts, err := e.Keys.Options(r)
	if err != nil {
		t.Fatal(err)
	}
	// The roles' reconnect behaviour (access.ReconnectOptions) unless
	// opts say otherwise.
	all := append(append(access.ReconnectOptions(), ropts...), nats.Name("test-"+string(r)))
	nc, err := nats.Connect(e.URL, append(all, opts...)...)
	if err != nil {
		t.Fatalf("connect as %s: %v", r, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// JetStream returns a JetStream client on a connection as role r.
func (e *Env) JetStream(t testing.TB, r access.Role) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(e.Conn(t, r))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// Admin returns a JetStream client of the test-only admin user, who may
// do anything: for tests of one component apart from the system (streams
// of their own). Tests of the system's wiring connect as its roles.
func (e *Env) Admin(t testing.TB) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(e.URL, nats.Name("test-admin"), mustNkey(t, e.Keys.SeedFile(admin)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

func mustNkey(t testing.TB, seedFile string) nats.Option {
	t.Helper()
	opt, err := nats.NkeyOptionFromSeed(seedFile)
	if err != nil {
		t.Fatal(err)
	}
	return opt
}

// JetStream starts an embedded nats-server for the test and returns its
// URL and the admin's JetStream client (see Env.Admin); both end with
// the test.
func JetStream(t *testing.T) (string, jetstream.JetStream) {
	t.Helper()
	e := Start(t)
	return e.URL, e.Admin(t)
}

// WaitFor waits until cond holds, looking every 5ms, and fails the test
// after Wait.
func WaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(Wait)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		}
	}
}

// Outcomes records every outcome event published on mail.outcome.>,
// under a key the test chooses (the mail id, its first recipient...), and
// checks each on arrival: JSON, the subject of its disposition, the
// mail's id as Nats-Msg-Id.
type Outcomes struct {
	key    func(contracts.Outcome) string
	mu     sync.Mutex
	byKey  map[string][]contracts.Outcome
	change chan struct{}
}

// ByID keys outcomes by mail id; ByRcpt by first envelope recipient.
func ByID(o contracts.Outcome) string { return o.ID }

// ByRcpt keys outcomes by their first envelope recipient.
func ByRcpt(o contracts.Outcome) string {
	if len(o.Envelope.RcptTo) == 0 {
		return ""
	}
	return o.Envelope.RcptTo[0]
}

// NewOutcomes subscribes on nc before it returns, so that no event
// published afterwards is missed.
func NewOutcomes(t *testing.T, nc *nats.Conn, key func(contracts.Outcome) string) *Outcomes {
	t.Helper()
	l := newOutcomes(key)
	sub, err := nc.Subscribe("mail.outcome.>", func(m *nats.Msg) { l.record(t, m.Subject, m.Header, m.Data) })
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Unsubscribe() })
	return l
}

// NewStoredOutcomes reads the outcome stream from its first event on.
// Unlike NewOutcomes it misses nothing published while a connection was
// away, and records each stored event once.
func NewStoredOutcomes(t *testing.T, js jetstream.JetStream, stream string, key func(contracts.Outcome) string) *Outcomes {
	t.Helper()
	l := newOutcomes(key)
	cons, err := js.OrderedConsumer(t.Context(), stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	cc, err := cons.Consume(func(m jetstream.Msg) { l.record(t, m.Subject(), m.Headers(), m.Data()) })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cc.Stop)
	return l
}

func newOutcomes(key func(contracts.Outcome) string) *Outcomes {
	return &Outcomes{key: key, byKey: map[string][]contracts.Outcome{}, change: make(chan struct{})}
}

func (l *Outcomes) record(t *testing.T, subject string, h nats.Header, data []byte) {
	var o contracts.Outcome
	if err := json.Unmarshal(data, &o); err != nil {
		t.Errorf("outcome on %s is not JSON: %v", subject, err)
		return
	}
	if subject != "mail.outcome."+string(o.Disposition) {
		t.Errorf("outcome with disposition %s on subject %s", o.Disposition, subject)
	}
	if got := h.Get(nats.MsgIdHdr); got != o.ID {
		t.Errorf("outcome %s published with %s %q", o.ID, nats.MsgIdHdr, got)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	k := l.key(o)
	l.byKey[k] = append(l.byKey[k], o)
	close(l.change)
	l.change = make(chan struct{})
}

// All returns a copy of every event recorded so far, by key.
func (l *Outcomes) All() map[string][]contracts.Outcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string][]contracts.Outcome, len(l.byKey))
	for k, v := range l.byKey {
		out[k] = append([]contracts.Outcome(nil), v...)
	}
	return out
}

// Wait waits until n events were recorded under key and returns them
// all.
func (l *Outcomes) Wait(t *testing.T, key string, n int) []contracts.Outcome {
	t.Helper()
	deadline := time.After(Wait)
	for {
		l.mu.Lock()
		got, ch := l.byKey[key], l.change
		l.mu.Unlock()
		if len(got) >= n {
			return got
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("%d outcome events for %s after %v, want %d", len(got), key, Wait, n)
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		}
	}
}

// Nth waits for the n-th (from 1) event under key.
func (l *Outcomes) Nth(t *testing.T, key string, n int) contracts.Outcome {
	t.Helper()
	return l.Wait(t, key, n)[n-1]
}

// First waits for the first event under key.
func (l *Outcomes) First(t *testing.T, key string) contracts.Outcome {
	t.Helper()
	return l.Nth(t, key, 1)
}

// WaitDrained waits until the workers consumer has nothing pending or
// awaiting an ack and the work queue MAIL is empty: every mail taken to
// its end. It fails the test if that does not happen within Wait.
func WaitDrained(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	n := contracts.DefaultNames()
	cons, err := js.Consumer(t.Context(), n.MailStream, n.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	stream, err := js.Stream(t.Context(), n.MailStream)
	if err != nil {
		t.Fatal(err)
	}
	WaitFor(t, "the work queue to drain", func() bool {
		ci, err := cons.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		si, err := stream.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return ci.NumPending == 0 && ci.NumAckPending == 0 && si.State.Msgs == 0
	})
}

// FreePorts returns n loopback TCP ports that were free a moment ago, all
// different (held open together while they are picked). Another process
// may still take one before it is used.
func FreePorts(t testing.TB, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}
