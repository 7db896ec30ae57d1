package workers

import (
	"bufio"
	"bytes"
	"strings"
	"sync"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/rules"
)

// Mail is one mail as the pipeline sees it: envelope, raw bytes and the
// parsed header. It is read-only once built.
type Mail struct {
	Env    contracts.Envelope
	Raw    []byte
	Header mail.Header
	// MessageID is the Message-ID without angle brackets, "" if absent or
	// unparseable.
	MessageID string
	// From is the first From address, lower-cased; FromDomain its domain.
	From, FromDomain string
	// Evaluated is the outcome as Evaluate decided it (envelope,
	// authentication results, the flags consulted), set before a handler
	// runs; handlers read it and never change it. Nil for a Mail that
	// was not evaluated.
	Evaluated *contracts.Outcome

	// parsed is set by ParseMail: Raw[bodyAt:] is the body that follows
	// Header, so that Summarize need not parse the header again.
	parsed bool
	bodyAt int
}

// headerReaders are the readers ParseMail reads headers with; the header
// it returns holds copies, not the reader's buffer.
var headerReaders = sync.Pool{New: func() any {
	r := new(headerReader)
	r.br = bufio.NewReader(&r.raw)
	return r
}}

type headerReader struct {
	raw bytes.Reader
	br  *bufio.Reader
}

// ParseMail parses the header of raw. It fails with a Malformed error
// when the header block does not parse or has no From field: such a mail
// is not RFC 5322 and no retry will change that.
func ParseMail(env contracts.Envelope, raw []byte) (*Mail, error) {
	if len(raw) == 0 {
		return nil, malformed("malformed mail: empty")
	}
	hr := headerReaders.Get().(*headerReader)
	hr.raw.Reset(raw)
	hr.br.Reset(&hr.raw)
	th, err := textproto.ReadHeader(hr.br)
	bodyAt := len(raw) - hr.raw.Len() - hr.br.Buffered()
	hr.raw.Reset(nil)
	hr.br.Reset(&hr.raw)
	headerReaders.Put(hr)
	if err != nil {
		return nil, malformed("malformed mail: header: %v", err)
	}
	h := mail.Header{Header: message.Header{Header: th}}
	if !h.Has("From") {
		return nil, malformed("malformed mail: no From header field")
	}
	m := &Mail{Env: env, Raw: raw, Header: h, parsed: true, bodyAt: bodyAt}
	if id, err := h.MessageID(); err == nil {
		m.MessageID = id
	}
	if addrs, err := h.AddressList("From"); err == nil && len(addrs) > 0 {
		m.From = strings.ToLower(addrs[0].Address)
		if at := strings.LastIndexByte(m.From, '@'); at >= 0 {
			m.FromDomain = m.From[at+1:]
		}
	}
	return m, nil
}

// headerFacts returns the header facts that mail_header: scopes match:
// every field, unfolded and RFC 2047-decoded, keyed by lower-case name.
func headerFacts(h mail.Header) map[string][]string {
	return rules.HeadersFromFields(func(yield func(key, value string) bool) {
		fs := h.Fields()
		for fs.Next() {
			if !yield(fs.Key(), fs.Value()) {
				return
			}
		}
	})
}
