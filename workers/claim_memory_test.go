package workers

import (
	"bytes"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"github.com/mailscope/mailscope/contracts"
)

// chunkReader yields its data in chunks of the claim bucket's chunk size
// without allocating, as nats.go's object reader hands over chunks.
type chunkReader struct {
	data []byte
	pos  int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if c.pos == len(c.data) {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), 128<<10)], c.data[c.pos:])
	c.pos += n
	return n, nil
}

// peakRSS returns the process's peak resident set (VmHWM) in bytes.
func peakRSS(t *testing.T) uint64 {
	t.Helper()
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for line := range strings.Lines(string(status)) {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/self/status")
	return 0
}

// resetPeakRSS returns the heap's free pages to the system and restarts
// the peak resident set at the current one (Linux: clear_refs 5).
func resetPeakRSS(t *testing.T) {
	t.Helper()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Skipf("cannot reset the peak resident set: %v", err)
	}
}

// TestClaimedMailMemoryBound: a worker takes a 30 MiB DKIM-signed mail
// from its object and processes it (read into one buffer, DKIM verified,
// flags decided, summarized) holding less than twice the mail's size at
// any moment: the growth of the process's peak resident set over the
// processing, measured by the kernel (VmHWM). The garbage collector runs
// at GOGC 5 meanwhile, so that what is measured is what the worker holds,
// not garbage the collector has yet to reclaim: the work allocates about
// 3x the mail in all, nearly all of it go-msgauth's per-chunk copies,
// dropped at once (a process at the default GOGC 100 reaches more; see
// docs/architecture.md, "Large mail", for the measured processes and
// GOMEMLIMIT). The chunks come from memory here: the server holding the
// object is another process in production.
func TestClaimedMailMemoryBound(t *testing.T) {
	if testing.Short() {
		t.Skip("30 MiB mail")
	}
	b := setupPipeline(t, Config{})
	body := bytes.Repeat([]byte("The quick brown fox jumps over the lazy dog, again and again.\r\n"), 30<<20/64)
	raw := b.sign(t, plainMail("bob@example.org", "large", string(body)), selRSA)
	size := int64(len(raw))
	env := envelope("large-1", "bob@example.org")
	env.Claim = &contracts.Claim{Object: "claim.large-1", Size: size}
	snap := snapshotOf(t, map[string]string{})
	// A first run warms the resolver's cache and the pools.
	if _, err := b.p.Process(t.Context(), snap, env, raw, 1); err != nil {
		t.Fatal(err)
	}

	// The worker's own bound while claimed mail is in process, under the
	// roles' usual target.
	defer debug.SetGCPercent(debug.SetGCPercent(400))
	restore := tightGC()
	defer restore()
	runtime.GC()
	resetPeakRSS(t)
	before := peakRSS(t)
	got, err := readObject(&chunkReader{data: raw}, size)
	if err != nil {
		t.Fatal(err)
	}
	out, err := b.p.Process(t.Context(), snap, env, got, 1)
	used := peakRSS(t) - before
	runtime.KeepAlive(got)
	if err != nil {
		t.Fatal(err)
	}
	if out.Disposition != contracts.Processed || len(out.Auth.DKIM) != 1 || out.Auth.DKIM[0].Result != contracts.ResultPass {
		t.Fatalf("outcome %s, dkim %+v; want processed with a pass", out.Disposition, out.Auth.DKIM)
	}
	t.Logf("mail %d bytes: peak resident set grew %d bytes (%.2fx)", size, used, float64(used)/float64(size))
	if used >= 2*uint64(size) {
		t.Errorf("processing a %d-byte claimed mail grew the peak resident set by %d bytes, %.2f times its size; want under 2", size, used, float64(used)/float64(size))
	}
}
