package workers

import (
	"context"
	"errors"
	"fmt"
	"math"
	"testing"
	"time"
)

func TestClassOf(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want Class
	}{
		{"malformed", malformed("malformed mail: %s", "no From"), Malformed},
		{"malformed, wrapped", fmt.Errorf("worker: %w", malformed("bad")), Malformed},
		{"transient", transient("dkim temperror: %s", "timeout"), Transient},
		{"held", errHeld, Held},
		{"held, wrapped", fmt.Errorf("process: %w", errHeld), Held},
		{"unclassified error is transient", errors.New("connection refused"), Transient},
		{"context deadline is transient", context.DeadlineExceeded, Transient},
		// The outermost class wins: a malformed cause reported as a
		// transient failure is retried.
		{"transient around malformed", &classError{class: Transient, err: malformed("bad")}, Transient},
		{"a handler's Reject is permanent", Reject("no such list"), Permanent},
		{"a handler's RetryLater is transient", RetryLater(errors.New("busy"), time.Second), Transient},
		{"a handler's Unprocessable is malformed", Unprocessable(errors.New("no body")), Malformed},
		{"dns", dnsFailure("dkim temperror: %s", "timeout"), DNS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ClassOf(tc.err); got != tc.want {
				t.Errorf("ClassOf(%v) = %s, want %s", tc.err, got, tc.want)
			}
		})
	}
}

func TestClassErrorKeepsCause(t *testing.T) {
	err := transient("dkim: %w", context.Canceled)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("%v does not wrap context.Canceled", err)
	}
	if got, want := err.Error(), "dkim: context canceled"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestClassString(t *testing.T) {
	for c, want := range map[Class]string{Transient: "transient", Malformed: "malformed", Held: "held", Permanent: "permanent", DNS: "dns"} {
		if got := c.String(); got != want {
			t.Errorf("Class(%d).String() = %q, want %q", int(c), got, want)
		}
	}
}

func TestBackoff(t *testing.T) {
	const (
		s   = time.Second
		ms  = time.Millisecond
		inf = time.Duration(math.MaxInt64)
	)
	for _, tc := range []struct {
		attempt   int
		base, max time.Duration
		want      time.Duration
	}{
		{1, s, 5 * time.Minute, s},
		{2, s, 5 * time.Minute, 2 * s},
		{3, s, 5 * time.Minute, 4 * s},
		{9, s, 5 * time.Minute, 256 * s},
		{10, s, 5 * time.Minute, 5 * time.Minute}, // 512s, capped
		{1000, s, 5 * time.Minute, 5 * time.Minute},
		{0, s, 5 * time.Minute, s}, // no attempt counted yet: the base
		{1, 10 * ms, 50 * ms, 10 * ms},
		{2, 10 * ms, 50 * ms, 20 * ms},
		{3, 10 * ms, 50 * ms, 40 * ms},
		{4, 10 * ms, 50 * ms, 50 * ms},
		{1, time.Minute, s, s}, // a base above the cap is capped
		{5, 3 * s, 10 * s, 10 * s},
		// A cap so large it means "none" must not overflow into a
		// zero or negative delay (an immediate redelivery storm).
		{40, s, inf, inf},
		{64, s, inf, inf},
		{3, 1 << 62, inf, inf},
	} {
		if got := backoff(tc.attempt, tc.base, tc.max); got != tc.want {
			t.Errorf("backoff(%d, %v, %v) = %v, want %v", tc.attempt, tc.base, tc.max, got, tc.want)
		}
	}
}

// TestBackoffDoublesAndCaps checks the shape over many attempts: never
// below the base, never above the cap, doubling until the cap.
func TestBackoffDoublesAndCaps(t *testing.T) {
	base, max := 7*time.Millisecond, 3*time.Second
	prev := time.Duration(0)
	for attempt := 1; attempt <= 100; attempt++ {
		d := backoff(attempt, base, max)
		switch {
		case d < base || d > max:
			t.Fatalf("attempt %d: %v outside [%v, %v]", attempt, d, base, max)
		case attempt > 1 && d != min(2*prev, max):
			t.Fatalf("attempt %d: %v after %v, want double or the cap", attempt, d, prev)
		}
		prev = d
	}
}
