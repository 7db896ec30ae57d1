package auth

// canonicalBodyLength returns the length in octets of body after the
// body canonicalization of RFC 6376 3.4.3 (simple) or 3.4.4 (relaxed),
// counted the way go-msgauth v0.7.0 canonicalizes before it hashes: a
// lone LF counts as CRLF, as a lone CR does not. It reads body once and
// allocates nothing.
//
// Simple: trailing empty lines are removed and the body ends in CRLF,
// so an empty body is one CRLF. Relaxed: white space at the end of each
// line is removed, other runs of white space count as one space, then
// trailing empty lines are removed, and an empty body stays empty.
func canonicalBodyLength(body []byte, relaxed bool) int64 {
	if relaxed {
		return relaxedBodyLength(body)
	}
	return simpleBodyLength(body)
}

// simpleBodyLength is canonicalBodyLength for simple: every octet up to
// the last that is not part of a line ending, then one CRLF.
func simpleBodyLength(body []byte) int64 {
	var n, kept int64
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case c == '\r' && i+1 < len(body) && body[i+1] == '\n':
			n += 2
			i++
		case c == '\n':
			n += 2 // a lone LF is CRLF
		default:
			n++
			kept = n
		}
	}
	return kept + 2
}

// relaxedBodyLength is canonicalBodyLength for relaxed. Line endings seen
// since the last visible octet count only when another visible octet
// follows; white space counts as one space only when a visible octet
// follows on the same line.
func relaxedBodyLength(body []byte) int64 {
	var n, pendingEOL int64
	wsp, written := false, false
	for i, c := range body {
		switch c {
		case ' ', '\t':
			wsp = true
		case '\r':
			wsp = false
			pendingEOL++
		case '\n':
			wsp = false
			pendingEOL++
			if i == 0 || body[i-1] != '\r' {
				pendingEOL++ // a lone LF is CRLF
			}
		default:
			n += pendingEOL
			pendingEOL = 0
			if wsp {
				n++
				wsp = false
			}
			n++
			written = true
		}
	}
	if written {
		n += 2
	}
	return n
}
