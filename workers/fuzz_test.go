package workers

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/testkit"
)

// FuzzParseMail feeds the parse stage raw mail as an MTA could hand it
// over: it never panics; it accepts or refuses the mail as Malformed,
// never another class; an accepted mail has a From field, its body
// offset inside the mail, and header facts keyed by lower-case names.
func FuzzParseMail(f *testing.F) {
	f.Add(testkit.SampleMail("Alice <alice@example.com>", "bob@example.org", "Hello", "Hi.\r\n", benchEnv.ReceivedAt, "m1@example.com"))
	f.Add([]byte("From: =?utf-8?q?J=C3=B6rg?= <j@example.com>\r\nSubject: =?iso-8859-1?b?4Q==?=\r\n\r\nbody"))
	f.Add([]byte("From: a@b\nX-Folded: one\n two\n\nbody\n"))
	f.Add([]byte("this line is no header field\r\n\r\nbody\r\n"))
	f.Add([]byte("From: a@b\r\nBad\x00Name: x\r\n\r\n"))
	f.Add([]byte("From: \xff\xfe <x@y>\r\nTo: undisclosed-recipients:;\r\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, raw []byte) {
		m, err := ParseMail(contracts.Envelope{ID: "fuzz", RcptTo: []string{"bob@example.org"}}, raw)
		if err != nil {
			var ce *classError
			if !errors.As(err, &ce) || ce.class != Malformed {
				t.Fatalf("refused with %v (class %v), want Malformed", err, ClassOf(err))
			}
			return
		}
		if !m.Header.Has("From") {
			t.Fatal("accepted a mail without From")
		}
		if m.bodyAt < 0 || m.bodyAt > len(raw) || !bytes.Equal(m.Raw, raw) {
			t.Fatalf("body offset %d of %d bytes", m.bodyAt, len(raw))
		}
		for k := range headerFacts(m.Header) {
			if k != strings.ToLower(k) {
				t.Fatalf("header fact %q not lower-case", k)
			}
		}
	})
}
