package workers

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"unicode/utf8"

	// Registers decoders for the charsets mail uses beyond UTF-8.
	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/mail"

	"github.com/mailscope/mailscope/contracts"
)

// Summarize returns a parsed view of m: addresses, subject, text parts up
// to textLimit bytes each, and the name, type and size of every other
// part. A body that cannot be fully parsed yields the parts read so far
// and ParseError; it is never an error.
func Summarize(m *Mail, textLimit int) *contracts.Summary {
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

	r, err := mail.CreateReader(bytes.NewReader(m.Raw))
	if err != nil && r == nil {
		s.ParseError = err.Error()
		return s
	}
	for {
		p, err := r.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil && p != nil && (message.IsUnknownCharset(err) || message.IsUnknownEncoding(err)) {
			// The part is still there, undecoded: keep it and go on.
			s.ParseError = err.Error()
		} else if err != nil {
			s.ParseError = err.Error()
			break
		}
		switch h := p.Header.(type) {
		case *mail.InlineHeader:
			ct, _, _ := h.ContentType()
			if ct == "" {
				ct = "text/plain"
			}
			if strings.HasPrefix(ct, "text/") {
				s.TextParts = append(s.TextParts, readText(ct, p.Body, textLimit))
				continue
			}
			s.Attachments = append(s.Attachments, attachment("", ct, p.Body))
		case *mail.AttachmentHeader:
			ct, _, _ := h.ContentType()
			name, _ := h.Filename()
			s.Attachments = append(s.Attachments, attachment(name, ct, p.Body))
		}
	}
	return s
}

func addresses(h mail.Header, key string) []string {
	list, err := h.AddressList(key)
	if err != nil {
		if v := h.Get(key); v != "" {
			return []string{v}
		}
		return nil
	}
	out := make([]string, 0, len(list))
	for _, a := range list {
		out = append(out, a.Address)
	}
	return out
}

func readText(ct string, body io.Reader, limit int) contracts.TextPart {
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

func attachment(name, ct string, body io.Reader) contracts.Attachment {
	n, _ := io.Copy(io.Discard, body)
	return contracts.Attachment{Filename: name, ContentType: ct, Size: int(n)}
}
