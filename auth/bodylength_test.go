package auth

import "testing"

// TestCanonicalBodyLength checks the counts against what dkimpy's
// canonicalizers make of the same bodies (all equal but the lone CR,
// where the count follows go-msgauth, whose hash l= is checked against).
func TestCanonicalBodyLength(t *testing.T) {
	for _, tc := range []struct {
		body            string
		simple, relaxed int64
	}{
		{"", 2, 0},                                 // simple: CRLF; relaxed: empty (RFC 6376 3.4.3, 3.4.4)
		{"\r\n\r\n\r\n", 2, 0},                     // only empty lines
		{"a\r\n", 3, 3},                            // a CRLF
		{"a", 3, 3},                                // a line without its CRLF gets one
		{"a\r\n\r\n \r\n", 8, 3},                   // simple keeps " " CRLF; relaxed drops the line of white space
		{"a  b\t \r\n", 8, 5},                      // relaxed: "a b" CRLF
		{" a\r\n", 4, 4},                           // leading white space is one space
		{"a\nb\n\n", 6, 6},                         // a lone LF counts as CRLF
		{"a\r\r\n", 4, 3},                          // a lone CR: an octet of the line in simple; dropped before CRLF in relaxed, as go-msgauth does
		{"x\r\n\t\r\ny", 9, 8},                     // relaxed: "x" CRLF CRLF "y" CRLF; simple keeps the tab
		{"Hello.  \r\nBye\r\n\r\n-- \r\n", 22, 19}, // signature separator: relaxed drops its space
	} {
		if got := canonicalBodyLength([]byte(tc.body), false); got != tc.simple {
			t.Errorf("simple %q: %d, want %d", tc.body, got, tc.simple)
		}
		if got := canonicalBodyLength([]byte(tc.body), true); got != tc.relaxed {
			t.Errorf("relaxed %q: %d, want %d", tc.body, got, tc.relaxed)
		}
	}
}
