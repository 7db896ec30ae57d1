package dev_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/dev"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/testkit"
)

// BenchmarkReloadLatency measures, in a running system, how long a rule
// change takes to be in force:
//
//   - store: from a `kv put` of mail.handler returning to the worker's
//     rule store holding that revision (p50-ms, p99-ms, max-ms);
//   - outcome: from the put returning to the outcome of a mail sent over
//     SMTP right after it, which only the new rule routes
//     (put-to-outcome-p50-ms, put-to-outcome-p99-ms), and how many of
//     those mails were decided by an older revision (stale/op).
//
// Run it as `go test -run '^$' -bench ReloadLatency -benchtime 200x ./dev/`.
func BenchmarkReloadLatency(b *testing.B) {
	sys, err := dev.Start(b.Context(), dev.Config{
		DataDir:  b.TempDir(),
		NATSPort: -1,
		SMTPAddr: "127.0.0.1:0",
		LMTPAddr: "127.0.0.1:0",
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(sys.Close)
	kv, err := sys.JS.KeyValue(b.Context(), "mail_flags")
	if err != nil {
		b.Fatal(err)
	}
	store := sys.Worker.Rules()
	seen := watchRevisions(b, store, rules.FlagHandler)
	var seq int // makes every rule and recipient of the run distinct

	b.Run("store", func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		for b.Loop() {
			seq++
			rev, err := kv.PutString(b.Context(), rules.FlagHandler, fmt.Sprintf("rcpt:^bench-%d@ 10 discard\ndefault 0 publish\n", seq))
			if err != nil {
				b.Fatal(err)
			}
			put := time.Now()
			lat = append(lat, max(seen.wait(b, rev).Sub(put), 0))
		}
		reportPercentiles(b, "", lat)
	})

	b.Run("outcome", func(b *testing.B) {
		outcomes := make(chan contracts.Outcome, 16)
		sub, err := sys.Conn.Subscribe("mail.outcome.>", func(m *nats.Msg) {
			var o contracts.Outcome
			if err := json.Unmarshal(m.Data, &o); err == nil {
				outcomes <- o
			}
		})
		if err != nil {
			b.Fatal(err)
		}
		defer sub.Unsubscribe()
		if err := sys.Conn.Flush(); err != nil {
			b.Fatal(err)
		}
		lat := make([]time.Duration, 0, b.N)
		stale := 0
		for b.Loop() {
			seq++
			rcpt := fmt.Sprintf("bench-%d@example.org", seq)
			raw := testkit.SampleMail("Alice <alice@example.com>", rcpt, "reload", "Hello.\r\n", time.Time{}, "")
			rev, err := kv.PutString(b.Context(), rules.FlagHandler, fmt.Sprintf("rcpt:^bench-%d@ 10 discard\ndefault 0 publish\n", seq))
			if err != nil {
				b.Fatal(err)
			}
			put := time.Now()
			if err := dev.SendSMTP(sys.SMTPAddr, "alice@example.com", []string{rcpt}, raw); err != nil {
				b.Fatal(err)
			}
			o := nextOutcome(b, outcomes, rcpt)
			lat = append(lat, time.Since(put))
			d, ok := handlerDecision(o)
			switch {
			case !ok:
				b.Fatalf("outcome of the mail to %s did not consult %s", rcpt, rules.FlagHandler)
			case d.Rule != nil && d.Rule.Revision == rev && d.Value == "discard":
			case d.Rule == nil || d.Rule.Revision < rev:
				stale++ // evaluated before the worker had the new revision
			default:
				b.Fatalf("mail to %s decided by %+v, want revision %d", rcpt, d, rev)
			}
			seen.wait(b, rev) // the next iteration starts from a settled store
		}
		reportPercentiles(b, "put-to-outcome-", lat)
		b.ReportMetric(float64(stale)/float64(b.N), "stale/op")
	})
}

// revisionLog records when the worker's store first held each revision of
// one flag, observed on the store's change signal by its own goroutine, so
// the times do not depend on what the benchmark loop is doing.
type revisionLog struct {
	mu     sync.Mutex
	at     map[uint64]time.Time
	change chan struct{}
}

func watchRevisions(b *testing.B, store *rules.Store, flag string) *revisionLog {
	l := &revisionLog{at: map[uint64]time.Time{}, change: make(chan struct{})}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		for {
			ch := store.Changed()
			if rs := store.Snapshot().RuleSet(flag); rs != nil {
				now := time.Now()
				l.mu.Lock()
				if _, ok := l.at[rs.Revision]; !ok {
					l.at[rs.Revision] = now
					close(l.change)
					l.change = make(chan struct{})
				}
				l.mu.Unlock()
			}
			select {
			case <-ch:
			case <-done:
				return
			}
		}
	}()
	b.Cleanup(func() { close(done); <-stopped })
	return l
}

// wait returns when the store first held rev (or a later revision, if rev
// was skipped over).
func (l *revisionLog) wait(b *testing.B, rev uint64) time.Time {
	b.Helper()
	deadline := time.After(wait)
	for {
		l.mu.Lock()
		at, ok := l.at[rev]
		if !ok {
			for r, t := range l.at {
				if r > rev && (!ok || t.Before(at)) {
					at, ok = t, true
				}
			}
		}
		ch := l.change
		l.mu.Unlock()
		if ok {
			return at
		}
		select {
		case <-ch:
		case <-deadline:
			b.Fatalf("the worker's store never held revision %d", rev)
		}
	}
}

func nextOutcome(b *testing.B, outcomes <-chan contracts.Outcome, rcpt string) contracts.Outcome {
	b.Helper()
	deadline := time.After(wait)
	for {
		select {
		case o := <-outcomes:
			if len(o.Envelope.RcptTo) == 1 && o.Envelope.RcptTo[0] == rcpt {
				return o
			}
			b.Fatalf("outcome for %v while waiting for %s", o.Envelope.RcptTo, rcpt)
		case <-deadline:
			b.Fatalf("no outcome for the mail to %s", rcpt)
		}
	}
}

func handlerDecision(o contracts.Outcome) (contracts.FlagDecision, bool) {
	for _, f := range o.Flags {
		if f.Flag == rules.FlagHandler {
			return f, true
		}
	}
	return contracts.FlagDecision{}, false
}

// reportPercentiles reports p50, p99 and the maximum of lat in
// milliseconds, with prefix before each unit, instead of ns/op.
func reportPercentiles(b *testing.B, prefix string, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	at := func(q float64) float64 {
		i := int(math.Ceil(q*float64(len(lat)))) - 1 // nearest rank
		return float64(lat[min(max(i, 0), len(lat)-1)]) / float64(time.Millisecond)
	}
	b.ReportMetric(0, "ns/op")
	b.ReportMetric(at(0.50), prefix+"p50-ms")
	b.ReportMetric(at(0.99), prefix+"p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1])/float64(time.Millisecond), prefix+"max-ms")
}
