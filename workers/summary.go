package workers

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"unicode/utf8"

	// Registers decoders for the charsets mail uses beyond UTF-8.
	"github.com/emersion/go-message"
	_ "github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

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
//
// The header ParseMail parsed is reused, and an attachment is sized from
// its encoded bytes where that gives its decoded size (see [partSize]),
// without decoding it.
func Summarize(ctx context.Context, m *Mail, textLimit int) *contracts.Summary {
	return summarize(ctx, m, textLimit, nil)
}

// summarize is Summarize; attach, when not nil, reads every non-text
// part listed (in place of sizing it) and returns its decoded size.
func summarize(ctx context.Context, m *Mail, textLimit int, attach func(p *part, e *message.Entity) int) *contracts.Summary {
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

	w := &walker{ctx: ctx, s: s, textLimit: textLimit, textBudget: 4 * textLimit, attach: attach}
	if !m.parsed || m.bodyAt > maxReusedHeader {
		// A Mail not made by ParseMail, or a header so large that
		// message.Read refuses it: read the mail as message.Read does.
		e, err := message.Read(bytes.NewReader(m.Raw))
		if err != nil && !tolerable(err) {
			s.ParseError = err.Error()
			return s
		}
		if err != nil {
			s.ParseError = err.Error()
		}
		w.walk(newPart(e.Header, e.Body), e, 0)
		return s
	}
	p := newPart(m.Header.Header, bytes.NewReader(m.Raw[m.bodyAt:]))
	e, err := p.entity()
	if err != nil {
		s.ParseError = err.Error()
	}
	w.walk(p, e, 0)
	return s
}

// maxReusedHeader is the largest header (in bytes) whose parse by
// ParseMail Summarize reuses. message.Read refuses a header over 1 MiB
// (its MaxHeaderBytes default); past this bound, with a margin for its
// read-ahead, Summarize calls message.Read so that such a mail gets the
// same ParseError as before.
const maxReusedHeader = 1<<20 - 16<<10

// tolerable reports whether a part is still usable after err: an unknown
// charset or transfer encoding leaves the part undecoded, not missing.
func tolerable(err error) bool {
	return message.IsUnknownCharset(err) || message.IsUnknownEncoding(err)
}

// part is one MIME entity as read from the mail: its header, parsed once,
// and its body still encoded.
type part struct {
	h         message.Header
	body      io.Reader
	mediaType string
	params    map[string]string
	encoding  string // Content-Transfer-Encoding, lower case
}

func newPart(h message.Header, body io.Reader) *part {
	p := &part{h: h, body: body}
	p.mediaType, p.params, _ = h.ContentType()
	p.encoding = strings.ToLower(h.Get("Content-Transfer-Encoding"))
	return p
}

// plain reports whether message.New would leave the body of p as it is
// or only undo a base64 encoding, and cannot fail: p is multipart (never
// decoded), or not text with a charset (charsets apply to text/* only)
// and in an encoding message.New knows other than quoted-printable.
func (p *part) plain() bool {
	if strings.HasPrefix(p.mediaType, "multipart/") {
		return true
	}
	if strings.HasPrefix(p.mediaType, "text/") {
		if _, ok := p.params["charset"]; ok {
			return false
		}
	}
	switch p.encoding {
	case "base64", "7bit", "8bit", "binary", "":
		return true
	}
	return false
}

// entity returns the decoding entity message.New makes of p, with its
// error, when p is not plain; nil otherwise. Entities of plain parts are
// made only when their decoded body is read (text parts).
func (p *part) entity() (*message.Entity, error) {
	if p.plain() {
		return nil, nil
	}
	return message.New(p.h, p.body)
}

// walker lists the parts of one mail within the summary's limits.
type walker struct {
	ctx        context.Context
	s          *contracts.Summary
	parts      int
	textLimit  int
	textBudget int
	// attach reads a non-text part and returns its decoded size; nil:
	// the part is sized without reading it (partSize).
	attach func(p *part, e *message.Entity) int
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

// walk lists p and its parts. e is the entity message.New made of p, or
// nil when p is plain; it is what message.Entity.MultipartReader and
// NextPart would give, so the parts, their order and the errors seen are
// those of go-message.
func (w *walker) walk(p *part, e *message.Entity, depth int) {
	if strings.HasPrefix(p.mediaType, "multipart/") {
		if depth >= MaxMIMEDepth {
			w.truncate(fmt.Sprintf("MIME nesting deeper than %d; inner parts not listed", MaxMIMEDepth))
			return
		}
		body := p.body
		if e != nil {
			body = e.Body
		}
		mr := textproto.NewMultipartReader(body, p.params["boundary"])
		for {
			if w.ctx.Err() != nil {
				w.truncate("summary cut short: " + w.ctx.Err().Error())
				return
			}
			tp, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				if w.s.ParseError == "" {
					w.s.ParseError = err.Error()
				}
				return
			}
			sub := newPart(message.Header{Header: tp.Header}, tp)
			se, err := sub.entity()
			if err != nil && w.s.ParseError == "" {
				w.s.ParseError = err.Error()
			}
			if w.parts >= MaxParts {
				w.truncate(fmt.Sprintf("more than %d parts; the rest not listed", MaxParts))
				return
			}
			w.walk(sub, se, depth+1)
		}
	}
	w.parts++
	ct := p.mediaType // never empty: go-message's default is text/plain
	disp, dparams, _ := p.h.ContentDisposition()
	// As mail.AttachmentHeader.Filename, with the header parsed once.
	name, ok := dparams["filename"]
	if !ok {
		name = p.params["name"]
	}
	if strings.HasPrefix(ct, "text/") && disp != "attachment" && name == "" {
		if w.textBudget <= 0 {
			w.truncate(fmt.Sprintf("text parts beyond %d bytes in all not kept", 4*w.textLimit))
			return
		}
		if e == nil {
			e, _ = message.New(p.h, p.body) // plain: no error
		}
		tp := readText(ct, e.Body, min(w.textLimit, w.textBudget))
		w.textBudget -= len(tp.Text)
		w.s.TextParts = append(w.s.TextParts, tp)
		return
	}
	size := 0
	if w.attach != nil {
		size = w.attach(p, e)
	} else {
		size = partSize(p, e)
	}
	w.s.Attachments = append(w.s.Attachments, contracts.Attachment{Filename: name, ContentType: ct, Size: size})
}

func addresses(h mail.Header, key string) []string {
	list, err := h.AddressList(key)
	if err != nil { // the field is there (an absent one parses as none)
		return []string{h.Get(key)}
	}
	out := make([]string, 0, len(list))
	for _, a := range list {
		out = append(out, a.Address)
	}
	return out
}

// bufs holds the buffers text parts are read into and bodies are counted
// with, so that a summary allocates only what it keeps.
var bufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func readText(ct string, body io.Reader, limit int) contracts.TextPart {
	bb := bufs.Get().(*bytes.Buffer)
	defer putBuf(bb)
	bb.Reset()
	bb.ReadFrom(io.LimitReader(body, int64(limit)+1))
	buf := bb.Bytes()
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
	if utf8.Valid(buf) {
		tp.Text = string(buf)
	} else {
		tp.Text = strings.ToValidUTF8(string(buf), "\uFFFD")
	}
	return tp
}

// putBuf returns bb to bufs unless it grew large (a text limit of
// megabytes), so that the pool does not pin big buffers.
func putBuf(bb *bytes.Buffer) {
	if bb.Cap() <= 256<<10 {
		bufs.Put(bb)
	}
}

// partSize returns the decoded size of the body of p, the Size of its
// Attachment, as reading the body message.New makes of p would count it:
//   - base64: counted from the encoded bytes without decoding them (see
//     [b64Size]);
//   - 7bit, 8bit, binary or no Content-Transfer-Encoding: not encoded, so
//     the length of the body;
//   - quoted-printable, an unknown encoding (left undecoded by go-message)
//     or a text/* part with a charset (converted to UTF-8): decoded by
//     go-message, e, and counted, since only decoding tells.
func partSize(p *part, e *message.Entity) int {
	var n int64
	switch {
	case e != nil:
		n, _ = io.Copy(io.Discard, e.Body)
	case p.encoding == "base64":
		return b64Size(p.body)
	default:
		n, _ = io.Copy(io.Discard, p.body)
	}
	return int(n)
}

// chunks are the buffers base64 bodies are read through.
var chunks = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// b64Size returns how many bytes decoding the base64 body r yields, from
// its characters alone: 3 per complete quantum of 4 characters, less the
// padding of the final one (1 for "xx==", 2 for "xxx="), the same count as
// go-message's decoder (encoding/base64 behind a reader that turns spaces
// and tabs into line feeds) on a valid body.
//
// On an invalid body the count, like the decoder's, ends at the first
// error: it covers the quanta before a character outside the base64
// alphabet and white space (CR, LF, space, tab), before a misplaced "="
// ("=" or "x=" at the start of a quantum, "xx=x"), and before a final
// quantum cut short, which yields nothing. After a padded quantum nothing
// more is counted: data following one ("concatenated base64") is not
// valid, and the decoder took it or refused it depending only on where
// its reads happened to split the body.
func b64Size(r io.Reader) int {
	bp := chunks.Get().(*[]byte)
	defer chunks.Put(bp)
	var c b64Count
	for !c.done {
		n, err := r.Read(*bp)
		c.write((*bp)[:n])
		if err != nil {
			break
		}
	}
	return 3*c.quanta + c.tail
}

// Classes of bytes in a base64 body.
const (
	b64Bad   = iota // not base64: the decoder stops
	b64Data         // A-Z a-z 0-9 + /
	b64Space        // CR, LF, space, tab: skipped
	b64Pad          // =
)

var b64Class = func() (t [256]uint8) {
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/" {
		t[c] = b64Data
	}
	for _, c := range "\r\n \t" {
		t[c] = b64Space
	}
	t['='] = b64Pad
	return t
}()

// b64Fast has bit 1 set for data characters and bit 2 for every byte that
// is neither data nor white space.
var b64Fast = func() (t [256]uint8) {
	for i, k := range b64Class {
		switch k {
		case b64Data:
			t[i] = 1
		case b64Space:
		default:
			t[i] = 2
		}
	}
	return t
}()

// b64Count counts the decoded bytes of a base64 body written to it.
type b64Count struct {
	quanta int  // complete quanta of 4 characters
	pos    int  // characters of the quantum under way
	tail   int  // bytes of the final, padded quantum
	pad    bool // the quantum under way has one "=" after 2 characters
	done   bool // counting has ended: after a padded quantum, or an error
}

func (c *b64Count) write(p []byte) {
	if !c.pad && !c.done {
		// The common case, a run of data characters and line breaks
		// only: count without branching on each byte.
		data, special := 0, uint8(0)
		q := p
		for len(q) >= 8 {
			k0, k1, k2, k3 := b64Fast[q[0]], b64Fast[q[1]], b64Fast[q[2]], b64Fast[q[3]]
			k4, k5, k6, k7 := b64Fast[q[4]], b64Fast[q[5]], b64Fast[q[6]], b64Fast[q[7]]
			special |= k0 | k1 | k2 | k3 | k4 | k5 | k6 | k7
			data += int((k0 + k1 + k2 + k3 + k4 + k5 + k6 + k7) & 0xf)
			q = q[8:]
		}
		for _, b := range q {
			k := b64Fast[b]
			data += int(k & 1)
			special |= k
		}
		if special&2 == 0 {
			c.add(data)
			return
		}
	}
	for len(p) > 0 && !c.done {
		if !c.pad {
			data, i := 0, 0
			for ; i < len(p); i++ {
				k := b64Class[p[i]]
				if k == b64Data {
					data++
				} else if k != b64Space {
					break
				}
			}
			c.add(data)
			if p = p[i:]; len(p) == 0 {
				return
			}
		}
		c.special(p[0])
		p = p[1:]
	}
}

// add counts n data characters.
func (c *b64Count) add(n int) {
	c.pos += n
	c.quanta += c.pos / 4
	c.pos %= 4
}

// special takes a byte that is not a data character, or any byte after a
// first "=".
func (c *b64Count) special(b byte) {
	switch b64Class[b] {
	case b64Space:
	case b64Pad:
		switch {
		case c.pad: // xx==
			c.tail, c.done = 1, true
		case c.pos == 3: // xxx=
			c.tail, c.done = 2, true
		case c.pos == 2: // xx=, another "=" must follow
			c.pad = true
		default: // = or x=: misplaced padding
			c.done = true
		}
	default: // not base64, or data after xx=
		c.done = true
	}
}
