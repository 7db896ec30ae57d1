package producer

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// TestLimitedDataReads: the verdict on a mail does not depend on how
// its bytes are split into reads (the header section is scanned a byte
// at a time, the body a line at a time), and each limit holds exactly.
func TestLimitedDataReads(t *testing.T) {
	lim := dataLimits{maxSize: 200, maxLine: 20, maxHeaderBytes: 40, maxHeaderFields: 3}
	line := func(n int) string { return strings.Repeat("x", n-2) + "\r\n" }
	for _, c := range []struct {
		what string
		mail string
		want error
	}{
		{"within every limit", "A: 1\r\nB: 2\r\n\r\n" + line(20) + line(20), nil},
		{"body line over", "A: 1\r\n\r\n" + line(20) + line(21), errDataLineTooLong},
		{"bare LF ends lines", "A: 1\n\n" + strings.Repeat("y", 19) + "\n", nil},
		{"header line over", "A: " + line(18) + "\r\n", errDataLineTooLong},
		{"header bytes at the limit", "A: " + line(17) + "B: " + line(14) + "C\r\n\r\nbody\r\n", nil},
		{"header bytes over", "A: " + line(17) + "B: " + line(15) + "C\r\n\r\nbody\r\n", errHeaderTooLarge},
		{"folded field counts once", "A: 1\r\n 2\r\n 3\r\nB: 1\r\nC: 1\r\n\r\n", nil},
		{"fields over", "A: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\n\r\n", errTooManyHeaders},
		{"fields after the header are body", "A: 1\r\n\r\nB: 1\r\nC: 1\r\nD: 1\r\n", nil},
		{"size at the limit", "A: 1\r\n\r\n" + strings.Repeat(line(20), 9) + line(12), nil},
		{"size over", "A: 1\r\n\r\n" + strings.Repeat(line(20), 9) + line(13), errTooLarge},
	} {
		for _, r := range []struct {
			name string
			wrap func(io.Reader) io.Reader
		}{{"whole", func(r io.Reader) io.Reader { return r }}, {"bytes", iotest.OneByteReader}, {"halves", iotest.HalfReader}} {
			var got bytes.Buffer
			_, err := got.ReadFrom(newLimitedData(r.wrap(strings.NewReader(c.mail)), lim))
			if err != c.want {
				t.Errorf("%s, read %s: %v, want %v", c.what, r.name, err, c.want)
			}
			if err == nil && got.String() != c.mail {
				t.Errorf("%s, read %s: passed on %q", c.what, r.name, got.String())
			}
		}
	}
}
