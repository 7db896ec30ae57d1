package producer_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/textproto"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailscope/mailscope/producer"
	"github.com/mailscope/mailscope/systest"
)

// rawConn is a client connection speaking SMTP by hand, for what client
// libraries refuse to send. Every read is bounded by wait.
type rawConn struct {
	t    *testing.T
	conn net.Conn
	tc   *textproto.Conn
}

// dialRaw connects from local (an address of 127.0.0.0/8; "" for any)
// and returns the connection without reading the greeting.
func dialRaw(t *testing.T, addr, local string) *rawConn {
	t.Helper()
	d := net.Dialer{Timeout: wait}
	if local != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(local)}
	}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(wait))
	return &rawConn{t: t, conn: conn, tc: textproto.NewConn(conn)}
}

// greeted connects, reads the 220 and sends EHLO (LHLO for LMTP).
func (b *bundle) greeted(t *testing.T, lmtp bool) *rawConn {
	t.Helper()
	addr, hello := b.smtpAddr, "EHLO"
	if lmtp {
		addr, hello = b.lmtpAddr, "LHLO"
	}
	c := dialRaw(t, addr, "")
	c.expect(220, "")
	c.cmd(250, "", "%s client.test", hello)
	return c
}

// reply reads one reply and returns its code and text (with the
// enhanced code), failing on a broken connection.
func (c *rawConn) reply() (int, string) {
	c.t.Helper()
	code, msg, err := c.tc.ReadResponse(0)
	if _, ok := err.(*textproto.Error); err != nil && !ok {
		c.t.Fatalf("reading a reply: %v", err)
	}
	return code, msg
}

// expect reads a reply and checks its code and the start of its text.
func (c *rawConn) expect(code int, prefix string) string {
	c.t.Helper()
	got, msg := c.reply()
	if got != code || !strings.HasPrefix(msg, prefix) {
		c.t.Fatalf("reply %d %q, want %d %s...", got, msg, code, prefix)
	}
	return msg
}

func (c *rawConn) send(format string, args ...any) {
	c.t.Helper()
	if err := c.tc.PrintfLine(format, args...); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawConn) cmd(code int, prefix, format string, args ...any) string {
	c.t.Helper()
	c.send(format, args...)
	return c.expect(code, prefix)
}

// data sends a mail's content (dot-stuffed) after a 354.
func (c *rawConn) data(raw []byte) {
	c.t.Helper()
	c.cmd(354, "", "DATA")
	w := c.tc.DotWriter()
	if _, err := w.Write(raw); err != nil {
		c.t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		c.t.Fatal(err)
	}
}

// mail sends one transaction and returns the reply to its content.
func (c *rawConn) mail(raw []byte) (int, string) {
	c.t.Helper()
	c.cmd(250, "", "MAIL FROM:<alice@example.com>")
	c.cmd(250, "", "RCPT TO:<bob@example.org>")
	c.data(raw)
	return c.reply()
}

// closed waits for the server to close the connection.
func (c *rawConn) closed() {
	c.t.Helper()
	_, err := c.tc.ReadLine()
	wantClosed(c.t, err)
}

// wantClosed checks that err is the server's close: EOF, or a reset when
// the server closed with bytes of ours unread (a timeout's 421 can come
// while the client is still sending).
func wantClosed(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("after the last reply: %v, want the connection closed", err)
	}
}

// mailWithLine returns a mail whose body has one line of exactly n bytes
// with its CRLF.
func mailWithLine(n int) []byte {
	return []byte("From: alice@example.com\r\nSubject: long line\r\n\r\nshort\r\n" + strings.Repeat("y", n-2) + "\r\nend\r\n")
}

// mailWithHeader returns a mail whose header section has exactly fields
// fields and bytes bytes (without the empty line); bytes must leave room
// for the fields.
func mailWithHeader(t *testing.T, fields, size int) []byte {
	t.Helper()
	var h bytes.Buffer
	for i := range fields - 1 {
		fmt.Fprintf(&h, "X-F%04d: v\r\n", i) // 12 bytes
	}
	last := size - h.Len() - len("Subject: \r\n")
	if last < 0 {
		t.Fatalf("%d fields do not fit in %d bytes", fields, size)
	}
	// The last field is folded, to show that a folded line is one field.
	fill := strings.Repeat("s", last)
	if last > 4 {
		fill = fill[:last-4] + "\r\n s"
	}
	h.WriteString("Subject: " + fill + "\r\n")
	if h.Len() != size {
		t.Fatalf("header section of %d bytes, want %d", h.Len(), size)
	}
	return append(h.Bytes(), "\r\nbody\r\n"...)
}

// TestExactSize: a mail of exactly MaxSize bytes, the SIZE the server
// advertises, is stored over DATA, LMTP and BDAT; one byte more gets
// 552 5.3.4 and is not stored, and so does MAIL FROM announcing it.
func TestExactSize(t *testing.T) {
	const max = 64 << 10
	b := setupWith(t, options{producer: producer.Config{MaxSize: max}})
	exact, over := mailOfSize(t, max), mailOfSize(t, max+1)

	c := b.greeted(t, false)
	if code, msg := c.mail(exact); code != 250 {
		t.Fatalf("mail of exactly MaxSize: %d %s", code, msg)
	}
	if n := b.count(t); n != 1 {
		t.Fatalf("stream holds %d mails, want 1", n)
	}
	if msg, _ := b.last(t); !bytes.Equal(msg.Data, exact) {
		t.Error("stored mail differs from the mail sent")
	}
	c.cmd(250, "", "MAIL FROM:<alice@example.com> SIZE=%d", max)
	c.cmd(250, "", "RSET")
	c.cmd(552, "5.3.4", "MAIL FROM:<alice@example.com> SIZE=%d", max+1)
	c.cmd(250, "", "MAIL FROM:<alice@example.com>")
	c.cmd(250, "", "RCPT TO:<bob@example.org>")
	c.data(over)
	c.expect(552, "5.3.4")

	// BDAT: the chunk of exactly MaxSize is stored, one more is refused.
	// (To another recipient: the same bytes to the same envelope would be
	// the mail stored above, stored once.)
	for _, m := range []struct {
		raw  []byte
		code int
	}{{exact, 250}, {over, 552}} {
		c.cmd(250, "", "MAIL FROM:<alice@example.com>")
		c.cmd(250, "", "RCPT TO:<carol@example.org>")
		c.send("BDAT %d LAST", len(m.raw))
		if _, err := c.conn.Write(m.raw); err != nil {
			t.Fatal(err)
		}
		if code, msg := c.reply(); code != m.code {
			t.Errorf("BDAT of %d bytes: %d %s, want %d", len(m.raw), code, msg, m.code)
		}
	}
	c.cmd(221, "", "QUIT")
	if n := b.count(t); n != 2 {
		t.Errorf("stream holds %d mails, want the two of MaxSize", n)
	}

	rcpts := []string{"bob@example.org", "carol@example.net"}
	for r, e := range b.sendLMTP(t, "alice@example.com", rcpts, exact) {
		if e != nil {
			t.Errorf("LMTP mail of exactly MaxSize for %s: %v", r, e)
		}
	}
	for r, e := range b.sendLMTP(t, "alice@example.com", rcpts, over) {
		wantReply(t, "LMTP mail of MaxSize+1 for "+r, e, 552, smtp.EnhancedCode{5, 3, 4})
	}
	if n := b.count(t); n != 3 {
		t.Errorf("stream holds %d mails, want 3", n)
	}
}

// TestCommandLineLimit: a command line of MaxCommandLine bytes is taken,
// one byte more is answered 500 5.5.2 without go-smtp seeing it, and the
// connection goes on; nothing of a refused command takes effect.
func TestCommandLineLimit(t *testing.T) {
	b := setup(t)
	max := b.p.Config().MaxCommandLine
	if max != 2000 {
		t.Fatalf("MaxCommandLine = %d, want the default 2000", max)
	}
	c := b.greeted(t, false)
	noop := func(n int) string { return "NOOP " + strings.Repeat("n", n-len("NOOP \r\n")) }
	c.cmd(250, "", "%s", noop(max))
	c.cmd(500, "5.5.2", "%s", noop(max+1))
	// A line of a mebibyte, far beyond what is buffered.
	c.cmd(500, "5.5.2", "%s", noop(1<<20))
	// Pipelined: the refusal comes in its place among the replies.
	c.send("MAIL FROM:<alice@example.com>\r\nRCPT TO:<%s@example.org>\r\nRCPT TO:<bob@example.org>", strings.Repeat("b", max))
	c.expect(250, "")
	c.expect(500, "5.5.2")
	c.expect(250, "")
	c.data(sample("bob@example.org"))
	c.expect(250, "")
	if _, env := b.last(t); len(env.RcptTo) != 1 || env.RcptTo[0] != "bob@example.org" {
		t.Errorf("RcptTo = %q, want only bob (the refused RCPT must not count)", env.RcptTo)
	}
	c.cmd(221, "", "QUIT")
	if n := b.count(t); n != 1 {
		t.Errorf("stream holds %d mails, want 1", n)
	}
}

// TestDataLineLimit: content lines up to MaxDataLine are stored (also
// lines far over RFC 5321's 1000 octets, which real mail has), one byte
// more gets 554 5.6.0, nothing is stored and the connection goes on.
func TestDataLineLimit(t *testing.T) {
	const max = 8 << 10
	b := setupWith(t, options{producer: producer.Config{MaxDataLine: max}})
	c := b.greeted(t, false)
	if code, msg := c.mail(mailWithLine(max)); code != 250 {
		t.Fatalf("line of MaxDataLine bytes: %d %s", code, msg)
	}
	if code, msg := c.mail(mailWithLine(max + 1)); code != 554 || !strings.HasPrefix(msg, "5.6.0") {
		t.Errorf("line of MaxDataLine+1 bytes: %d %s, want 554 5.6.0", code, msg)
	}
	// A dot added for transparency does not count.
	if code, msg := c.mail([]byte("Subject: dots\r\n\r\n." + strings.Repeat("z", max-3) + "\r\n")); code != 250 {
		t.Errorf("dot-stuffed line of MaxDataLine bytes: %d %s", code, msg)
	}
	if code, msg := c.mail(sample("bob@example.org")); code != 250 {
		t.Errorf("mail after the refused one: %d %s", code, msg)
	}
	c.cmd(221, "", "QUIT")
	if n := b.count(t); n != 3 {
		t.Errorf("stream holds %d mails, want 3", n)
	}
	rcpts := []string{"bob@example.org", "carol@example.net"}
	for r, e := range b.sendLMTP(t, "alice@example.com", rcpts, mailWithLine(max+1)) {
		wantReply(t, "LMTP long line for "+r, e, 554, smtp.EnhancedCode{5, 6, 0})
	}
	if n := b.count(t); n != 3 {
		t.Errorf("stream holds %d mails after LMTP, want 3", n)
	}
}

// TestLongLinesByDefault pins the reason for MaxDataLine: go-smtp's
// default line limit (2000) answered a longer content line with 451, so
// the MTA retried a mail with a 100 KB line for days.
func TestLongLinesByDefault(t *testing.T) {
	b := setup(t)
	raw := mailWithLine(100 << 10)
	if err := b.sendSMTP(t, "alice@example.com", []string{"bob@example.org"}, raw); err != nil {
		t.Fatalf("mail with a 100 KB line: %v", err)
	}
	if msg, _ := b.last(t); !bytes.Equal(msg.Data, raw) {
		t.Error("stored mail differs from the mail sent")
	}
}

// TestHeaderLimits: a header section of exactly MaxHeaderBytes and
// MaxHeaderFields is stored; one byte or one field more gets 554 5.6.0
// and nothing is stored.
func TestHeaderLimits(t *testing.T) {
	const maxBytes, maxFields = 4 << 10, 50
	b := setupWith(t, options{producer: producer.Config{MaxHeaderBytes: maxBytes, MaxHeaderFields: maxFields}})
	c := b.greeted(t, false)
	for _, m := range []struct {
		what         string
		fields, size int
		code         int
	}{
		{"at both limits", maxFields, maxBytes, 250},
		{"one byte over", maxFields, maxBytes + 1, 554},
		{"one field over", maxFields + 1, maxBytes, 554},
	} {
		code, msg := c.mail(mailWithHeader(t, m.fields, m.size))
		if code != m.code || (code == 554 && !strings.HasPrefix(msg, "5.6.0")) {
			t.Errorf("%s: %d %s, want %d", m.what, code, msg, m.code)
		}
	}
	c.cmd(221, "", "QUIT")
	if n := b.count(t); n != 1 {
		t.Errorf("stream holds %d mails, want 1", n)
	}
}

// TestConnectionLimits: past MaxClientConnections from one address, and
// past MaxConnections in all (SMTP and LMTP together), a connection is
// answered 421 4.7.0 and closed; a freed slot is taken again.
func TestConnectionLimits(t *testing.T) {
	b := setupWith(t, options{producer: producer.Config{MaxConnections: 3, MaxClientConnections: 2}})
	open := func(addr, local string) *rawConn {
		c := dialRaw(t, addr, local)
		c.expect(220, "")
		return c
	}
	refused := func(addr, local string, perClient bool) {
		t.Helper()
		c := dialRaw(t, addr, local)
		msg := c.expect(421, "4.7.0")
		if got := strings.Contains(msg, "from your address"); got != perClient {
			t.Errorf("refusal %q: per-client %v, want %v", msg, got, perClient)
		}
		c.closed()
	}
	first := open(b.smtpAddr, "127.0.0.1")
	open(b.smtpAddr, "127.0.0.1")
	refused(b.smtpAddr, "127.0.0.1", true)
	open(b.lmtpAddr, "127.0.0.2") // another client: the per-client count is its own
	refused(b.smtpAddr, "127.0.0.3", false)
	refused(b.lmtpAddr, "127.0.0.3", false)

	first.cmd(221, "", "QUIT")
	first.closed()
	// The slot is freed when the server has closed its side; until then a
	// connection may still be refused.
	var again *rawConn
	systest.WaitFor(t, "the freed slot to take a connection", func() bool {
		c := dialRaw(t, b.smtpAddr, "127.0.0.1")
		code, _ := c.reply()
		if code == 220 {
			again = c
			return true
		}
		if code != 421 {
			t.Fatalf("reply %d, want 220 or 421", code)
		}
		return false
	})
	again.cmd(250, "", "EHLO client.test")
	if code, msg := again.mail(sample("bob@example.org")); code != 250 {
		t.Errorf("mail on the freed slot: %d %s", code, msg)
	}
}

// TestCommandTimeout: a client silent past CommandTimeout gets 421 4.4.2
// and is disconnected.
func TestCommandTimeout(t *testing.T) {
	b := setupWith(t, options{producer: producer.Config{CommandTimeout: 50 * time.Millisecond, DataTimeout: time.Hour, IdleTimeout: time.Hour}})
	c := b.greeted(t, false)
	c.expect(421, "4.4.2")
	c.closed()
}

// TestDataTimeout: a mail whose content does not end within DataTimeout
// gets 421 4.4.2, the connection is closed and nothing is stored. The
// other deadlines are far beyond the test's wait: only DataTimeout can
// end the connection.
func TestDataTimeout(t *testing.T) {
	b := setupWith(t, options{producer: producer.Config{CommandTimeout: time.Hour, DataTimeout: 50 * time.Millisecond, IdleTimeout: time.Hour}})
	c := b.greeted(t, false)
	c.cmd(250, "", "MAIL FROM:<alice@example.com>")
	c.cmd(250, "", "RCPT TO:<bob@example.org>")
	c.cmd(354, "", "DATA")
	c.send("Subject: never ends")
	c.expect(421, "4.4.2")
	c.closed()
	if n := b.count(t); n != 0 {
		t.Errorf("stream holds %d mails, want none", n)
	}
}

// TestIdleTimeout: a client that keeps sending commands, each well
// within CommandTimeout, but never delivers a mail, gets 421 4.4.2 after
// IdleTimeout and is disconnected.
func TestIdleTimeout(t *testing.T) {
	b := setupWith(t, options{producer: producer.Config{CommandTimeout: time.Hour, DataTimeout: time.Hour, IdleTimeout: 100 * time.Millisecond}})
	c := b.greeted(t, false)
	r := bufio.NewReader(c.conn)
	for n := 0; ; n++ {
		c.send("NOOP")
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("after %d NOOPs: %v, want a 421 first", n, err)
		}
		if strings.HasPrefix(line, "250 ") {
			continue
		}
		if !strings.HasPrefix(line, "421 4.4.2 ") {
			t.Fatalf("reply %q, want 250 or 421 4.4.2", line)
		}
		break
	}
	_, err := r.ReadString('\n')
	wantClosed(t, err)
}
