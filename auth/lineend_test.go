package auth

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/mailscope/mailscope/testkit"
)

// lf turns every CRLF of raw into a bare LF.
func lf(raw []byte) []byte { return bytes.ReplaceAll(raw, []byte("\r\n"), []byte("\n")) }

// A mail signed with CRLF line endings and stored with bare LF (published
// straight to the stream from a Unix file) verifies as if it had CRLF.
func TestVerifyBareLF(t *testing.T) {
	b := setup(t, Config{})
	b.publish(t, "sel", "example.com", "ed")
	body := "Hello,\n\n  indented  line \t\nlast line\n\n\n"
	for _, c := range []string{"simple/simple", "relaxed/relaxed", "relaxed/simple", "simple/relaxed"} {
		t.Run(c, func(t *testing.T) {
			hc, bc, _ := strings.Cut(c, "/")
			signed, err := testkit.Sign(mail(body), testkit.SignOptions{Domain: "example.com", Selector: "sel",
				Key: b.keys["ed"], HeaderCanon: hc, BodyCanon: bc})
			if err != nil {
				t.Fatal(err)
			}
			bare := lf(signed)
			if bytes.Contains(bare, []byte("\r")) {
				t.Fatal("test mail still has CR")
			}
			for name, raw := range map[string][]byte{"crlf": signed, "bare lf": bare} {
				if _, s := verifyOne(t, b.v, raw); s.Result != "pass" || s.Canonicalization != c {
					t.Errorf("%s: got %+v", name, s)
				}
			}
			// Bare LF does not excuse a change.
			tampered := bytes.Replace(bare, []byte("last line"), []byte("last lime"), 1)
			if _, s := verifyOne(t, b.v, tampered); s.Result != "fail" {
				t.Errorf("tampered bare-LF mail: got %+v", s)
			}
		})
	}
}

// Large bodies reach go-msgauth in chunks (after the 4 KiB its
// bufio.Reader buffers first); a CRLF or a run of spaces cut by a chunk
// boundary must canonicalize as if it were not.
func TestVerifyChunkBoundaries(t *testing.T) {
	b := setup(t, Config{})
	b.publish(t, "sel", "example.com", "ed")
	line := strings.Repeat("x", 70) + "  \t " + "y\r\n"
	for _, c := range []string{"simple/simple", "relaxed/relaxed"} {
		hc, bc, _ := strings.Cut(c, "/")
		for shift := range len(line) {
			// Shift the body so that each byte of a line falls on the
			// boundary in turn.
			body := strings.Repeat("z", shift) + "\r\n" + strings.Repeat(line, (chunkSize+8192)/len(line))
			signed, err := testkit.Sign(mail(body), testkit.SignOptions{Domain: "example.com", Selector: "sel",
				Key: b.keys["ed"], HeaderCanon: hc, BodyCanon: bc})
			if err != nil {
				t.Fatal(err)
			}
			for name, raw := range map[string][]byte{"crlf": signed, "bare lf": lf(signed)} {
				if _, s := verifyOne(t, b.v, raw); s.Result != "pass" {
					t.Fatalf("%s, shift %d, %s: got %+v", c, shift, name, s)
				}
			}
		}
	}
}

func TestChunkReader(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), (2*chunkSize+100)/16)
	if err := iotest.TestReader(&chunkReader{b: data}, data); err != nil {
		t.Error(err)
	}
	var sizes []int
	w := writerFunc(func(p []byte) (int, error) { sizes = append(sizes, len(p)); return len(p), nil })
	n, err := (&chunkReader{b: data}).WriteTo(w)
	if err != nil || n != int64(len(data)) {
		t.Fatalf("WriteTo = %d, %v", n, err)
	}
	if fmt.Sprint(sizes) != fmt.Sprint([]int{chunkSize, chunkSize, len(data) - 2*chunkSize}) {
		t.Errorf("writes of %v bytes", sizes)
	}
	short := writerFunc(func(p []byte) (int, error) { return len(p) / 2, nil })
	if _, err := (&chunkReader{b: data}).WriteTo(short); err != io.ErrShortWrite {
		t.Errorf("short write: %v", err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestCanonicalization(t *testing.T) {
	for c, want := range map[string]string{
		"":                "simple/simple",
		"relaxed":         "relaxed/simple",
		"Relaxed/Relaxed": "relaxed/relaxed",
		"simple/relaxed":  "simple/relaxed",
		"/relaxed":        "simple/relaxed",
	} {
		tags := map[string]string{}
		if c != "" {
			tags["c"] = c
		}
		if got := canonicalization(tags); got != want {
			t.Errorf("c=%q: %q, want %q", c, got, want)
		}
	}
	if got := canonicalization(nil); got != "" {
		t.Errorf("no tags: %q", got)
	}
}
