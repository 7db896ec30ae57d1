package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// provisionRetryEvery is how often a role waiting for provisioning looks
// again.
const provisionRetryEvery = 2 * time.Second

// waitProvisioned calls try until it returns anything but a missing
// stream, consumer or bucket, or until wait has passed: a worker started
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

func notProvisioned(err error) bool {
	return errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrConsumerNotFound) ||
		errors.Is(err, jetstream.ErrBucketNotFound)
}
