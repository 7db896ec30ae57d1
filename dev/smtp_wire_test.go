package dev_test

import (
	"bufio"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/dev"
	"github.com/mailscope/mailscope/producer"
	"github.com/mailscope/mailscope/rules"
)

// wire is an SMTP client at the byte level, for what net/smtp and go-smtp's
// client never send: over-long lines, pipelined commands, BDAT chunks.
type wire struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

// dialWire connects to addr and reads the greeting, which must be 220.
func dialWire(t *testing.T, addr string) *wire {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	w := &wire{t: t, c: c, r: bufio.NewReader(c)}
	w.expect("220")
	return w
}

// send writes s as it is.
func (w *wire) send(s string) {
	w.t.Helper()
	if _, err := w.c.Write([]byte(s)); err != nil {
		w.t.Fatalf("write: %v", err)
	}
}

// reply reads one reply, all its lines, and returns its last line.
func (w *wire) reply() string {
	w.t.Helper()
	for {
		line, err := w.r.ReadString('\n')
		if err != nil {
			w.t.Fatalf("reading a reply: %v (read %q)", err, line)
		}
		if len(line) < 4 || line[3] != '-' {
			return strings.TrimRight(line, "\r\n")
		}
	}
}

// expect reads one reply and fails unless it starts with prefix.
func (w *wire) expect(prefix string) string {
	w.t.Helper()
	r := w.reply()
	if !strings.HasPrefix(r, prefix) {
		w.t.Fatalf("reply %q, want %s", r, prefix)
	}
	return r
}

// cmd sends one command line and expects a reply starting with prefix.
func (w *wire) cmd(line, prefix string) string {
	w.t.Helper()
	w.send(line + "\r\n")
	return w.expect(prefix)
}

// ehlo sends EHLO and returns the extensions advertised.
func (w *wire) ehlo() []string {
	w.t.Helper()
	w.send("EHLO wire.test\r\n")
	var ext []string
	for {
		line, err := w.r.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "250") {
			w.t.Fatalf("EHLO reply line %q: %v", line, err)
		}
		ext = append(ext, strings.TrimRight(line[4:], "\r\n"))
		if line[3] == ' ' {
			return ext
		}
	}
}

// TestSMTPLimitsOnTheWire drives one SMTP connection the way a broken or
// hostile client would, against a producer with small limits and rules
// present: command lines over MaxCommandLine, sent whole, pipelined
// behind a good command or endless without a line end, are each
// discarded and answered 500 5.5.2, while a pipelined burst of good
// commands is answered in full; a SIZE over MaxSize is 552 5.3.4;
// an address the contracts refuse is 553 5.1.3; BDAT with bad arguments
// is refused; content lines over MaxDataLine, in the header or the
// body, are 554 5.6.0 with nothing stored. After each the connection
// goes on, and a mail sent in BDAT chunks (two of them empty, the last
// one too) and one sent with DATA (dot-stuffed lines, bare CRs) are
// stored and processed by the rules in force.
func TestSMTPLimitsOnTheWire(t *testing.T) {
	const maxCmd, maxLine, maxSize = 128, 256, 8192
	b := setupDev(t, dev.Config{Producer: producer.Config{MaxCommandLine: maxCmd, MaxDataLine: maxLine, MaxSize: maxSize}})
	b.putRules(t, rules.FlagHandler, "rcpt:^bdat@ 20 quarantine\nrcpt:^data@ 10 discard\n")

	w := dialWire(t, b.sys.SMTPAddr)
	ext := w.ehlo()
	if !slices.Contains(ext, "CHUNKING") || !slices.Contains(ext, "SIZE 8192") {
		t.Errorf("EHLO advertised %q, want CHUNKING and SIZE %d", ext, maxSize)
	}

	tooLong := "500 5.5.2"
	w.cmd("NOOP "+strings.Repeat("x", 2*maxCmd), tooLong)
	// Pipelined: the good command is answered first, then the long one.
	w.send("NOOP\r\nNOOP " + strings.Repeat("y", 2*maxCmd) + "\r\n")
	w.expect("250")
	w.expect(tooLong)
	// No line end for far longer than a read: discarded as it comes.
	w.send("NOOP " + strings.Repeat("z", 64<<10))
	w.cmd("", tooLong)
	w.cmd("NOOP", "250")
	// A pipelined burst longer than one read: a command line is cut
	// between reads and waited for.
	const burst = 700
	w.send(strings.Repeat("NOOP\r\n", burst))
	for range burst {
		w.expect("250")
	}

	w.cmd("MAIL FROM:<alice@example.com> SIZE=9000", "552 5.3.4")
	// One byte over: go-smtp's own limit is a byte higher (see
	// producer.Producer.newServer), the producer's is exact.
	w.cmd("MAIL FROM:<alice@example.com> SIZE="+strconv.Itoa(maxSize+1), "552 5.3.4")
	w.cmd("MAIL FROM:<alice@example.com>", "250")
	w.cmd(`RCPT TO:<"a<b"@example.org>`, "553 5.1.3")
	w.cmd("RCPT TO:<bdat@example.org>", "250")
	w.cmd("BDAT", "501")
	w.cmd("BDAT 10 MORE", "501")
	w.cmd("BDAT ten", "501")
	w.cmd("BDAT 1 2 3", "501")
	// A first chunk longer than one read of the producer's, an empty
	// chunk, the rest, and an empty last chunk.
	var pad []string
	for i := range 40 {
		pad = append(pad, "X-Pad-"+strconv.Itoa(i)+": "+strings.Repeat("p", 100))
	}
	raw := mail(t, "bdat@example.org", "in chunks", b.rsaKey, "example.com", "s1", pad...)
	first := len(raw) - 100
	w.send("BDAT " + strconv.Itoa(first) + "\r\n" + string(raw[:first]))
	w.expect("250")
	w.cmd("BDAT 0", "250")
	w.send("BDAT " + strconv.Itoa(len(raw)-first) + "\r\n" + string(raw[first:]))
	w.expect("250")
	w.cmd("BDAT 0 LAST", "250")
	o := b.outcomes.First(t, "bdat@example.org")
	wantDKIM(t, o, "example.com", "s1", "rsa-sha256", contracts.ResultPass)
	wantRule(t, o, rules.FlagHandler, "quarantine", 1)
	wantDisposition(t, o, contracts.Quarantined, "quarantine")

	// Content lines over MaxDataLine: in the header, in the body ended
	// in the same read, and in the body longer than any read.
	for _, content := range []string{
		"Subject: " + strings.Repeat("h", maxLine) + "\r\n\r\nbody\r\n",
		"Subject: long body line\r\n\r\n" + strings.Repeat("b", maxLine) + "\r\nend\r\n",
		"Subject: endless body line\r\n\r\n" + strings.Repeat("e", maxSize-100) + "\r\n",
	} {
		w.cmd("MAIL FROM:<alice@example.com>", "250")
		w.cmd("RCPT TO:<toolong@example.org>", "250")
		w.cmd("DATA", "354")
		w.send(content + ".\r\n")
		w.expect("554 5.6.0")
	}

	w.cmd("MAIL FROM:<alice@example.com>", "250")
	w.cmd("RCPT TO:<data@example.org>", "250")
	w.cmd("DATA", "354")
	// Lines the end-of-data scan must pass over: dot-stuffed, a bare CR
	// inside a line, and a lone dot followed by CR and no LF.
	w.send(string(mail(t, "data@example.org", "with data", nil, "", "")) + "..stuffed\r\na bare\rCR\r\n.\rx\r\n.\r\n")
	w.expect("250")
	w.cmd("QUIT", "221")
	wantDisposition(t, b.outcomes.First(t, "data@example.org"), contracts.Discarded, "discard")
	if got := len(b.outcomes.All()["toolong@example.org"]); got != 0 {
		t.Errorf("%d outcomes of mail refused for a long line, want none", got)
	}
}
