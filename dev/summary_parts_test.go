package dev_test

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/workers"
)

// mimePart is one part of a multipart test mail.
type mimePart struct{ header, body string }

// multipartMail makes a multipart/mixed mail to rcpt with parts, and
// extra header lines before its own.
func multipartMail(rcpt string, parts []mimePart, extra ...string) []byte {
	var b strings.Builder
	for _, h := range extra {
		b.WriteString(h + "\r\n")
	}
	fmt.Fprintf(&b, "From: Alice <alice@example.com>\r\nTo: %s\r\nCc: not an address <<\r\nSubject: parts\r\n"+
		"Date: Thu, 26 Nov 2026 12:00:00 +0000\r\nMessage-ID: <%s@example.com>\r\nMIME-Version: 1.0\r\n"+
		"Content-Type: multipart/mixed; boundary=\"b0\"\r\n\r\npreamble\r\n", rcpt, strings.ReplaceAll(rcpt, "@", "."))
	for _, p := range parts {
		b.WriteString("--b0\r\n")
		if p.header != "" {
			b.WriteString(p.header + "\r\n")
		}
		b.WriteString("\r\n" + p.body + "\r\n")
	}
	b.WriteString("--b0--\r\n")
	return []byte(b.String())
}

// decodedSize is how many bytes go-message, the reference reader of a
// mail's parts, yields for a part's body.
func decodedSize(t *testing.T, p mimePart) int {
	t.Helper()
	e, err := message.Read(strings.NewReader(p.header + "\r\n\r\n" + p.body))
	if err != nil && !message.IsUnknownCharset(err) && !message.IsUnknownEncoding(err) {
		t.Fatalf("part %q: %v", p.header, err)
	}
	n, _ := io.Copy(io.Discard, e.Body)
	return int(n)
}

func wrap76(s string) string {
	var b strings.Builder
	for len(s) > 76 {
		b.WriteString(s[:76] + "\r\n")
		s = s[76:]
	}
	b.WriteString(s)
	return b.String()
}

// The outcome of a mail with attachments lists each with its decoded
// size, as a reader decoding it would count, whatever its encoding, valid
// or not; text parts are kept (cut at a rune boundary at the limit), and
// an address header that does not parse is kept as written.
func TestSummaryListsPartsWithDecodedSizes(t *testing.T) {
	const textLimit = 1024
	b := setup(t, workers.Config{TextLimit: textLimit})
	data := func(n int) string {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i * 7)
		}
		return base64.StdEncoding.EncodeToString(p)
	}
	attach := func(name, enc string) string {
		return fmt.Sprintf("Content-Type: application/octet-stream; name=%q\r\nContent-Disposition: attachment; filename=%q\r\nContent-Transfer-Encoding: %s", name, name, enc)
	}
	parts := []mimePart{
		{"Content-Type: text/plain; charset=utf-8", strings.Repeat("a", textLimit-1) + "é and more"},
		{"", "a part with no header is text"},
		{attach("three.bin", "base64"), wrap76(data(3000))},
		{attach("one-pad.bin", "base64"), wrap76(data(3001))},
		{attach("two-pad.bin", "base64"), wrap76(data(3002))},
		{attach("spaced.bin", "base64"), "QUJD REVG\tR0hJ\r\n SktM"},
		{attach("cut-short.bin", "base64"), "QUJDREVGR0"},
		{attach("bad-char.bin", "base64"), "QUJDREVG!R0hJ"},
		{attach("early-pad.bin", "base64"), "QUJDRE=GR0hJ"},
		{attach("lone-pad.bin", "base64"), "QUJD=R0hJ"},
		{attach("after-pad.bin", "base64"), "QUI=QUJD"},
		{attach("raw.bin", "binary"), "twelve bytes"},
		{attach("qp.bin", "quoted-printable"), "a=3Db=\r\nc"},
		{attach("odd.bin", "x-unheard-of"), "as it is"},
		{"Content-Type: text/plain; charset=utf-8\r\nContent-Disposition: attachment; filename=notes.txt", "text, attached"},
	}
	b.sendSMTP(t, multipartMail("parts@example.org", parts, "Subject: =?x-unknown?Q?caf=E9?="), "parts@example.org")
	o := b.outcomes.First(t, "parts@example.org")
	wantDisposition(t, o, contracts.Processed, "publish")
	s := o.Summary
	if s == nil {
		t.Fatal("no summary")
	}
	if s.Subject != "=?x-unknown?Q?caf=E9?=" {
		t.Errorf("subject %q, want the undecodable subject as written", s.Subject)
	}
	if len(s.Cc) != 1 || s.Cc[0] != "not an address <<" {
		t.Errorf("Cc %q, want the header as written", s.Cc)
	}
	if len(s.TextParts) != 2 {
		t.Fatalf("text parts %+v, want 2", s.TextParts)
	}
	if tp := s.TextParts[0]; !tp.Truncated || tp.Text != strings.Repeat("a", textLimit-1) {
		t.Errorf("first text part truncated=%v with %d bytes, want cut before the é at %d", tp.Truncated, len(tp.Text), textLimit-1)
	}
	if tp := s.TextParts[1]; tp.ContentType != "text/plain" || tp.Text != "a part with no header is text" {
		t.Errorf("second text part %+v", tp)
	}
	if len(s.Attachments) != len(parts)-2 {
		t.Fatalf("attachments %+v, want %d", s.Attachments, len(parts)-2)
	}
	for i, a := range s.Attachments {
		p := parts[i+2]
		if want := decodedSize(t, p); a.Size != want {
			t.Errorf("attachment %s: size %d, want %d (as decoded)", a.Filename, a.Size, want)
		}
	}
	for i, want := range []int{3000, 3001, 3002, 12} {
		if a := s.Attachments[i]; a.Size != want {
			t.Errorf("attachment %s: size %d, want %d", a.Filename, a.Size, want)
		}
	}
	// The unknown transfer encoding leaves its part undecoded, said so.
	if s.Truncated != "" || !strings.Contains(s.ParseError, `unhandled encoding "x-unheard-of"`) {
		t.Errorf("summary truncated %q parse error %q, want only the unknown encoding", s.Truncated, s.ParseError)
	}
}

// A summary stays bounded: parts past MaxParts and text past four times
// the text limit are left out, and an outcome that would still be over
// the server's payload limit (8 MiB) drops its text, then its whole
// summary, saying so; the mail is processed all the same.
func TestSummaryAndOutcomeStayBounded(t *testing.T) {
	const textLimit = 1 << 20
	b := setup(t, workers.Config{TextLimit: textLimit})

	// Text of control characters, which JSON spells in six bytes each.
	var texts []mimePart
	text := strings.Repeat(strings.Repeat("\x01", 998)+"\r\n", textLimit/1000+1)
	for range 6 { // two past the budget: said once
		texts = append(texts, mimePart{"Content-Type: text/plain", text})
	}
	b.sendSMTP(t, multipartMail("texts@example.org", texts), "texts@example.org")

	// More parts than listed, each with a name long enough that the
	// list alone is over the limit.
	var many []mimePart
	for i := range workers.MaxParts + 10 {
		name := fmt.Sprintf("%04d-%s.bin", i, strings.Repeat("\x01", 6<<10))
		many = append(many, mimePart{fmt.Sprintf("Content-Type: application/octet-stream; name=\"%s\"", name), "x"})
	}
	b.sendSMTP(t, multipartMail("many@example.org", many), "many@example.org")

	o := b.outcomes.First(t, "texts@example.org")
	wantDisposition(t, o, contracts.Processed, "publish")
	if o.Summary == nil {
		t.Fatalf("texts: no summary (note %q)", o.Note)
	}
	if len(o.Summary.TextParts) != 0 {
		t.Errorf("texts: %d text parts kept, want them dropped", len(o.Summary.TextParts))
	}
	for _, want := range []string{fmt.Sprintf("text parts beyond %d bytes in all not kept", 4*textLimit), "text parts dropped"} {
		if strings.Count(o.Summary.Truncated, want) != 1 {
			t.Errorf("texts: summary truncated %q, want %q once", o.Summary.Truncated, want)
		}
	}
	if o.Summary.MessageID == "" || len(o.Summary.From) != 1 {
		t.Errorf("texts: summary %+v lost more than its text", o.Summary)
	}

	o = b.outcomes.First(t, "many@example.org")
	wantDisposition(t, o, contracts.Processed, "publish")
	if o.Summary != nil {
		t.Errorf("many: summary of %d attachments kept, want it dropped", len(o.Summary.Attachments))
	}
	if !strings.Contains(o.Note, "summary dropped") {
		t.Errorf("many: note %q, want the summary dropped", o.Note)
	}
}

// A mail whose header is close to the 1 MiB a reader accepts is read
// whole for its summary, and a body in a charset no one knows is listed
// undecoded with the parse error, not lost.
func TestSummaryOfHugeHeaderAndUnknownCharset(t *testing.T) {
	b := setup(t, workers.Config{})
	var extra []string
	line := "X-Filler: " + strings.Repeat("f", 101<<10)
	for range 10 {
		extra = append(extra, line)
	}
	raw := []byte(strings.Join(extra, "\r\n") + "\r\nFrom: Alice <alice@example.com>\r\nTo: huge@example.org\r\nSubject: huge\r\n" +
		"Message-ID: <huge@example.com>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=x-no-such-charset\r\n\r\nbody text\r\n")
	if n := bytes.Index(raw, []byte("\r\n\r\n")); n < 1<<20-16<<10 || n > 1<<20 {
		t.Fatalf("header of %d bytes, want just under 1 MiB", n)
	}
	b.sendSMTP(t, raw, "huge@example.org")
	o := b.outcomes.First(t, "huge@example.org")
	wantDisposition(t, o, contracts.Processed, "publish")
	s := o.Summary
	if s == nil {
		t.Fatalf("no summary (note %q)", o.Note)
	}
	if !strings.Contains(s.ParseError, "x-no-such-charset") {
		t.Errorf("parse error %q, want the unknown charset", s.ParseError)
	}
	if len(s.TextParts) != 1 || s.TextParts[0].Text != "body text\r\n" {
		t.Errorf("text parts %+v, want the body as written", s.TextParts)
	}
	if s.Subject != "huge" {
		t.Errorf("subject %q", s.Subject)
	}
}

// A multipart mail with a header near 1 MiB is walked from the reader's
// own entity; a multipart body cut before its closing boundary keeps
// the parts read and says why the rest is missing; a body in an unknown
// charset is kept as written.
func TestSummaryOfHugeMultipartAndCutBody(t *testing.T) {
	b := setup(t, workers.Config{})
	var extra []string
	for range 10 {
		extra = append(extra, "X-Filler: "+strings.Repeat("f", 101<<10))
	}
	huge := multipartMail("huge-parts@example.org", []mimePart{
		{"Content-Type: text/plain; charset=x-no-such-charset", "undecodable text"},
		{"Content-Type: application/pdf; name=\"a.pdf\"", "%PDF"},
	}, extra...)
	b.sendSMTP(t, huge, "huge-parts@example.org")

	cut := multipartMail("cut@example.org", []mimePart{{"Content-Type: text/plain", "first part"}})
	cut = cut[:bytes.LastIndex(cut, []byte("--b0--"))]
	cut = append(cut, "--b0\r\nContent-Type: text/plain\r\n\r\nsecond part, never ended"...)
	b.sendSMTP(t, cut, "cut@example.org")

	odd := []byte("From: Alice <alice@example.com>\r\nTo: odd@example.org\r\nSubject: odd\r\nMessage-ID: <odd@example.com>\r\n" +
		"Content-Type: text/plain; charset=x-no-such-charset\r\n\r\nodd text\r\n")
	b.sendSMTP(t, odd, "odd@example.org")

	o := b.outcomes.First(t, "huge-parts@example.org")
	wantDisposition(t, o, contracts.Processed, "publish")
	s := o.Summary
	if s == nil || len(s.TextParts) != 1 || s.TextParts[0].Text != "undecodable text" || len(s.Attachments) != 1 || s.Attachments[0].Size != 4 {
		t.Fatalf("summary %+v, want the undecodable text part as written and one attachment of 4 bytes", s)
	}
	if !strings.Contains(s.ParseError, "x-no-such-charset") {
		t.Errorf("parse error %q, want the unknown charset", s.ParseError)
	}

	o = b.outcomes.First(t, "cut@example.org")
	wantDisposition(t, o, contracts.Processed, "publish")
	s = o.Summary
	if s == nil || len(s.TextParts) == 0 || s.TextParts[0].Text != "first part" {
		t.Fatalf("summary %+v, want the first part kept", s)
	}
	if s.ParseError == "" {
		t.Error("no parse error for a multipart body without its closing boundary")
	}

	o = b.outcomes.First(t, "odd@example.org")
	wantDisposition(t, o, contracts.Processed, "publish")
	if s = o.Summary; s == nil || len(s.TextParts) != 1 || s.TextParts[0].Text != "odd text\r\n" || !strings.Contains(s.ParseError, "x-no-such-charset") {
		t.Errorf("summary %+v, want the text as written and the unknown charset as parse error", s)
	}
}

// A summary that takes longer than the handler's time (HandlerTimeout)
// stops where it is, says so, and the mail is processed with what was
// read.
func TestSummaryCutShortByHandlerTimeout(t *testing.T) {
	b := setup(t, workers.Config{HandlerTimeout: time.Nanosecond})
	b.sendSMTP(t, multipartMail("slow@example.org", []mimePart{{"Content-Type: text/plain", "text"}}), "slow@example.org")
	o := b.outcomes.First(t, "slow@example.org")
	wantDisposition(t, o, contracts.Processed, "publish")
	if o.Summary == nil || !strings.Contains(o.Summary.Truncated, "summary cut short: context deadline exceeded") {
		t.Errorf("summary %+v, want it cut short by the handler's deadline", o.Summary)
	}
}
