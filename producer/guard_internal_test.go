package producer

import (
	"net"
	"strings"
	"testing"
	"time"
)

// TestGuardFindsEndOfData: the guard's end-of-data scan agrees with
// go-smtp's DATA reader (the mail ends at a line ".\r\n" after CRLF, not
// after a bare LF, not at a dot-stuffed line) however the bytes are split.
func TestGuardFindsEndOfData(t *testing.T) {
	for _, c := range []struct{ content, after string }{
		{".\r\n", "QUIT\r\n"},
		{"a\r\n.\r\n", "QUIT\r\n"},
		{"a\r\n..\r\n.b\r\n\r\n.\r\n", "MAIL FROM:<a@b>\r\n"},
		{"a\n.\r\nb\r\n.\r\n", ""},     // a bare LF begins no line
		{"a\r\r\n.\r\nb\r\n.\r\n", ""}, // nor CR CR LF (for go-smtp a CR after a CR is mid-line)
		{"x" + strings.Repeat("y", 9000) + "\r\n.\r\n", "NOOP\r\n"},
	} {
		stream := c.content + c.after
		for _, split := range []int{1, 2, 3, 7, 4096, len(stream)} {
			a, b := net.Pipe()
			g := newGuard(a, &guardConfig{maxCommandLine: 100, dataTimeout: time.Hour, idleTimeout: time.Hour, event: func(string) {}}, func() {})
			g.phase, g.dot = phaseData, dotBeginLine
			end := -1
			for off := 0; off < len(stream) && end < 0; off += split {
				chunk := []byte(stream[off:min(off+split, len(stream))])
				if n := g.scanData(chunk); g.phase == phaseCommand {
					end = off + n
				}
			}
			if end != len(c.content) {
				t.Errorf("%q split by %d: content ends at %d, want %d", stream, split, end, len(c.content))
			}
			a.Close()
			b.Close()
		}
	}
}

// TestBdatChunk: BDAT command lines are parsed as go-smtp parses them.
func TestBdatChunk(t *testing.T) {
	for _, c := range []struct {
		line     string
		n        uint64
		last, ok bool
	}{
		{"BDAT 10\r\n", 10, false, true},
		{"bdat 0 last\r\n", 0, true, true},
		{"BDAT  5  LAST\n", 5, true, true},
		{"BDAT 5 MORE\r\n", 0, false, false},
		{"BDAT -1\r\n", 0, false, false},
		{"BDAT 99999999999\r\n", 0, false, false},
		{"BDAT\r\n", 0, false, false},
		{"BDATX 5\r\n", 0, false, false},
	} {
		n, last, ok := bdatChunk([]byte(c.line))
		if n != c.n || last != c.last || ok != c.ok {
			t.Errorf("bdatChunk(%q) = %d %v %v, want %d %v %v", c.line, n, last, ok, c.n, c.last, c.ok)
		}
	}
}
