package producer_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"testing"
	"time"

	"github.com/mailscope/mailscope/producer"
)

// FuzzSMTPSession sends any byte stream a client could send to a real
// producer (on a real nats-server) over a real connection, then closes
// its side: the producer answers only well-formed SMTP replies, the first
// its greeting, ends the connection, and still greets the next client.
func FuzzSMTPSession(f *testing.F) {
	b := setupWith(f, options{producer: producer.Config{CommandTimeout: 5 * time.Second, DataTimeout: 5 * time.Second}})
	mail := string(sample("bob@example.org"))
	for _, s := range []string{
		"EHLO client.test\r\nMAIL FROM:<alice@example.com>\r\nRCPT TO:<bob@example.org>\r\nDATA\r\n" + mail + ".\r\nQUIT\r\n",
		"HELO x\r\nMAIL FROM:<>\r\nRCPT TO:<postmaster>\r\nDATA\r\nFrom: a@b\r\n\r\n..dot\r\n.\r\nRSET\r\nNOOP\r\n",
		"EHLO x\r\nMAIL FROM:<a@b> SIZE=99999999999\r\nRCPT TO:<b@c>\r\nRCPT TO:<\x00@c>\r\nBDAT 5 LAST\r\nabcde",
		"EHLO x\r\nMAIL FROM:<a@b> BODY=8BITMIME\r\nRCPT TO:<b@c>\r\nDATA\r\nFrom: \xff\xfe\r\n\r\n\x00\x01\r\n.\r\n",
		"EHLO x\r\nAUTH PLAIN AGFsaWNlAHNlY3JldA==\r\nSTARTTLS\r\nVRFY bob\r\nEXPN list\r\nHELP\r\n",
		"MAIL FROM:<a@b>\r\nDATA\r\n", "\r\n\r\n\r\n", "EHLO " + string(bytes.Repeat([]byte("x"), 2000)) + "\r\n",
		"EHLO x\nMAIL FROM:<a@b>\nRCPT TO:<b@c>\nDATA\nFrom: a@b\n\nbare LF\n.\n",
	} {
		f.Add([]byte(s))
	}
	greet := func(t *testing.T) net.Conn {
		t.Helper()
		c, err := net.DialTimeout("tcp", b.smtpAddr, wait)
		if err != nil {
			t.Fatalf("the producer accepts no connection: %v", err)
		}
		c.SetDeadline(time.Now().Add(wait))
		return c
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) > 256<<10 {
			return
		}
		c := greet(t)
		defer c.Close()
		go func() {
			c.Write(in)
			c.(*net.TCPConn).CloseWrite()
		}()
		r := bufio.NewReader(c)
		for n := 0; ; n++ {
			line, err := r.ReadString('\n')
			if err == io.EOF && line == "" {
				if n == 0 {
					t.Fatal("the connection ended without a greeting")
				}
				break
			}
			if err != nil && err != io.EOF {
				// A reset once the server has closed its side with our
				// data unread is an end, not a failure.
				if ne, ok := err.(net.Error); ok && ne.Timeout() {
					t.Fatalf("no end of the connection within %s: %v", wait, err)
				}
				break
			}
			if !reply(line) {
				t.Fatalf("reply line %d %q is not an SMTP reply", n, line)
			}
			if n == 0 && line[:3] != "220" {
				t.Fatalf("greeting %q", line)
			}
		}
		// Still serving.
		c2 := greet(t)
		defer c2.Close()
		if line, err := bufio.NewReader(c2).ReadString('\n'); err != nil || line[:3] != "220" {
			t.Fatalf("next client's greeting %q, %v", line, err)
		}
	})
}

// reply reports whether line is one line of an SMTP reply: three digits,
// the first 2 to 5, then a space or a hyphen, ended by CRLF.
func reply(line string) bool {
	if len(line) < 6 || line[len(line)-2:] != "\r\n" || line[0] < '2' || line[0] > '5' {
		return false
	}
	for _, c := range line[1:3] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return line[3] == ' ' || line[3] == '-'
}
