package mailq

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// Filter selects entries. The zero Filter selects every one.
type Filter struct {
	// Reason, when set, keeps the entries whose reason contains it,
	// case-insensitively ("dns", "bad envelope", "attempt limit").
	Reason string
	// Class, when set, keeps the dead letters of that failure class.
	Class string
	// Limit caps the entries returned, oldest first; 0: no cap.
	Limit int
}

func (f Filter) keep(e Entry) bool {
	if f.Reason != "" && !strings.Contains(strings.ToLower(e.Reason), strings.ToLower(f.Reason)) {
		return false
	}
	return f.Class == "" || strings.EqualFold(e.Class, f.Class)
}

// List returns the entries of stream (the dead-letter or the held
// stream) that f selects, oldest first. It reads the messages one by one
// by sequence, skipping the gaps a work-queue stream has, so that it
// needs no consumer of its own (the held stream is a work queue, whose
// only consumer is the workers').
func List(ctx context.Context, js jetstream.JetStream, stream string, f Filter) ([]Entry, error) {
	var out []Entry
	err := each(ctx, js, stream, func(m *jetstream.RawStreamMsg) bool {
		if e := entryOf(m); f.keep(e) {
			out = append(out, e)
		}
		return f.Limit <= 0 || len(out) < f.Limit
	})
	return out, err
}

// each calls fn with every message of stream, oldest first, until fn
// returns false.
func each(ctx context.Context, js jetstream.JetStream, stream string, fn func(*jetstream.RawStreamMsg) bool) error {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream %s: %w", stream, err)
	}
	last := info.State.LastSeq
	for seq := info.State.FirstSeq; seq != 0 && seq <= last; {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(">"))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("stream %s at sequence %d: %w", stream, seq, err)
		}
		if m.Sequence > last || !fn(m) {
			return nil
		}
		seq = m.Sequence + 1
	}
	return nil
}

// Show returns the message at seq of stream with its entry: the raw mail
// is m.Data (empty for a mail whose body is in the object store).
func Show(ctx context.Context, js jetstream.JetStream, stream string, seq uint64) (Entry, *jetstream.RawStreamMsg, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return Entry{}, nil, fmt.Errorf("stream %s: %w", stream, err)
	}
	m, err := s.GetMsg(ctx, seq)
	if err != nil {
		return Entry{}, nil, fmt.Errorf("stream %s, sequence %d: %w", stream, seq, err)
	}
	return entryOf(m), m, nil
}
