package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// provisionRetryEvery is how often a role waiting for provisioning looks
// again.
const provisionRetryEvery = 2 * time.Second

// waitProvisioned calls try until it returns anything but a missing or
// unanswering stream, consumer or bucket (notProvisioned), or until wait has passed: a worker started
// before the provisioning Job finished waits for it (not ready, alive)
// instead of crash-looping. wait 0 tries once.
func waitProvisioned(ctx context.Context, wait time.Duration, try func() error) error {
	deadline := time.Now().Add(wait)
	logged := false
	for {
		err := try()
		if !notProvisioned(err) || !time.Now().Before(deadline) {
			if notProvisioned(err) && wait > 0 {
				return fmt.Errorf("%w (still missing after waiting %s for mailscope provision)", err, wait)
			}
			return err
		}
		if !logged {
			slog.Warn("waiting for provisioning (mailscope provision)", slog.Any("err", err), slog.Duration("for at most", wait))
			logged = true
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(provisionRetryEvery):
		}
	}
}

// notProvisioned reports whether err means the streams, consumers or
// buckets are not there yet: missing (provisioning has not run), or not
// answering (a cluster still electing their leaders after a node came
// back: the lookup times out or finds no responders).
func notProvisioned(err error) bool {
	return errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrConsumerNotFound) ||
		errors.Is(err, jetstream.ErrBucketNotFound) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders)
}
