//go:build faults

package faults

import (
	"context"
	"math/rand/v2"
	"sync"
)

// schedule is when a mode's faults come: at points, counts of mails
// answered for good (250 or 5xx), drawn from the seeded generator. A fault overlaps the
// traffic: mails keep being sent while it is injected, but a mail more
// than overlap mails past a fault's point waits until that fault is over
// (the killed process started again, a cluster whole), so that the
// faults are spread over the whole run however long each one takes to
// heal, and the run injects all of them.
type schedule struct {
	points  []int
	overlap int

	mu      sync.Mutex
	done    int           // faults over
	changed chan struct{} // closed when done changes
}

// newSchedule draws the points of a run of n mails: the first after
// gap/2 to 3gap/2 mails, each next one as far after the previous one,
// none in the last gap/2 mails (they would find nothing left to hit).
func newSchedule(n, gap int, rng *rand.Rand) *schedule {
	gap = max(gap, 2)
	s := &schedule{overlap: gap / 2, changed: make(chan struct{})}
	for p := gap/2 + rng.IntN(gap+1); p < n-gap/2; p += gap/2 + rng.IntN(gap+1) {
		s.points = append(s.points, p)
	}
	return s
}

// wait blocks the sending of mail k while a fault it must come after is
// not over, or until ctx ends.
func (s *schedule) wait(ctx context.Context, k int) {
	for {
		s.mu.Lock()
		blocked := s.done < len(s.points) && k >= s.points[s.done]+s.overlap
		ch := s.changed
		s.mu.Unlock()
		if !blocked {
			return
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return
		}
	}
}

// finish says that the next fault is over.
func (s *schedule) finish() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.done++
	close(s.changed)
	s.changed = make(chan struct{})
}
