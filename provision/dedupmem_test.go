package provision_test

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/systest"
)

// TestDedupMemory measures what one entry of a stream's duplicate window
// costs in nats-server's memory: it publishes MAILSCOPE_DEDUP_ENTRIES
// (default 200,000) messages with distinct content ids as Nats-Msg-Id
// into a stream with a 24h window that keeps only its last message (so
// the messages' own memory does not count, as on a work queue whose mail
// was acked), and compares the heap of the embedded server, after GC,
// before and after. It runs only with MAILSCOPE_MEASURE_DEDUP=1
// (docs/performance.md, "Duplicate windows"):
//
//	MAILSCOPE_MEASURE_DEDUP=1 go test ./provision -run TestDedupMemory -v
func TestDedupMemory(t *testing.T) {
	if os.Getenv("MAILSCOPE_MEASURE_DEDUP") == "" {
		t.Skip("a measurement: set MAILSCOPE_MEASURE_DEDUP=1")
	}
	n := 200_000
	if s := os.Getenv("MAILSCOPE_DEDUP_ENTRIES"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil {
			t.Fatal(err)
		}
	}
	env := systest.Start(t)
	js := env.Admin(t)
	ctx := t.Context()
	heap := func() uint64 {
		var ms runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	measure := func(name string, ids bool) float64 {
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
			Name: name, Subjects: []string{name}, Storage: jetstream.MemoryStorage,
			MaxMsgs: 1, Discard: jetstream.DiscardOld, Duplicates: 24 * time.Hour,
		}); err != nil {
			t.Fatal(err)
		}
		before := heap()
		start := time.Now()
		for i := 0; i < n; i++ {
			m := &nats.Msg{Subject: name, Header: nats.Header{}, Data: []byte("x")}
			if ids {
				m.Header.Set(nats.MsgIdHdr, contracts.ContentID("a@example.com", []string{fmt.Sprintf("r%d@example.org", i)}, nil))
			}
			if _, err := js.PublishMsgAsync(m); err != nil {
				t.Fatal(err)
			}
			if i%5000 == 4999 {
				select {
				case <-js.PublishAsyncComplete():
				case <-time.After(systest.Wait):
					t.Fatal("async publishes not acknowledged")
				}
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(systest.Wait):
			t.Fatal("async publishes not acknowledged")
		}
		took := time.Since(start)
		after := heap()
		per := (float64(after) - float64(before)) / float64(n)
		t.Logf("%s: %d messages in %v, heap %d -> %d bytes: %.1f bytes per message", name, n, took.Round(time.Millisecond), before, after, per)
		return per
	}
	base := measure("NOIDS", false)
	with := measure("IDS", true)
	entry := with - base
	t.Logf("one duplicate-window entry (32-character id): %.0f bytes", entry)
	for _, w := range []time.Duration{time.Hour, 6 * time.Hour, 24 * time.Hour} {
		entries := 1000 * w.Seconds()
		t.Logf("at 1,000 mails/s, a %v window holds %.1fM entries: %.2f GiB per stream", w, entries/1e6, entries*entry/(1<<30))
	}
}
