package auth

import (
	"bytes"
	"strings"
	"unicode"
)

// scanSignatures returns the values of the DKIM-Signature header fields
// of raw, in header order, with their continuation lines. It reads only
// the header section, splitting fields the way go-msgauth does, so that
// the i-th value belongs to go-msgauth's i-th verification. ended reports
// whether the header section ends with an empty line.
func scanSignatures(raw []byte) (sigs []string, ended bool) {
	cur := -1 // index in sigs of the field being read, or -1
	for len(raw) > 0 {
		line := raw
		if i := bytes.IndexByte(raw, '\n'); i >= 0 {
			line = raw[:i+1]
		}
		raw = raw[len(line):]
		if len(bytes.TrimRight(line, "\r\n")) == 0 && line[len(line)-1] == '\n' {
			return sigs, true
		}
		if line[0] == ' ' || line[0] == '\t' {
			if cur >= 0 {
				sigs[cur] += string(line)
			}
			continue
		}
		cur = -1
		name, value, ok := bytes.Cut(line, []byte(":"))
		if ok && strings.EqualFold(string(bytes.TrimSpace(name)), "DKIM-Signature") {
			sigs = append(sigs, string(value))
			cur = len(sigs) - 1
		}
	}
	return sigs, false
}

// parseTags parses a DKIM tag list (RFC 6376 3.2) leniently: it never
// fails, the first of duplicate tags wins and whitespace is removed from
// values. go-msgauth judges malformed lists; this only reads the tags it
// does not report (s=, a=, and d= when it stopped early).
func parseTags(s string) map[string]string {
	tags := make(map[string]string)
	for _, kv := range strings.Split(s, ";") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok {
			continue
		}
		k = strings.TrimSpace(k)
		if _, dup := tags[k]; !dup {
			tags[k] = strings.Map(func(r rune) rune {
				if unicode.IsSpace(r) {
					return -1
				}
				return r
			}, v)
		}
	}
	return tags
}
