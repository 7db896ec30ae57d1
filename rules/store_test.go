package rules

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/systest"
)

const bucket = "mail_flags"

// storeBundle is a Store as a worker runs it, on a real server where
// each party connects as its role: the Store reads the bucket as the
// worker, the test writes rules as the operator (kv) and makes the bucket
// as the provisioner. Deleting the bucket is no role's to do: the test's
// admin does it.
type storeBundle struct {
	kv          jetstream.KeyValue // the operator's
	store       *Store             // on the worker's binding of the bucket
	logs        *syncBuffer
	provisioner jetstream.JetStream
	admin       jetstream.JetStream
}

// syncBuffer collects logs and signals each write.
type syncBuffer struct {
	mu     sync.Mutex
	b      bytes.Buffer
	signal chan struct{} // closed and replaced on each write
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.signal != nil {
		close(s.signal)
		s.signal = nil
	}
	return s.b.Write(p)
}

// wrote returns a channel closed at the next write.
func (s *syncBuffer) wrote() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.signal == nil {
		s.signal = make(chan struct{})
	}
	return s.signal
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// setupStore starts an embedded JetStream server, creates the bucket with
// the given keys and returns a Store (not started) on it.
func setupStore(t *testing.T, initial map[string]string) *storeBundle {
	t.Helper()
	env := systest.Start(t)
	b := &storeBundle{logs: &syncBuffer{}, provisioner: env.JetStream(t, access.Provisioner), admin: env.Admin(t)}
	b.createBucket(t, jetstream.KeyValueConfig{Bucket: bucket, History: 10})
	var err error
	if b.kv, err = env.JetStream(t, access.Operator).KeyValue(t.Context(), bucket); err != nil {
		t.Fatal(err)
	}
	for k, v := range initial {
		if _, err := b.kv.PutString(t.Context(), k, v); err != nil {
			t.Fatal(err)
		}
	}
	kv, err := env.JetStream(t, access.Worker).KeyValue(t.Context(), bucket)
	if err != nil {
		t.Fatal(err)
	}
	b.store = NewStore(kv, slog.New(slog.NewTextHandler(b.logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	b.store.HealthInterval = 50 * time.Millisecond
	b.store.MaxBackoff = 200 * time.Millisecond
	return b
}

// createBucket creates the bucket as the provisioner; the operator's kv
// writes to it, whenever it was (re-)created.
func (b *storeBundle) createBucket(t *testing.T, cfg jetstream.KeyValueConfig) {
	t.Helper()
	if _, err := b.provisioner.CreateKeyValue(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
}

// deleteBucket deletes the bucket, as only the test's admin may.
func (b *storeBundle) deleteBucket(t *testing.T) {
	t.Helper()
	if err := b.admin.DeleteKeyValue(t.Context(), bucket); err != nil {
		t.Fatal(err)
	}
}

// waitFor waits on the Store's Changed signal until cond holds.
func waitFor(t *testing.T, st *Store, what string, cond func(*Snapshot) bool) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		ch := st.Changed()
		if cond(st.Snapshot()) {
			return
		}
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func handler(s *Snapshot, f *Facts) string { return s.Eval(FlagHandler, f).Value }

func TestStore(t *testing.T) {
	b := setupStore(t, map[string]string{
		FlagHandler:   "env:staging 10 quarantine\ndefault 0 publish",
		FlagPause:     "env:prod 1 maybe",  // bad from the start
		"mail.handlr": "default 1 discard", // a typo: not a known flag
	})
	ctx := t.Context()
	st := b.store
	if st.Snapshot() != nil {
		t.Fatal("a snapshot before Start")
	}
	if err := st.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if st.Snapshot().RuleSet(FlagHandler) == nil {
		t.Fatal("rules not loaded after Start")
	}
	if err := st.Start(ctx); err != ErrStarted {
		t.Errorf("second Start: %v", err)
	}
	staging := &Facts{Env: "staging"}

	t.Run("initial load", func(t *testing.T) {
		s := st.Snapshot()
		if d := s.Eval(FlagHandler, staging); d.Value != "quarantine" || d.Revision == 0 {
			t.Errorf("handler = %+v", d)
		}
		if s.RuleSet(FlagPause) != nil {
			t.Error("bad key has rules")
		}
		if s.RuleSet("mail.handlr") != nil || slices.Contains(s.Flags(), "mail.handlr") {
			t.Error("a key that is not a known flag is in force")
		}
		p := st.Problems()
		if len(p) != 2 || p[0].Flag != "mail.handlr" || p[0].Cause != CauseUnknownFlag ||
			p[1].Flag != FlagPause || p[1].Cause != CauseParse || p[1].Lines[0].Line != 1 {
			t.Fatalf("Problems = %+v", p)
		}
		if msg := p[0].Error(); !strings.Contains(msg, "not a known flag (did you mean mail.handler?)") {
			t.Errorf("unknown flag problem %q", msg)
		}
		logs := b.logs.String()
		if !strings.Contains(logs, "level=ERROR") || !strings.Contains(logs, "flag=mail.pause") || !strings.Contains(logs, "line=1") {
			t.Errorf("bad value not logged at error: %s", logs)
		}
		if !strings.Contains(logs, `level=ERROR msg="rules: key is not a known flag; its rules are refused" flag=mail.handlr`) ||
			!strings.Contains(logs, "cause=unknown_flag") {
			t.Errorf("unknown flag not logged at error: %s", logs)
		}
		// Removing the key ends its problem.
		if err := b.kv.Purge(ctx, "mail.handlr"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, st, "the unknown key's problem gone", func(*Snapshot) bool { return len(st.Problems()) == 1 })
	})

	t.Run("put", func(t *testing.T) {
		rev, err := b.kv.PutString(ctx, FlagHandler, "env:staging 10 discard")
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, st, "discard", func(s *Snapshot) bool { return handler(s, staging) == "discard" })
		if d := st.Snapshot().Eval(FlagHandler, staging); d.Revision != rev {
			t.Errorf("revision %d, want %d", d.Revision, rev)
		}
		// Fixing the bad key clears its problem.
		if _, err := b.kv.PutString(ctx, FlagPause, "env:staging 1 on"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, st, "pause", func(s *Snapshot) bool { return s.Eval(FlagPause, staging).Bool() })
		if p := st.Problems(); len(p) != 0 {
			t.Errorf("Problems = %+v", p)
		}
	})

	t.Run("bad value keeps last good", func(t *testing.T) {
		before := st.Snapshot().RuleSet(FlagHandler)
		rev, err := b.kv.PutString(ctx, FlagHandler, "env:staging 10 discard\nenv:staging 10 publish")
		if err != nil {
			t.Fatal(err)
		}
		var p []ParseError
		waitFor(t, st, "problem", func(*Snapshot) bool { p = st.Problems(); return len(p) == 1 })
		if p[0].Flag != FlagHandler || p[0].Revision != rev || !strings.Contains(p[0].Error(), "line 2: priority 10 already used on line 1") {
			t.Errorf("Problems = %+v", p)
		}
		if st.Snapshot().RuleSet(FlagHandler) != before || handler(st.Snapshot(), staging) != "discard" {
			t.Error("last good rules not kept")
		}
	})

	t.Run("delete", func(t *testing.T) {
		if err := b.kv.Delete(ctx, FlagHandler); err != nil {
			t.Fatal(err)
		}
		waitFor(t, st, "default", func(s *Snapshot) bool { return s.RuleSet(FlagHandler) == nil })
		if d := st.Snapshot().Eval(FlagHandler, staging); d.Value != "publish" || d.Rule != nil {
			t.Errorf("after delete: %+v", d)
		}
		if p := st.Problems(); len(p) != 0 {
			t.Errorf("Problems after delete = %+v", p)
		}
		if err := b.kv.Purge(ctx, FlagReject); err != nil {
			t.Fatal(err)
		}
		waitFor(t, st, "purge", func(s *Snapshot) bool { return s.RuleSet(FlagReject) == nil })
	})

	t.Run("bucket deleted and re-created", func(t *testing.T) {
		b.deleteBucket(t)
		// The Store notices, keeps its rules meanwhile, and re-watches.
		waitForLog(t, b.logs, "watch ended")
		if !st.Snapshot().Eval(FlagPause, staging).Bool() {
			t.Error("rules dropped while the bucket is gone")
		}
		b.createBucket(t, jetstream.KeyValueConfig{Bucket: bucket, History: 10})
		// Several updates, all must be applied.
		for _, v := range []string{"env:staging 5 quarantine", "env:staging 6 discard"} {
			if _, err := b.kv.PutString(ctx, FlagHandler, v); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := b.kv.PutString(ctx, FlagDryRun, "default 1 yes"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, st, "reload", func(s *Snapshot) bool {
			return handler(s, staging) == "discard" && s.Eval(FlagDryRun, staging).Bool()
		})
		// mail.pause is not in the new bucket: its rules are gone.
		if st.Snapshot().RuleSet(FlagPause) != nil {
			t.Error("rules of a key missing from the re-created bucket survived")
		}
		// And the Store keeps following the new bucket.
		if _, err := b.kv.PutString(ctx, FlagHandler, "env:staging 7 publish\nenv:prod 1 discard"); err != nil {
			t.Fatal(err)
		}
		waitFor(t, st, "update after reload", func(s *Snapshot) bool {
			return s.Eval(FlagHandler, staging).Rule != nil && s.Eval(FlagHandler, staging).Rule.Priority == 7
		})
	})
}

// A bucket deleted and quickly re-created with fewer messages than before
// must not be missed by a watcher resuming at the old sequence.
func TestStoreBucketReplaced(t *testing.T) {
	b := setupStore(t, map[string]string{FlagHandler: "default 1 quarantine"})
	ctx := t.Context()
	for range 5 { // push the sequence up
		if _, err := b.kv.PutString(ctx, FlagReject, "default 1 go away"); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.store.Start(ctx); err != nil {
		t.Fatal(err)
	}
	b.deleteBucket(t)
	b.createBucket(t, jetstream.KeyValueConfig{Bucket: bucket})
	if _, err := b.kv.PutString(ctx, FlagHandler, "default 1 discard"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, b.store, "new bucket", func(s *Snapshot) bool {
		return handler(s, &Facts{}) == "discard" && s.RuleSet(FlagReject) == nil
	})
}

func TestStoreStartErrors(t *testing.T) {
	b := setupStore(t, nil)
	b.deleteBucket(t)
	if err := b.store.Start(t.Context()); err == nil {
		t.Error("Start on a missing bucket succeeded")
	}
	b2 := setupStore(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := b2.store.Start(ctx); err == nil {
		t.Error("Start with a done context succeeded")
	}
}

// waitForLog waits, on the log's write signal, until text was logged.
func waitForLog(t *testing.T, logs *syncBuffer, text string) {
	t.Helper()
	timeout := time.After(20 * time.Second)
	for {
		ch := logs.wrote()
		if strings.Contains(logs.String(), text) {
			return
		}
		select {
		case <-ch:
		case <-timeout:
			t.Fatalf("timed out waiting for log %q", text)
		}
	}
}

// TestStoreLastGoodFromHistory: a Store that starts while a key's value is
// bad takes the key's newest good revision from its history, as a Store
// that was running all along keeps it, so a fleet agrees; a delete in
// between means no rules (the default).
func TestStoreLastGoodFromHistory(t *testing.T) {
	b := setupStore(t, nil)
	ctx := t.Context()
	put := func(k, v string) uint64 {
		t.Helper()
		rev, err := b.kv.PutString(ctx, k, v)
		if err != nil {
			t.Fatal(err)
		}
		return rev
	}
	good := put(FlagHandler, "default 0 quarantine\n")
	put(FlagHandler, "default 0 nonsense\n")
	put(FlagHandler, "default 0 still-nonsense\n")
	put(FlagPause, "default 0 on\n")
	if err := b.kv.Delete(ctx, FlagPause); err != nil {
		t.Fatal(err)
	}
	put(FlagPause, "default 0 maybe\n")

	if err := b.store.Start(ctx); err != nil {
		t.Fatal(err)
	}
	snap := b.store.Snapshot()
	rs := snap.RuleSet(FlagHandler)
	if rs == nil || rs.Revision != good {
		t.Fatalf("mail.handler rules %+v, want revision %d from history", rs, good)
	}
	if v := handler(snap, &Facts{}); v != "quarantine" {
		t.Errorf("mail.handler = %q, want the last good quarantine", v)
	}
	if rs := snap.RuleSet(FlagPause); rs != nil {
		t.Errorf("mail.pause rules %+v: a delete before the bad value means no rules", rs)
	}
	if n := len(b.store.Problems()); n != 2 {
		t.Errorf("%d problems, want both bad keys reported", n)
	}
}
