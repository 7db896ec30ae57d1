package dev_test

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/dev"
	"github.com/mailscope/mailscope/producer"
	"github.com/mailscope/mailscope/rules"
)

// dialWireFrom is dialWire from the local address local, to port of
// host; the reply to the connection is returned unread.
func dialWireFrom(t *testing.T, local, host, port string) *wire {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}}
	c, err := d.Dial("tcp", net.JoinHostPort(host, port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &wire{t: t, c: c, r: bufio.NewReader(c)}
}

// closed fails unless the producer has closed the connection: nothing
// more comes, then the end.
func (w *wire) closed() {
	w.t.Helper()
	if rest, err := io.ReadAll(w.r); err != nil || len(rest) != 0 {
		w.t.Errorf("after the last reply: %q, %v; want the connection closed", rest, err)
	}
}

// TestSMTPConnectionLimits: with MaxConnections 3 and MaxClientConnections
// 2, a third connection from one client (127.0.0.1) is answered 421 4.7.0
// "from your address" and closed, while a second client (127.0.0.2) still
// gets in; with three open, a fourth client (IPv6 ::1, counted by its
// /64) is answered 421 4.7.0 "Too many connections". When a client quits,
// its slot is free again: the next connection is greeted and its mail is
// stored and processed by the rules in force.
func TestSMTPConnectionLimits(t *testing.T) {
	b := setupDev(t, dev.Config{SMTPAddr: "[::]:0", LMTPAddr: "-",
		Producer: producer.Config{MaxConnections: 3, MaxClientConnections: 2}})
	b.putRules(t, rules.FlagHandler, "rcpt:^limits@ 10 quarantine\n")
	if b.sys.LMTPAddr != "" {
		t.Errorf("LMTP listens on %q although disabled", b.sys.LMTPAddr)
	}
	_, port, err := net.SplitHostPort(b.sys.SMTPAddr)
	if err != nil {
		t.Fatal(err)
	}

	first := dialWireFrom(t, "127.0.0.1", "127.0.0.1", port)
	first.expect("220")
	second := dialWireFrom(t, "127.0.0.1", "127.0.0.1", port)
	second.expect("220")
	third := dialWireFrom(t, "127.0.0.1", "127.0.0.1", port)
	if r := third.expect("421 4.7.0"); !strings.Contains(r, "from your address") {
		t.Errorf("reply %q, want the per-client limit's", r)
	}
	third.closed()
	other := dialWireFrom(t, "127.0.0.2", "127.0.0.1", port)
	other.expect("220")
	v6 := dialWireFrom(t, "::1", "::1", port)
	if r := v6.expect("421 4.7.0"); !strings.Contains(r, "Too many connections,") {
		t.Errorf("reply %q, want the overall limit's", r)
	}
	v6.closed()

	first.cmd("QUIT", "221")
	first.closed()
	raw := mail(t, "limits@example.org", "after a slot was freed", nil, "", "")
	if err := dev.SendSMTP(net.JoinHostPort("127.0.0.1", port), "alice@example.com", []string{"limits@example.org"}, raw); err != nil {
		t.Fatalf("a connection after a slot was freed: %v", err)
	}
	wantDisposition(t, b.outcomes.First(t, "limits@example.org"), contracts.Quarantined, "quarantine")
}

// TestSMTPTimeouts: a client that says nothing after the greeting gets
// 421 4.4.2 once CommandTimeout passed; one that stops in the middle of
// its mail's content gets 421 4.4.2 once DataTimeout passed since the
// 354; one that keeps sending NOOPs without ever delivering gets 421
// 4.4.2 once IdleTimeout passed since it connected. Each connection is
// closed after its 421, nothing of the cut mail is stored, and the next
// client's mail is stored and processed by the rules in force.
func TestSMTPTimeouts(t *testing.T) {
	b := setupDev(t, dev.Config{Producer: producer.Config{CommandTimeout: 500 * time.Millisecond,
		DataTimeout: 500 * time.Millisecond, IdleTimeout: time.Second}})
	b.putRules(t, rules.FlagHandler, "rcpt:^timeouts@ 10 quarantine\n")

	// Side by side, so that the test takes the longest timeout, not
	// their sum.
	t.Run("clients", func(t *testing.T) {
		t.Run("silent", func(t *testing.T) {
			t.Parallel()
			w := dialWire(t, b.sys.SMTPAddr)
			if r := w.expect("421 4.4.2"); !strings.Contains(r, "Timeout waiting for a command") {
				t.Errorf("silent client: %q", r)
			}
			w.closed()
		})
		t.Run("stopped in its content", func(t *testing.T) {
			t.Parallel()
			w := dialWire(t, b.sys.SMTPAddr)
			w.cmd("EHLO wire.test", "250")
			w.cmd("MAIL FROM:<alice@example.com>", "250")
			w.cmd("RCPT TO:<cut@example.org>", "250")
			w.cmd("DATA", "354")
			w.send("Subject: cut short\r\n\r\nthe rest never comes")
			if r := w.expect("421 4.4.2"); !strings.Contains(r, "Timeout reading the message") {
				t.Errorf("client stopped in its content: %q", r)
			}
			w.closed()
		})
		t.Run("only NOOPs", func(t *testing.T) {
			t.Parallel()
			w := dialWire(t, b.sys.SMTPAddr)
			for {
				w.send("NOOP\r\n")
				r := w.reply()
				if strings.HasPrefix(r, "250") {
					continue
				}
				if !strings.HasPrefix(r, "421 4.4.2") || !strings.Contains(r, "Connection idle too long") {
					t.Errorf("client sending only NOOPs: %q", r)
				}
				break
			}
			w.closed()
		})
	})

	b.sendSMTP(t, mail(t, "timeouts@example.org", "after the timeouts", nil, "", ""), "timeouts@example.org")
	wantDisposition(t, b.outcomes.First(t, "timeouts@example.org"), contracts.Quarantined, "quarantine")
	if got := len(b.outcomes.All()["cut@example.org"]); got != 0 {
		t.Errorf("%d outcomes of the mail cut short, want none", got)
	}
}
