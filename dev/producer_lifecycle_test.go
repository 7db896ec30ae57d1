package dev_test

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/dev"
	"github.com/mailscope/mailscope/producer"
	"github.com/mailscope/mailscope/rules"
)

// TestProducerListenFailure: when the LMTP address is taken, the system
// does not start: the error names the address, and the SMTP listener the
// producer had opened already is closed again, its port free.
func TestProducerListenFailure(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	free, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	smtpAddr := free.Addr().String()
	free.Close()

	sys, err := dev.Start(t.Context(), dev.Config{DataDir: t.TempDir(), NATSPort: -1, SMTPAddr: smtpAddr, LMTPAddr: taken.Addr().String(),
		DNSServer: "127.0.0.1:53", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err == nil {
		sys.Close()
		t.Fatal("the system started with its LMTP address taken")
	}
	if !strings.Contains(err.Error(), "listen "+taken.Addr().String()) {
		t.Errorf("error %q does not name the taken address", err)
	}
	again, err := net.Listen("tcp", smtpAddr)
	if err != nil {
		t.Fatalf("the SMTP port is still held after the failed start: %v", err)
	}
	again.Close()
}

// TestShutdownClosesConnectionsAfterGrace: on shutdown the producer lets
// open transactions finish for WriteTimeout, then closes the connections
// still open. A client stopped in the middle of its mail's content is
// cut off without a 250, and nothing of its mail is stored, while the
// mail stored before the shutdown was processed by the rules in force.
func TestShutdownClosesConnectionsAfterGrace(t *testing.T) {
	b := setupDev(t, dev.Config{Producer: producer.Config{WriteTimeout: 300 * time.Millisecond}})
	b.putRules(t, rules.FlagHandler, "rcpt:^before@ 10 quarantine\n")
	b.sendSMTP(t, mail(t, "before@example.org", "before the shutdown", nil, "", ""), "before@example.org")
	wantDisposition(t, b.outcomes.First(t, "before@example.org"), contracts.Quarantined, "quarantine")

	w := dialWire(t, b.sys.SMTPAddr)
	w.cmd("EHLO wire.test", "250")
	w.cmd("MAIL FROM:<alice@example.com>", "250")
	w.cmd("RCPT TO:<during@example.org>", "250")
	w.cmd("DATA", "354")
	w.send("Subject: never finished\r\n\r\nhalf a mail")

	closed := make(chan struct{})
	go func() { defer close(closed); b.sys.Close() }()
	rest, err := io.ReadAll(w.r)
	if err != nil && !isClosedConn(err) {
		t.Fatalf("reading after the shutdown: %v", err)
	}
	if strings.HasPrefix(string(rest), "250") {
		t.Errorf("a mail cut off by the shutdown got %q", rest)
	}
	<-closed
	if n := len(b.outcomes.All()["during@example.org"]); n != 0 {
		t.Errorf("the cut-off mail has %d outcomes", n)
	}
}

// isClosedConn reports whether err is what reading a connection the peer
// reset or closed gives.
func isClosedConn(err error) bool {
	var op *net.OpError
	return errors.As(err, &op)
}
