package dev_test

import (
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/dev"
	"github.com/mailscope/mailscope/keyserver"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/testkit"
	"github.com/mailscope/mailscope/workers"
)

// wait bounds every wait for a signal in these tests.
const wait = systest.Wait

// bundle is a running system and what the tests need to drive it.
type bundle struct {
	sys      *dev.System
	keys     *keyserver.Server // the test's own DNS server on loopback
	kv       jetstream.KeyValue
	rsaKey   crypto.Signer // example.com, selector s1
	edKey    crypto.Signer // partner.example, selector ed
	outcomes *systest.Outcomes
}

// setup starts the whole system as the binary's dev command does, with
// DKIM keys served by a DNS server the test starts on loopback.
func setup(t *testing.T, wcfg workers.Config) *bundle {
	t.Helper()
	return setupDev(t, dev.Config{Worker: wcfg})
}

// setupDev is setup with more of the system's configuration; data
// directory, DNS server and logger are the test's, and so are the
// producer's addresses unless cfg sets them (loopback, free ports).
func setupDev(t *testing.T, cfg dev.Config) *bundle {
	t.Helper()
	keys, err := keyserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keys.Close() })
	b := &bundle{keys: keys}
	b.rsaKey = newKey(t, "rsa", keys, "s1", "example.com")
	b.edKey = newKey(t, "ed25519", keys, "ed", "partner.example")

	if cfg.Worker.Env == "" {
		cfg.Worker.Env = "e2e"
	}
	cfg.DataDir = t.TempDir()
	cfg.NATSPort = -1
	if cfg.SMTPAddr == "" {
		cfg.SMTPAddr = "127.0.0.1:0"
	}
	if cfg.LMTPAddr == "" {
		cfg.LMTPAddr = "127.0.0.1:0"
	}
	cfg.DNSServer = keys.Addr()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	sys, err := dev.Start(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sys.Close)
	b.sys = sys
	if b.kv, err = sys.JS.KeyValue(t.Context(), "mail_flags"); err != nil {
		t.Fatal(err)
	}
	b.outcomes = systest.NewOutcomes(t, sys.Conn, systest.ByRcpt)
	return b
}

func newKey(t *testing.T, alg string, keys *keyserver.Server, selector, domain string) crypto.Signer {
	t.Helper()
	k, err := testkit.GenerateKey(alg, 0)
	if err != nil {
		t.Fatal(err)
	}
	txt, err := testkit.TXTRecord(k)
	if err != nil {
		t.Fatal(err)
	}
	keys.SetTXT(testkit.DNSName(selector, domain), 300, txt)
	return k
}

// putRules stores a flag's rules and waits until the worker's snapshot
// holds that revision.
func (b *bundle) putRules(t *testing.T, flag, text string) uint64 {
	t.Helper()
	rev, err := b.kv.PutString(t.Context(), flag, text)
	if err != nil {
		t.Fatal(err)
	}
	b.waitStore(t, fmt.Sprintf("%s at revision %d", flag, rev), func(s *rules.Store) bool {
		rs := s.Snapshot().RuleSet(flag)
		return rs != nil && rs.Revision >= rev
	})
	return rev
}

// waitStore waits, on the store's change signal, until cond holds.
func (b *bundle) waitStore(t *testing.T, what string, cond func(*rules.Store) bool) {
	t.Helper()
	store := b.sys.Worker.Rules()
	deadline := time.After(wait)
	for {
		ch := store.Changed()
		if cond(store) {
			return
		}
		select {
		case <-ch:
		case <-deadline:
			t.Fatalf("worker rules never reached: %s", what)
		}
	}
}

// mail makes a mail to rcpt, signed when key is not nil.
func mail(t *testing.T, rcpt, subject string, key crypto.Signer, domain, selector string, extra ...string) []byte {
	t.Helper()
	raw := testkit.SampleMail("Alice <alice@example.com>", rcpt, subject, "Hello "+rcpt+".\r\n",
		time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), strings.ReplaceAll(rcpt, "@", ".")+"@example.com")
	if len(extra) > 0 {
		raw = append([]byte(strings.Join(extra, "\r\n")+"\r\n"), raw...)
	}
	if key == nil {
		return raw
	}
	signed, err := testkit.Sign(raw, testkit.SignOptions{Domain: domain, Selector: selector, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// sendSMTP sends raw over SMTP and fails the test unless it got 250.
func (b *bundle) sendSMTP(t *testing.T, raw []byte, rcpts ...string) {
	t.Helper()
	if err := dev.SendSMTP(b.sys.SMTPAddr, "alice@example.com", rcpts, raw); err != nil {
		t.Fatalf("SMTP send to %v: %v", rcpts, err)
	}
}

// sendLMTP sends raw over LMTP and returns each recipient's reply code.
func (b *bundle) sendLMTP(t *testing.T, raw []byte, rcpts ...string) map[string]int {
	t.Helper()
	conn, err := net.Dial("tcp", b.sys.LMTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	c := smtp.NewClientLMTP(conn)
	defer c.Close()
	if err := c.Hello("lmtp-client.test"); err != nil {
		t.Fatal(err)
	}
	if err := c.Mail("alice@example.com", nil); err != nil {
		t.Fatal(err)
	}
	for _, r := range rcpts {
		if err := c.Rcpt(r, nil); err != nil {
			t.Fatal(err)
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(raw); err != nil {
		t.Fatal(err)
	}
	resp, err := w.CloseWithLMTPResponse()
	codes := map[string]int{}
	var perRcpt smtp.LMTPDataError
	if errors.As(err, &perRcpt) {
		for r, e := range perRcpt {
			codes[r] = e.Code
		}
	} else if err != nil {
		t.Fatalf("LMTP DATA: %v", err)
	}
	for r := range resp {
		codes[r] = 250
	}
	return codes
}

// flag returns the decision recorded for flag in o, failing if absent.
func flag(t *testing.T, o contracts.Outcome, name string) contracts.FlagDecision {
	t.Helper()
	for _, f := range o.Flags {
		if f.Flag == name {
			return f
		}
	}
	t.Fatalf("outcome %s did not consult %s; flags: %+v", o.ID, name, o.Flags)
	return contracts.FlagDecision{}
}

// wantRule checks that flag was decided by the rule on line of its key.
func wantRule(t *testing.T, o contracts.Outcome, name, value string, line int) {
	t.Helper()
	f := flag(t, o, name)
	if f.Value != value {
		t.Errorf("%s = %q, want %q", name, f.Value, value)
	}
	switch {
	case line == 0 && f.Rule != nil:
		t.Errorf("%s decided by rule %+v, want the default", name, *f.Rule)
	case line != 0 && f.Rule == nil:
		t.Errorf("%s decided by the default, want line %d", name, line)
	case line != 0 && f.Rule.Line != line:
		t.Errorf("%s decided by line %d, want line %d", name, f.Rule.Line, line)
	}
}

// wantDKIM checks the one DKIM result of o.
func wantDKIM(t *testing.T, o contracts.Outcome, domain, selector, alg, result string) {
	t.Helper()
	if len(o.Auth.DKIM) != 1 {
		t.Fatalf("DKIM results %+v, want one", o.Auth.DKIM)
	}
	d := o.Auth.DKIM[0]
	if d.Domain != domain || d.Selector != selector || d.Algorithm != alg || d.Result != result {
		t.Errorf("DKIM result %+v, want d=%s s=%s a=%s %s", d, domain, selector, alg, result)
	}
	if result != contracts.ResultPass && result != contracts.ResultNone && d.Reason == "" {
		t.Errorf("DKIM result %s without a reason", result)
	}
	if !strings.Contains(o.Auth.AuthenticationResults, "dkim="+result) {
		t.Errorf("Authentication-Results %q lacks dkim=%s", o.Auth.AuthenticationResults, result)
	}
}

func wantDisposition(t *testing.T, o contracts.Outcome, d contracts.Disposition, handler string) {
	t.Helper()
	if o.Disposition != d || o.Handler != handler {
		t.Errorf("disposition %s handler %q (reason %q), want %s handler %q", o.Disposition, o.Handler, o.Reason, d, handler)
	}
}

// streamCount returns the number of messages in a stream.
func (b *bundle) streamCount(t *testing.T, name string) uint64 {
	t.Helper()
	s, err := b.sys.JS.Stream(t.Context(), name)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.WithoutCancel(t.Context()))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// waitStatus watches this worker's entry in the status bucket until cond
// holds for it.
func (b *bundle) waitStatus(t *testing.T, cond func(contracts.WorkerStatus) bool) {
	t.Helper()
	kv, err := b.sys.JS.KeyValue(t.Context(), "mail_status")
	if err != nil {
		t.Fatal(err)
	}
	key := workers.StatusKey(b.sys.Worker.Status().Worker.Name)
	w, err := kv.Watch(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	deadline := time.After(wait)
	var last contracts.WorkerStatus
	for {
		select {
		case e := <-w.Updates():
			if e == nil {
				continue
			}
			if err := json.Unmarshal(e.Value(), &last); err != nil {
				t.Fatalf("status entry %s is not JSON: %v", key, err)
			}
			if cond(last) {
				return
			}
		case <-deadline:
			t.Fatalf("status entry %s never matched; last: %+v", key, last)
		}
	}
}

// conn connects to the system as role r, on a connection of the test's
// own (it outlives the system's Close and ends with the test).
func (b *bundle) conn(t *testing.T, r access.Role, opts ...nats.Option) *nats.Conn {
	t.Helper()
	ropts, err := b.sys.Credentials.Options(r)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(b.sys.URL, append(ropts, opts...)...)
	if err != nil {
		t.Fatalf("connect as %s: %v", r, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// js is a JetStream client on a connection as role r.
func (b *bundle) js(t *testing.T, r access.Role) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(b.conn(t, r))
	if err != nil {
		t.Fatal(err)
	}
	return js
}
