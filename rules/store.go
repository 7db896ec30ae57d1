package rules

import (
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Defaults of the Store's tunables.
const (
	// DefaultHealthInterval is how often a Store checks that its bucket
	// still exists and is the same bucket it is watching.
	DefaultHealthInterval = 5 * time.Second
	// DefaultMaxBackoff caps the wait between attempts to re-watch.
	DefaultMaxBackoff = 5 * time.Second
)

// minBackoff is the first wait before re-watching.
const minBackoff = 50 * time.Millisecond

// ErrStarted is returned by Start on a Store that was already started.
var ErrStarted = errors.New("rules: store already started")

// errRewatch ends a watch session that must be restarted.
var errRewatch = errors.New("rules: watch ended")

// Store holds the live rules of a KV bucket: one key per flag. It loads
// every key, publishes an immutable Snapshot, and swaps in a new Snapshot
// on every change of the bucket.
//
// A key whose value does not parse keeps its last good rules (if any);
// the problem is logged at Error level and listed by Problems until the
// key is fixed or deleted. A key that is not a known flag (a typo such as
// mail.handlr) is refused the same way, and its rules are never in force.
// A deleted or purged key removes the flag's rules, so its default
// applies.
//
// When the watch ends while the Store's context is live (the watcher's
// channel closed after a connection loss, or the bucket was deleted or
// replaced), the Store backs off, watches again and reloads every key,
// keeping its current Snapshot in force meanwhile.
type Store struct {
	// HealthInterval is how often the Store checks that the bucket exists
	// and is the one being watched; this notices a deleted or re-created
	// bucket sooner than the watcher's heartbeats do. Default
	// DefaultHealthInterval; negative disables the check. Set before Start.
	HealthInterval time.Duration
	// MaxBackoff caps the wait between re-watch attempts. Default
	// DefaultMaxBackoff. Set before Start.
	MaxBackoff time.Duration

	kv      jetstream.KeyValue
	log     *slog.Logger
	snap    atomic.Pointer[Snapshot]
	start   atomic.Bool
	mu      sync.Mutex
	change  chan struct{}
	probs   map[string]ParseError // guarded by mu
	rewatch chan struct{}         // buffered 1; see Rewatch

	// owned by the watch goroutine
	good     map[string]*RuleSet
	bad      map[string]*ParseError
	reported map[string]uint64 // flag -> revision already logged
}

// NewStore returns a Store for the KV bucket kv. A nil logger discards
// logs. Call Start to load and watch.
func NewStore(kv jetstream.KeyValue, logger *slog.Logger) *Store {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Store{
		kv:       kv,
		log:      logger,
		change:   make(chan struct{}),
		rewatch:  make(chan struct{}, 1),
		good:     make(map[string]*RuleSet),
		bad:      make(map[string]*ParseError),
		reported: make(map[string]uint64),
	}
}

// Start loads every key of the bucket, publishes the first Snapshot and
// returns; a goroutine then watches the bucket until ctx is done. Start
// returns an error if the first watch cannot be set up or ctx ends before
// the first Snapshot is in place.
func (s *Store) Start(ctx context.Context) error {
	if !s.start.CompareAndSwap(false, true) {
		return ErrStarted
	}
	first := make(chan error, 1)
	go s.run(ctx, first)
	select {
	case err := <-first:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Snapshot returns the current Snapshot; it is never nil after Start
// returned nil. Evaluate a whole mail against one Snapshot.
func (s *Store) Snapshot() *Snapshot { return s.snap.Load() }

// Problems lists the keys currently refused, sorted by flag: those
// holding a value that does not parse (cause CauseParse; their last good
// rules, if any, stay in force) and those that are not a known flag
// (cause CauseUnknownFlag; never in force).
func (s *Store) Problems() []ParseError {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Collect(maps.Values(s.probs))
	slices.SortFunc(out, func(a, b ParseError) int { return strings.Compare(a.Flag, b.Flag) })
	return out
}

// Changed returns a channel that is closed at the next Snapshot swap.
// Call it again after it fires to wait for the following swap.
func (s *Store) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.change
}

// Rewatch makes the Store drop its watcher, watch again and reload every
// key, keeping its current Snapshot in force meanwhile. Call it when the
// connection to NATS is back after a loss: nats.go's watcher (an ordered
// consumer) notices that a restarted server lost it only after missing
// heartbeats, up to about 20 seconds later, and until then the Store
// would serve stale rules without knowing. Rewatch does not block; calls
// while a re-watch is pending are merged.
func (s *Store) Rewatch() {
	select {
	case s.rewatch <- struct{}{}:
	default:
	}
}

// run is the watch loop: one session per watcher, re-watching with capped
// exponential backoff until ctx is done.
func (s *Store) run(ctx context.Context, first chan<- error) {
	maxBackoff := s.MaxBackoff
	if maxBackoff <= 0 {
		maxBackoff = DefaultMaxBackoff
	}
	backoff := minBackoff
	for {
		loaded, err := s.session(ctx, first)
		if ctx.Err() != nil {
			return
		}
		if first != nil && !loaded && !errors.Is(err, errRewatch) {
			first <- err // the first watch could not be set up at all
			return
		}
		if loaded {
			first = nil
			backoff = minBackoff
		}
		s.log.Warn("rules: watch ended, re-watching", "bucket", s.kv.Bucket(), "error", err, "backoff", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// session watches the bucket once: it collects the initial values into a
// fresh rule set, swaps it in whole, then applies each update. loaded
// reports whether the initial values were swapped in.
func (s *Store) session(ctx context.Context, first chan<- error) (loaded bool, err error) {
	select { // this session is the re-watch asked for
	case <-s.rewatch:
	default:
	}
	created, _, err := s.bucketState(ctx)
	if err != nil {
		return false, err
	}
	w, err := s.kv.WatchAll(ctx)
	if err != nil {
		return false, err
	}
	defer w.Stop()

	var health <-chan time.Time
	if iv := s.healthInterval(); iv > 0 {
		t := time.NewTicker(iv)
		defer t.Stop()
		health = t.C
	}
	var lastRev uint64
	initial := make(map[string]jetstream.KeyValueEntry)
	for {
		select {
		case <-ctx.Done():
			return loaded, ctx.Err()
		case <-s.rewatch:
			return loaded, errors.Join(errRewatch, errors.New("re-watch requested"))
		case <-health:
			c, last, err := s.bucketState(ctx)
			if err != nil {
				if errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrBucketNotFound) {
					return loaded, errors.Join(errRewatch, err)
				}
				continue // transient; the watcher recovers or closes by itself
			}
			if !c.Equal(created) || last < lastRev {
				return loaded, errors.Join(errRewatch, errors.New("bucket was re-created"))
			}
		case e, ok := <-w.Updates():
			if !ok {
				return loaded, errors.Join(errRewatch, errors.New("watcher closed"))
			}
			if e == nil { // end of initial values
				if !loaded {
					s.reload(ctx, initial)
					initial = nil
					loaded = true
					if first != nil {
						first <- nil
					}
				}
				continue
			}
			lastRev = max(lastRev, e.Revision())
			if !loaded {
				initial[e.Key()] = e
				continue
			}
			s.apply(e)
			s.publish()
		}
	}
}

func (s *Store) healthInterval() time.Duration {
	if s.HealthInterval == 0 {
		return DefaultHealthInterval
	}
	return s.HealthInterval
}

// bucketState returns the creation time and last sequence of the bucket's
// stream, which tell a re-created bucket from the one being watched.
func (s *Store) bucketState(ctx context.Context) (created time.Time, last uint64, err error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := s.kv.Status(ctx)
	if err != nil {
		return time.Time{}, 0, err
	}
	if bs, ok := st.(*jetstream.KeyValueBucketStatus); ok && bs.StreamInfo() != nil {
		si := bs.StreamInfo()
		return si.Created, si.State.LastSeq, nil
	}
	return time.Time{}, ^uint64(0), nil
}

// reload replaces all rules by the initial values of a new watch. A key
// whose new value is bad keeps the rules it had before; a key this Store
// never saw good (a worker that just started) takes the newest good
// revision from the key's history, so every worker of a fleet keeps the
// same last good rules.
func (s *Store) reload(ctx context.Context, entries map[string]jetstream.KeyValueEntry) {
	oldGood := s.good
	s.good = make(map[string]*RuleSet, len(entries))
	s.bad = make(map[string]*ParseError)
	for _, e := range entries {
		if last, ok := oldGood[e.Key()]; ok {
			s.good[e.Key()] = last
		}
		s.apply(e)
		if pe, bad := s.bad[e.Key()]; bad && pe.Cause == CauseParse {
			// The key's last good revision is in its history; what this
			// Store kept may be older (it was away) or absent (it just
			// started), and every worker must keep the same one.
			kept := s.good[e.Key()]
			rs := s.lastGood(ctx, e.Key(), e.Revision())
			switch {
			case rs == nil && kept != nil && s.deletedSince(ctx, e.Key(), kept.Revision, e.Revision()):
				delete(s.good, e.Key())
			case rs != nil && (kept == nil || rs.Revision > kept.Revision):
				s.good[e.Key()] = rs
				s.log.Error("rules: bad flag rules; keeping the last good revision from the key's history",
					"flag", e.Key(), "revision", e.Revision(), "kept_revision", rs.Revision)
			}
		}
	}
	s.publish()
}

// deletedSince reports whether key was deleted or purged between the
// revisions from and to (exclusive): then the flag had no rules before
// its current bad value.
func (s *Store) deletedSince(ctx context.Context, key string, from, to uint64) bool {
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	hist, err := s.kv.History(hctx, key)
	if err != nil {
		return false
	}
	for _, e := range hist {
		if e.Revision() > from && e.Revision() < to && e.Operation() != jetstream.KeyValuePut {
			return true
		}
	}
	return false
}

// lastGood returns the newest revision of key older than rev whose value
// parses, or nil when there is none (or a delete came first: then the
// flag had no rules, and its default applies).
func (s *Store) lastGood(ctx context.Context, key string, rev uint64) *RuleSet {
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	hist, err := s.kv.History(hctx, key)
	if err != nil {
		s.log.Warn("rules: history of a bad key not readable", "flag", key, "error", err)
		return nil
	}
	for i := len(hist) - 1; i >= 0; i-- {
		e := hist[i]
		if e.Revision() >= rev {
			continue
		}
		if e.Operation() != jetstream.KeyValuePut {
			return nil
		}
		if rs, err := Parse(key, e.Revision(), e.Value()); err == nil {
			return rs
		}
	}
	return nil
}

// apply records one entry of the bucket.
func (s *Store) apply(e jetstream.KeyValueEntry) {
	flag, rev := e.Key(), e.Revision()
	switch e.Operation() {
	case jetstream.KeyValueDelete, jetstream.KeyValuePurge:
		_, had := s.good[flag]
		delete(s.good, flag)
		delete(s.bad, flag)
		if had {
			s.log.Info("rules: flag rules removed, default applies", "flag", flag, "revision", rev)
		}
		return
	}
	rs, err := Parse(flag, rev, e.Value())
	if err != nil {
		var pe *ParseError
		errors.As(err, &pe)
		s.bad[flag] = pe
		if s.reported[flag] != rev {
			s.reported[flag] = rev
			if pe.Cause == CauseUnknownFlag {
				s.log.Error("rules: key is not a known flag; its rules are refused",
					"flag", flag, "revision", rev, "cause", pe.Cause, "error", pe.Lines[0].Msg)
				return
			}
			_, kept := s.good[flag]
			for _, l := range pe.Lines {
				s.log.Error("rules: bad flag rules, keeping last good rules",
					"flag", flag, "revision", rev, "cause", pe.Cause, "line", l.Line, "error", l.Msg, "kept_last_good", kept)
			}
		}
		return
	}
	delete(s.bad, flag)
	s.good[flag] = rs
}

// publish swaps in a Snapshot of the current rules and signals Changed.
func (s *Store) publish() {
	snap := NewSnapshot(s.good)
	probs := make(map[string]ParseError, len(s.bad))
	for k, pe := range s.bad {
		probs[k] = *pe
	}
	s.snap.Store(snap)
	s.mu.Lock()
	s.probs = probs
	close(s.change)
	s.change = make(chan struct{})
	s.mu.Unlock()
}
