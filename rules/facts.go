package rules

import (
	"io"
	"mime"
	"strings"

	"github.com/emersion/go-message/charset"
)

// Facts are the facts of one mail that scopes are evaluated on. The worker
// builds one Facts per mail and evaluates it against one Snapshot; results
// of scope terms are memoized in it. A Facts is not safe for concurrent use.
type Facts struct {
	// Headers maps lower-case header names to their values, one per
	// occurrence, unfolded and RFC 2047-decoded; see HeadersFromFields.
	Headers map[string][]string
	// Rcpts are the envelope recipients.
	Rcpts []string
	// From is the lower-cased From address (addr-spec), "" if none.
	From string
	// DKIMPass lists the lower-cased d= domains whose signature verified
	// pass.
	DKIMPass []string
	// DKIMKnown is false until verification ran; while it is false, dkim:
	// terms are false and their result is not memoized.
	DKIMKnown bool
	// Trust is the trust level: TrustStrong, TrustWeak or TrustNone.
	Trust string
	// TrustKnown is false until the trust level is decided; while it is
	// false, trust: terms are false and their result is not memoized.
	TrustKnown bool
	// Env is the worker's configured environment, e.g. "staging".
	Env string
	// Release is the worker's version.
	Release string

	memo    []uint8 // per snapshot term: 0 unknown, 1 false, 2 true
	memoFor *Snapshot
}

const (
	memoUnknown uint8 = iota
	memoFalse
	memoTrue
)

// HeadersFromFields builds Facts.Headers from the header fields of a mail,
// given as (name, value) pairs in order, e.g. from the Fields iterator of
// a go-message textproto.Header, which gives each value unfolded:
//
//	rules.HeadersFromFields(func(yield func(k, v string) bool) {
//		for f := h.Fields(); f.Next(); {
//			if !yield(f.Key(), f.Value()) { return }
//		}
//	})
//
// Names are lower-cased. Values are trimmed, and RFC 2047 encoded-words
// are decoded. An encoded-word in an unknown charset
// or with a broken encoding is kept as raw text; decoding never fails.
func HeadersFromFields(fields func(yield func(key, value string) bool)) map[string][]string {
	h := make(map[string][]string)
	for k, v := range fields {
		k = strings.ToLower(strings.TrimSpace(k))
		h[k] = append(h[k], HeaderValue(v))
	}
	return h
}

// HeaderValue returns a header field value, as a header reader gives it
// unfolded, trimmed and RFC 2047-decoded, as stored in Facts.Headers.
func HeaderValue(value string) string {
	return decodeWords(strings.TrimSpace(value))
}

var wordDecoder = &mime.WordDecoder{
	CharsetReader: func(cs string, input io.Reader) (io.Reader, error) {
		return charset.Reader(cs, input)
	},
}

// decodeWords decodes the RFC 2047 encoded-words of s. It tries the whole
// value first; if that fails (an unknown charset, a broken word), it
// decodes word by word and keeps each failing word as written.
func decodeWords(s string) string {
	if !strings.Contains(s, "=?") {
		return s
	}
	if d, err := wordDecoder.DecodeHeader(s); err == nil {
		return d
	}
	var b strings.Builder
	prevWord := false // the last thing written was a decoded encoded-word
	pendingSpace := ""
	for s != "" {
		i := strings.Index(s, "=?")
		if i < 0 {
			b.WriteString(pendingSpace)
			b.WriteString(s)
			break
		}
		lead := s[:i]
		word, n := encodedWordAt(s[i:])
		if n == 0 {
			b.WriteString(pendingSpace)
			b.WriteString(s[:i+2])
			s = s[i+2:]
			pendingSpace, prevWord = "", false
			continue
		}
		d, err := wordDecoder.Decode(word)
		if err != nil {
			b.WriteString(pendingSpace)
			b.WriteString(lead)
			b.WriteString(word)
			pendingSpace, prevWord = "", false
		} else {
			// White space between two adjacent encoded-words is dropped.
			if !(prevWord && strings.Trim(lead, " \t") == "") {
				b.WriteString(pendingSpace)
				b.WriteString(lead)
			}
			b.WriteString(d)
			pendingSpace, prevWord = "", true
		}
		s = s[i+n:]
		// Hold back white space that may separate two encoded-words.
		j := 0
		for j < len(s) && (s[j] == ' ' || s[j] == '\t') {
			j++
		}
		pendingSpace, s = s[:j], s[j:]
	}
	return b.String()
}

// encodedWordAt returns the encoded-word "=?charset?enc?text?=" at the start
// of s and its length, or n == 0 if s does not start with one.
func encodedWordAt(s string) (word string, n int) {
	// =?charset?e?text?=
	q1 := strings.IndexByte(s[2:], '?')
	if q1 < 0 {
		return "", 0
	}
	q1 += 2
	if q1+3 > len(s) || s[q1+2] != '?' {
		return "", 0
	}
	end := strings.Index(s[q1+3:], "?=")
	if end < 0 {
		return "", 0
	}
	n = q1 + 3 + end + 2
	if strings.ContainsAny(s[:n], " \t") {
		return "", 0
	}
	return s[:n], n
}
