package workers

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"

	"github.com/mailscope/mailscope/contracts"
)

// sumPart is one leaf part of a test mail: its header lines and its body
// as it stands in the mail.
type sumPart struct {
	header []string
	body   string
}

// sumMail builds a multipart/mixed mail of parts, with line ending nl.
func sumMail(nl string, parts ...sumPart) []byte {
	var b strings.Builder
	for _, l := range []string{
		"From: Alice <alice@example.com>", "To: bob@example.org", "Subject: parts",
		"Date: Thu, 26 Nov 2026 12:00:00 +0000", "Message-ID: <parts@example.com>",
		"MIME-Version: 1.0", `Content-Type: multipart/mixed; boundary="b0"`, "",
	} {
		b.WriteString(l + nl)
	}
	b.WriteString("preamble" + nl)
	for _, p := range parts {
		b.WriteString("--b0" + nl)
		for _, l := range p.header {
			b.WriteString(l + nl)
		}
		b.WriteString(nl + p.body + nl)
	}
	b.WriteString("--b0--" + nl)
	return []byte(b.String())
}

// sumBase64 encodes data in lines of width characters ended by nl.
func sumBase64(data []byte, width int, nl string) string {
	enc := base64.StdEncoding.EncodeToString(data)
	var b strings.Builder
	for len(enc) > width {
		b.WriteString(enc[:width] + nl)
		enc = enc[width:]
	}
	b.WriteString(enc)
	return b.String()
}

func sumAttachment(name string, body string) sumPart {
	return sumPart{header: []string{
		`Content-Type: application/pdf; name="` + name + `"`,
		`Content-Disposition: attachment; filename="` + name + `"`,
		"Content-Transfer-Encoding: base64",
	}, body: body}
}

func sumRandom(n int) []byte {
	r := rand.New(rand.NewPCG(uint64(n), 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// benchSummaryMail is a multipart mail: a short text part and a 200 KiB
// PDF, base64 in lines of 76 characters.
func benchSummaryMail(b *testing.B) *Mail {
	b.Helper()
	text := sumPart{header: []string{"Content-Type: text/plain; charset=utf-8"}, body: strings.Repeat("Please find the report attached.\r\n", 20)}
	raw := sumMail("\r\n", text, sumAttachment("report.pdf", sumBase64(sumRandom(200<<10), 76, "\r\n")))
	m, err := ParseMail(contracts.Envelope{ID: "bench", RcptTo: []string{"bob@example.org"}}, raw)
	if err != nil {
		b.Fatal(err)
	}
	return m
}

// BenchmarkSummarize is the publish handler's summary of a mail with a
// 200 KiB base64 attachment.
func BenchmarkSummarize(b *testing.B) {
	m := benchSummaryMail(b)
	b.SetBytes(int64(len(m.Raw)))
	b.ReportAllocs()
	for b.Loop() {
		s := Summarize(b.Context(), m, 64<<10)
		if len(s.Attachments) != 1 || s.Attachments[0].Size != 200<<10 {
			b.Fatalf("attachments %+v", s.Attachments)
		}
	}
}

// BenchmarkSummarizeText is the summary of an 8 KiB single-part text
// mail, the common case.
func BenchmarkSummarizeText(b *testing.B) {
	raw := []byte(strings.Join([]string{
		"From: Alice <alice@example.com>", "To: bob@example.org", "Subject: text",
		"Date: Thu, 26 Nov 2026 12:00:00 +0000", "Message-ID: <text@example.com>",
		"MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "",
		strings.Repeat(strings.Repeat("x", 78)+"\r\n", 100),
	}, "\r\n"))
	m, err := ParseMail(contracts.Envelope{ID: "bench"}, raw)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if s := Summarize(b.Context(), m, 64<<10); len(s.TextParts) != 1 {
			b.Fatal(fmt.Sprint(s))
		}
	}
}

// sumCorpus are multipart (and single-part) mails of every kind of part
// Summarize sizes or reads, with base64 bodies of every padding, odd line
// lengths, bare LF, white space inside, and bodies that are not valid.
func sumCorpus() map[string][]byte {
	c := map[string][]byte{}
	for _, n := range []int{0, 1, 2, 3, 4, 5, 57, 58, 59, 1000, 4095, 4096, 4097, 200 << 10} {
		data := sumRandom(n)
		for _, width := range []int{76, 64, 73, 1, 999, 1 << 20} {
			for _, nl := range []string{"\r\n", "\n"} {
				name := fmt.Sprintf("base64/%d bytes/width %d/nl %q", n, width, nl)
				c[name] = sumMail(nl, sumAttachment("a.bin", sumBase64(data, width, nl)))
			}
		}
		enc := sumBase64(data, 76, "\r\n")
		c[fmt.Sprintf("base64/%d bytes/spaces and tabs", n)] = sumMail("\r\n",
			sumAttachment("a.bin", strings.ReplaceAll(strings.ReplaceAll(enc, "\r\n", " \r\n\t"), "AAAA", "AA AA")))
	}
	text := sumPart{header: []string{"Content-Type: text/plain; charset=utf-8"}, body: "hello\r\n"}
	bad := func(body string) []byte { return sumMail("\r\n", text, sumAttachment("bad.bin", body)) }
	valid := sumBase64(sumRandom(3000), 76, "\r\n")
	c["invalid/character mid-body"] = bad(valid[:1000] + "!" + valid[1000:])
	c["invalid/character mid-quantum"] = bad(valid[:1001] + "*" + valid[1001:])
	c["invalid/url alphabet"] = bad(strings.ReplaceAll(strings.ReplaceAll(valid, "+", "-"), "/", "_"))
	c["invalid/final quantum cut short"] = bad(valid + "QUJ")
	c["invalid/one character"] = bad("Q")
	c["invalid/padding first"] = bad(valid[:400] + "====" + valid[400:])
	c["invalid/padding second"] = bad("QUJD" + "Q===")
	c["invalid/padding then data"] = bad("QUJD" + "QQ=Q")
	c["invalid/single pad at end"] = bad("QUJDQQ=")
	c["invalid/triple padding"] = bad("QUJDQQ===")
	c["invalid/form feed"] = bad("QUJD\fQUJD")
	c["invalid/8bit"] = bad("QUJD\xc3\xa9QUJD")

	c["other/quoted-printable attachment"] = sumMail("\r\n", sumPart{header: []string{
		"Content-Type: application/octet-stream", "Content-Disposition: attachment", "Content-Transfer-Encoding: quoted-printable",
	}, body: "caf=C3=A9 =\r\nsoft break=3D\r\nend  \r\n"})
	c["other/7bit, 8bit, binary, none"] = sumMail("\r\n",
		sumPart{header: []string{"Content-Type: image/png", "Content-Transfer-Encoding: 7bit"}, body: "seven\r\nbit"},
		sumPart{header: []string{"Content-Type: image/png", "Content-Transfer-Encoding: 8BIT"}, body: "\xc3\xa9ight"},
		sumPart{header: []string{"Content-Type: image/png", "Content-Transfer-Encoding: binary"}, body: "\x00\x01\r\n\x02"},
		sumPart{header: []string{"Content-Type: image/png"}, body: "none"})
	c["other/unknown encoding"] = sumMail("\r\n", text,
		sumPart{header: []string{"Content-Type: application/zip", "Content-Transfer-Encoding: x-uuencode"}, body: "begin 644 a\r\nend"})
	c["other/text attachment with a charset"] = sumMail("\r\n", sumPart{header: []string{
		"Content-Type: text/plain; charset=iso-8859-1; name=\"l.txt\"", "Content-Transfer-Encoding: base64",
	}, body: base64.StdEncoding.EncodeToString([]byte("caf\xe9 cr\xe8me"))})
	c["other/unknown charset"] = sumMail("\r\n", sumPart{header: []string{
		"Content-Type: text/plain; charset=x-nonesuch", "Content-Disposition: attachment; filename=x.txt",
	}, body: "abc"})
	c["other/text parts"] = sumMail("\r\n",
		sumPart{header: []string{"Content-Type: text/plain; charset=iso-8859-1", "Content-Transfer-Encoding: quoted-printable"}, body: "caf=E9"},
		sumPart{header: []string{"Content-Type: text/html", "Content-Transfer-Encoding: base64"}, body: base64.StdEncoding.EncodeToString([]byte("<p>hi</p>"))},
		sumPart{header: []string{"Content-Type: text/plain; charset=utf-8"}, body: "plain \xff invalid"},
		sumPart{header: nil, body: "no header at all"})
	c["other/filename from name= of Content-Type"] = sumMail("\r\n", sumPart{header: []string{
		`Content-Type: application/pdf; name="=?UTF-8?B?w6kucGRm?="`, "Content-Transfer-Encoding: base64",
	}, body: "QUJD"})
	c["other/bad Content-Type"] = sumMail("\r\n", sumPart{header: []string{"Content-Type: application/pdf; name", "Content-Transfer-Encoding: base64"}, body: "QUJD"})
	c["other/nested"] = []byte(strings.ReplaceAll(string(sumMail("\r\n",
		sumPart{header: []string{`Content-Type: multipart/alternative; boundary="b1"`}, body: "--b1\r\nContent-Type: text/plain\r\n\r\ninner\r\n--b1\r\n" +
			"Content-Type: image/gif\r\nContent-Transfer-Encoding: base64\r\n\r\nR0lGODlh\r\n--b1--"},
		sumAttachment("outer.bin", "QUJDRA=="))), "\x00", ""))
	c["other/no closing boundary"] = bytes.TrimSuffix(sumMail("\r\n", sumAttachment("a.bin", valid)), []byte("--b0--\r\n"))
	c["other/cut mid-attachment"] = sumMail("\r\n", sumAttachment("a.bin", valid))[:2000]
	c["single part/base64"] = []byte("From: a@example.com\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n" + valid + "\r\n")
	c["single part/text"] = []byte("From: a@example.com\r\nSubject: =?UTF-8?Q?caf=C3=A9?=\r\n\r\nbody\r\n")
	c["single part/quoted-printable multipart"] = []byte("From: a@example.com\r\nContent-Type: multipart/mixed; boundary=x\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n--x\r\nContent-Type: application/x\r\n\r\nab=3D\r\n--x--\r\n")
	c["single part/header only"] = []byte("From: a@example.com\r\nSubject: nothing more")
	c["single part/LF only"] = []byte("From: a@example.com\nContent-Type: application/pdf\nContent-Transfer-Encoding: base64\n\n" + sumBase64(sumRandom(100), 60, "\n") + "\n")
	return c
}

// TestSummarizeAsBefore: on every mail of the corpus Summarize returns
// what it did when it parsed the mail again and decoded every attachment.
func TestSummarizeAsBefore(t *testing.T) {
	for name, raw := range sumCorpus() {
		t.Run(name, func(t *testing.T) {
			m, err := ParseMail(contracts.Envelope{ID: "eq", RcptTo: []string{"bob@example.org"}}, raw)
			if err != nil {
				t.Fatal(err)
			}
			for _, limit := range []int{1 << 20, 7} {
				got, want := Summarize(t.Context(), m, limit), oldSummarize(t.Context(), m, limit)
				if !reflect.DeepEqual(got, want) {
					t.Errorf("limit %d:\ngot  %+v\nwant %+v", limit, got, want)
				}
			}
		})
	}
}

// TestSummarizeAttachmentSizes pins the sizes of valid base64 attachments
// to the length of the data encoded.
func TestSummarizeAttachmentSizes(t *testing.T) {
	for _, n := range []int{0, 1, 2, 3, 100, 200 << 10} {
		raw := sumMail("\r\n", sumAttachment("a.bin", sumBase64(sumRandom(n), 76, "\r\n")))
		m, err := ParseMail(contracts.Envelope{ID: "size"}, raw)
		if err != nil {
			t.Fatal(err)
		}
		s := Summarize(t.Context(), m, 1024)
		if len(s.Attachments) != 1 || s.Attachments[0].Size != n || s.Attachments[0].Filename != "a.bin" || s.ParseError != "" {
			t.Errorf("%d bytes: %+v (%q)", n, s.Attachments, s.ParseError)
		}
	}
}

// TestSummarizeConcatenatedBase64: after a padded quantum nothing more is
// counted, wherever the body's reads split.
func TestSummarizeConcatenatedBase64(t *testing.T) {
	raw := sumMail("\r\n", sumAttachment("two.bin", "QQ==\r\nQUJD"))
	m, err := ParseMail(contracts.Envelope{ID: "cat"}, raw)
	if err != nil {
		t.Fatal(err)
	}
	if s := Summarize(t.Context(), m, 1024); len(s.Attachments) != 1 || s.Attachments[0].Size != 1 {
		t.Errorf("attachments %+v, want one of 1 byte", s.Attachments)
	}
}

// TestSummarizeHugeHeader: a header too large for message.Read gets its
// ParseError, as before.
func TestSummarizeHugeHeader(t *testing.T) {
	raw := []byte("From: a@example.com\r\nX-Big: " + strings.Repeat("x", 1<<20) + "\r\n\r\nbody\r\n")
	m, err := ParseMail(contracts.Envelope{ID: "big"}, raw)
	if err != nil {
		t.Fatal(err)
	}
	got, want := Summarize(t.Context(), m, 1024), oldSummarize(t.Context(), m, 1024)
	if !reflect.DeepEqual(got, want) || got.ParseError == "" {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
}

// decodedSize is how go-message decoded a base64 body before: its decoder
// over the body, read to the end or its first error.
func decodedSize(body []byte) int {
	h := message.Header{}
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Transfer-Encoding", "base64")
	e, _ := message.New(h, bytes.NewReader(body))
	n, _ := io.Copy(io.Discard, e.Body)
	return int(n)
}

// afterPadding reports whether body has data after a padded quantum, the
// one case where b64Size and the decoder may differ (b64Size's doc).
func afterPadding(body []byte) bool {
	var c b64Count
	for i, b := range body {
		c.write([]byte{b})
		if c.done {
			return c.tail > 0 && len(bytes.Trim(body[i+1:], "\r\n \t")) > 0
		}
	}
	return false
}

func checkB64Size(t *testing.T, body []byte) {
	t.Helper()
	got, want := b64Size(bytes.NewReader(body)), decodedSize(body)
	if got != want && !(afterPadding(body) && got < want) {
		t.Errorf("b64Size(%q) = %d, decoded %d", body, got, want)
	}
	// Written in pieces, the count is the same.
	var c b64Count
	for i := 0; i < len(body); i += 3 {
		c.write(body[i:min(i+3, len(body))])
	}
	if n := 3*c.quanta + c.tail; n != got {
		t.Errorf("b64Size(%q) = %d in one piece, %d in pieces of 3", body, got, n)
	}
}

// TestB64Size compares b64Size with the decoder on random bodies, valid and
// not.
func TestB64Size(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	const alphabet = "AQgw+/=\r\n \t!-"
	for range 20000 {
		body := make([]byte, r.IntN(40))
		for i := range body {
			if r.IntN(4) == 0 {
				body[i] = alphabet[r.IntN(len(alphabet))]
			} else {
				body[i] = "ABCDabcd0123+/"[r.IntN(14)]
			}
		}
		checkB64Size(t, body)
	}
	for n := range 50 {
		checkB64Size(t, []byte(sumBase64(sumRandom(n), 76, "\r\n")))
	}
}

func FuzzB64Size(f *testing.F) {
	for _, s := range []string{"QUJD", "QQ==", "QUI=", "QQ=Q", "Q", "QUJD\r\n QUJD", "QQ==QUJD", "!"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkB64Size(t, body) })
}

// The summary as it was built before attachments were sized from their
// encoded bytes and ParseMail's header was reused: the reference
// TestSummarizeAsBefore compares Summarize with.

func oldSummarize(ctx context.Context, m *Mail, textLimit int) *contracts.Summary {
	s := &contracts.Summary{
		MessageID:   m.MessageID,
		Size:        len(m.Raw),
		TextParts:   []contracts.TextPart{},
		Attachments: []contracts.Attachment{},
	}
	s.From = addresses(m.Header, "From")
	s.To = addresses(m.Header, "To")
	s.Cc = addresses(m.Header, "Cc")
	if subj, err := m.Header.Subject(); err == nil {
		s.Subject = subj
	} else {
		s.Subject = m.Header.Get("Subject")
	}
	s.Date = m.Header.Get("Date")

	e, err := message.Read(bytes.NewReader(m.Raw))
	if err != nil && !tolerable(err) {
		s.ParseError = err.Error()
		return s
	}
	if err != nil {
		s.ParseError = err.Error()
	}
	w := &oldWalker{ctx: ctx, s: s, textLimit: textLimit, textBudget: 4 * textLimit}
	w.walk(e, 0)
	return s
}

type oldWalker struct {
	ctx        context.Context
	s          *contracts.Summary
	parts      int
	textLimit  int
	textBudget int
}

func (w *oldWalker) truncate(why string) {
	w.s.Truncated = joinReasons(w.s.Truncated, why)
}

func (w *oldWalker) walk(e *message.Entity, depth int) {
	if mr := e.MultipartReader(); mr != nil {
		if depth >= MaxMIMEDepth {
			w.truncate(fmt.Sprintf("MIME nesting deeper than %d; inner parts not listed", MaxMIMEDepth))
			return
		}
		for {
			if w.ctx.Err() != nil {
				w.truncate("summary cut short: " + w.ctx.Err().Error())
				return
			}
			p, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil && (p == nil || !tolerable(err)) {
				if w.s.ParseError == "" {
					w.s.ParseError = err.Error()
				}
				return
			}
			if err != nil && w.s.ParseError == "" {
				w.s.ParseError = err.Error()
			}
			if w.parts >= MaxParts {
				w.truncate(fmt.Sprintf("more than %d parts; the rest not listed", MaxParts))
				return
			}
			w.walk(p, depth+1)
		}
	}
	w.parts++
	ct, _, _ := e.Header.ContentType()
	if ct == "" {
		ct = "text/plain"
	}
	ah := mail.AttachmentHeader{Header: e.Header}
	disp, _, _ := e.Header.ContentDisposition()
	name, _ := ah.Filename()
	if strings.HasPrefix(ct, "text/") && disp != "attachment" && name == "" {
		if w.textBudget <= 0 {
			w.truncate(fmt.Sprintf("text parts beyond %d bytes in all not kept", 4*w.textLimit))
			return
		}
		tp := oldReadText(ct, e.Body, min(w.textLimit, w.textBudget))
		w.textBudget -= len(tp.Text)
		w.s.TextParts = append(w.s.TextParts, tp)
		return
	}
	w.s.Attachments = append(w.s.Attachments, oldAttachment(name, ct, e.Body))
}

func oldReadText(ct string, body io.Reader, limit int) contracts.TextPart {
	buf, _ := io.ReadAll(io.LimitReader(body, int64(limit)+1))
	tp := contracts.TextPart{ContentType: ct}
	if len(buf) > limit {
		buf = buf[:limit]
		// Drop only a rune cut in half at the limit. Invalid bytes
		// elsewhere are replaced below; trimming until the whole
		// buffer is valid would throw away all text after the first
		// invalid byte, in time quadratic in the limit.
		for i := 1; i <= utf8.UTFMax && i <= len(buf); i++ {
			if utf8.RuneStart(buf[len(buf)-i]) {
				if !utf8.FullRune(buf[len(buf)-i:]) {
					buf = buf[:len(buf)-i]
				}
				break
			}
		}
		tp.Truncated = true
	}
	tp.Text = strings.ToValidUTF8(string(buf), "\uFFFD")
	return tp
}

func oldAttachment(name, ct string, body io.Reader) contracts.Attachment {
	n, _ := io.Copy(io.Discard, body)
	return contracts.Attachment{Filename: name, ContentType: ct, Size: int(n)}
}
