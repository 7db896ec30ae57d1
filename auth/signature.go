package auth

import (
	"bytes"
	"slices"
	"strings"
	"unicode"
)

// scanSignatures returns the values of the DKIM-Signature header fields
// of raw, in header order, with their continuation lines. It reads only
// the header section, splitting fields the way go-msgauth does, so that
// the i-th value belongs to go-msgauth's i-th verification. ended reports
// whether the header section ends with an empty line; body is then the
// offset of the body in raw (len(raw) otherwise).
func scanSignatures(raw []byte) (sigs []string, ended bool, body int) {
	var cur []byte // the value of the DKIM-Signature field being read
	flush := func() {
		if cur != nil {
			sigs = append(sigs, string(cur))
			cur = nil
		}
	}
	all := len(raw)
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line = raw[:i+1]
		}
		// The lines of a field are contiguous in raw: a field's value is
		// one subslice, extended by each continuation line.
		rest := raw[len(line):]
		if len(bytes.TrimRight(line, "\r\n")) == 0 && line[len(line)-1] == '\n' {
			flush()
			return sigs, true, all - len(rest)
		}
		if line[0] == ' ' || line[0] == '\t' {
			if cur != nil {
				cur = cur[:len(cur)+len(line)]
			}
			raw = rest
			continue
		}
		flush()
		if name, _, ok := bytes.Cut(line, []byte(":")); ok && isDKIMSignature(name) {
			cur = line[len(name)+1:]
		}
		raw = rest
	}
	flush()
	return sigs, false, all
}

func isDKIMSignature(name []byte) bool {
	return strings.EqualFold(string(bytes.TrimSpace(name)), "DKIM-Signature")
}

// reportedTags are the signature tags Verify reads: the ones go-msgauth
// does not report (s=, a=, c=, and d= when it stopped early), i=, which
// the key's t=s flag restricts, and l=, which the body must be long
// enough for and whose presence turns a failure into "policy".
var reportedTags = []string{"d", "s", "a", "c", "i", "l"}

// parseTags parses a DKIM tag list (RFC 6376 3.2) leniently: it never
// fails, the first of duplicate tags wins and whitespace is removed from
// values. go-msgauth judges malformed lists; this only reads the tags in
// keep, [reportedTags] when keep is empty.
func parseTags(s string, keep ...string) map[string]string {
	if len(keep) == 0 {
		keep = reportedTags
	}
	tags := make(map[string]string, len(keep))
	for len(s) > 0 {
		var kv string
		kv, s, _ = strings.Cut(s, ";")
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		k = strings.TrimSpace(k)
		if _, dup := tags[k]; dup || !slices.Contains(keep, k) {
			continue
		}
		tags[k] = stripSpace(v)
	}
	return tags
}

// stripSpace removes every white space character from v.
func stripSpace(v string) string {
	if strings.IndexFunc(v, unicode.IsSpace) < 0 {
		return v
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsSpace(r) {
			return -1
		}
		return r
	}, v)
}
