package loadtest

import (
	"fmt"
	"strings"
	"time"

	"github.com/mailscope/mailscope/testkit"
)

// mailDomain is the domain of the run's recipients and Message-IDs.
const mailDomain = "loadtest.example"

// mail is one mail of a run and what became of it. Its fields are
// guarded by the run's table lock once it is registered.
type mail struct {
	n         int
	messageID string // without angle brackets
	rcpt      string
	lmtp      bool
	broken    bool // no RFC 5322 mail: its outcome must be "dead"
	from      string
	corpus    *CorpusMail // nil for a synthetic mail

	scheduled time.Time // open loop: when DATA was to start
	started   time.Time // MAIL FROM sent
	dataStart time.Time // DATA sent
	dataEnd   time.Time // the last byte of DATA handed to the connection
	answered  time.Time // final reply read
	accepted  bool      // 250 to DATA
	code      int       // reply code of a refusal; 0 for a transport error
	failed    bool      // refused, or a transport error

	outcomeAt   time.Time // first outcome event received
	disposition string
	dkim        string // result of the first signature
}

// newMail returns mail number n of the run, unregistered. With a
// corpus, mail n is corpus mail n-1 (modulo the corpus's size); its
// envelope recipient, unique to the send, is what its outcome is matched
// by, since a corpus mail's Message-ID repeats when the corpus is sent
// again.
func (r *run) newMail(n int, lmtp bool) *mail {
	m := &mail{
		n:         n,
		messageID: fmt.Sprintf("%d.%s@%s", n, r.token, mailDomain),
		rcpt:      fmt.Sprintf("n%d@%s.%s", n, r.token, mailDomain),
		lmtp:      lmtp,
		broken:    r.cfg.DeadEvery > 0 && n%r.cfg.DeadEvery == 0,
		from:      "loadtest@" + mailDomain,
	}
	if cp := r.cfg.Corpus; cp != nil && !m.broken {
		m.corpus = &cp.Mails[(n-1)%len(cp.Mails)]
		m.messageID, m.from = m.corpus.MessageID, m.corpus.From
	}
	return m
}

// latencyStart is where a mail's latencies count from: the scheduled
// time in an open loop (so that a late send counts its lateness), the
// DATA command otherwise.
func (m *mail) latencyStart() time.Time {
	if !m.scheduled.IsZero() {
		return m.scheduled
	}
	return m.dataStart
}

// raw builds the mail: a plain-text RFC 5322 mail of exactly cfg.Size
// bytes, then signed when a signer is configured; or, for a broken mail,
// as many bytes of text without a header block.
func (r *run) raw(m *mail) ([]byte, error) {
	if m.corpus != nil {
		return m.corpus.Raw, nil
	}
	if m.broken {
		head := fmt.Sprintf("this is no header block (mailscope load test %s #%d)\r\n\r\n", r.token, m.n)
		return appendBody([]byte(head), max(r.cfg.Size-len(head), 2)), nil
	}
	head := testkit.SampleMail("Load Test <loadtest@"+mailDomain+">", m.rcpt,
		fmt.Sprintf("mailscope load test %s #%d", r.token, m.n), "", r.date, m.messageID)
	pad := r.cfg.Size - len(head)
	if pad < 2 {
		return nil, fmt.Errorf("loadtest: size %d leaves no room for a body after %d bytes of headers", r.cfg.Size, len(head))
	}
	raw := make([]byte, 0, r.cfg.Size)
	raw = append(raw, head...)
	raw = appendBody(raw, pad)
	if r.cfg.Signer == nil {
		return raw, nil
	}
	return testkit.Sign(raw, testkit.SignOptions{Domain: r.cfg.Signer.Domain, Selector: r.cfg.Signer.Selector, Key: r.cfg.Signer.Key})
}

// bodyLine is one full line of a body: 76 characters and CRLF.
var bodyLine = strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyz", 3)[:76] + "\r\n"

// appendBody appends exactly n (at least 2) bytes of body in lines of at
// most 78 bytes, CRLF-terminated.
func appendBody(b []byte, n int) []byte {
	for n > 0 {
		l := min(n, len(bodyLine))
		if n-l == 1 { // never leave a lone byte for the last line
			l--
		}
		b = append(b, bodyLine[:l-2]...)
		b = append(b, "\r\n"...)
		n -= l
	}
	return b
}
