package main

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestNotProvisioned: what a worker waits out rather than exits on: a
// missing stream, consumer or bucket, and a lookup a cluster electing
// leaders does not answer in time; anything else ends the wait.
func TestNotProvisioned(t *testing.T) {
	for _, c := range []struct {
		err  error
		wait bool
	}{
		{fmt.Errorf("worker: consumer workers on MAIL: %w", jetstream.ErrConsumerNotFound), true},
		{fmt.Errorf("worker: consumer held on MAIL_HELD: %w", context.DeadlineExceeded), true},
		{fmt.Errorf("worker: stream MAIL: %w", nats.ErrNoResponders), true},
		{fmt.Errorf("worker: %w", jetstream.ErrBucketNotFound), true},
		{errors.New("nats: permissions violation"), false},
		{nil, false},
	} {
		if got := notProvisioned(c.err); got != c.wait {
			t.Errorf("notProvisioned(%v) = %v, want %v", c.err, got, c.wait)
		}
	}
}
