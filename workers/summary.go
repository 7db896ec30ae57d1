package workers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	// Registers decoders for the charsets mail uses beyond UTF-8.
	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/mail"

	"github.com/mailscope/mailscope/contracts"
)

// Limits of a summary, so that no mail can make its outcome too large to
// store or its parsing unbounded in time.
const (
	// MaxMIMEDepth is the deepest multipart nesting walked; deeper parts
	// are not listed (Summary.Truncated says so).
	MaxMIMEDepth = 16
	// MaxParts is the most leaf parts listed.
	MaxParts = 256
)

// Summarize returns a parsed view of m: addresses, subject, text parts up
// to textLimit bytes each (and 4 × textLimit in all), and the name, type
// and size of every other part, down to MaxMIMEDepth and up to MaxParts.
// A body that cannot be fully parsed yields the parts read so far and
// ParseError; it is never an error. ctx ends the walk early.
func Summarize(ctx context.Context, m *Mail, textLimit int) *contracts.Summary {
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
	w := &walker{ctx: ctx, s: s, textLimit: textLimit, textBudget: 4 * textLimit}
	w.walk(e, 0)
	return s
}

// tolerable reports whether a part is still usable after err: an unknown
// charset or transfer encoding leaves the part undecoded, not missing.
func tolerable(err error) bool {
	return message.IsUnknownCharset(err) || message.IsUnknownEncoding(err)
}

// walker lists the parts of one mail within the summary's limits.
type walker struct {
	ctx        context.Context
	s          *contracts.Summary
	parts      int
	textLimit  int
	textBudget int
}

func (w *walker) truncate(why string) {
	w.s.Truncated = joinReasons(w.s.Truncated, why)
}

// joinReasons appends why to reasons, once.
func joinReasons(reasons, why string) string {
	switch {
	case reasons == "":
		return why
	case strings.Contains(reasons, why):
		return reasons
	}
	return reasons + "; " + why
}

func (w *walker) walk(e *message.Entity, depth int) {
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
		tp := readText(ct, e.Body, min(w.textLimit, w.textBudget))
		w.textBudget -= len(tp.Text)
		w.s.TextParts = append(w.s.TextParts, tp)
		return
	}
	w.s.Attachments = append(w.s.Attachments, attachment(name, ct, e.Body))
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
