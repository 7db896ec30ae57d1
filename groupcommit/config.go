package groupcommit

import (
	"log/slog"
	"time"
)

// Config configures a Publisher. The zero value is the defaults below,
// which measured best on a single-node server with sync_interval always
// (see loadtest/README.md).
type Config struct {
	// Inflight is how many batches may be committing at once. Messages
	// that arrive while every slot is busy wait, and are committed as the
	// next batch as soon as a slot frees: the busier the server, the
	// larger the batches. Default 1; the server allows 50 open batches
	// per stream (max_batch_inflight_per_stream).
	Inflight int
	// Window is how long a message waits for more messages while a
	// commit slot is free. Default 0: a message that finds a slot free is
	// committed at once, so that a lone caller never waits for company
	// that does not come. In the producer's load test
	// (loadtest/README.md) a 1ms window lost throughput at every
	// concurrency: -65% with 1 client, -55% with 8, -27% with 32, -21%
	// with 128.
	Window time.Duration
	// MinMsgs: a group of fewer messages is published message by message
	// rather than as an atomic batch, which has a fixed cost (on a
	// single-node file stream the server stages the batch in a store of
	// its own: about four fsyncs and twenty file operations, as much as
	// ~10 single publishes on the test machine). Default 8; at least 2.
	MinMsgs int
	// MaxMsgs caps the messages of one batch. Default 100; the server
	// refuses batches over its max_batch_size (default 1000).
	MaxMsgs int
	// MaxBytes caps the bytes of one batch (a larger message is stored
	// on its own). Default 4 MiB. The server stages a batch, and holds it
	// in memory while it commits.
	MaxBytes int
	// Timeout bounds the wait for one acknowledgement: of a single
	// publish, or of a batch's commit. The wait also ends as soon as the
	// connection is lost: the answer is lost with it. Default 5 seconds.
	Timeout time.Duration
	// Tries is how many attempts a single publish or a batch gets, with
	// the same dedup ids, after a timeout or a missing responder (an
	// answer from the server is never tried again). Default 2.
	Tries int
	// RetryFor, when positive, makes Publish try a message again, with
	// the same dedup id, after a store that failed for a reason that may
	// pass (Retryable: a timeout, no responders, the connection down or
	// lost while waiting for the answer), with a short backoff (20ms
	// doubling to 500ms, jittered ±50%, and at once when a lost
	// connection is back), until RetryFor has passed since the call;
	// then the last error is returned. Each attempt is still bounded by
	// Timeout (and, for a single publish, Tries). A message stored by an
	// attempt whose answer was lost is acknowledged as a duplicate by
	// the next, which is success. Default 0: no retry beyond Tries. The
	// producer sets it to its publish timeout, so that a nats-server
	// restart or a stream leader change inside it costs the SMTP client
	// a delay, not a 451.
	RetryFor time.Duration
	// Name is the "publisher" attribute of the Publisher's metrics, e.g.
	// "producer" or "worker". Default "groupcommit".
	Name string
	// Logger receives the Publisher's warnings. Default slog.Default().
	Logger *slog.Logger
}

// WithDefaults returns c with every unset field at its documented
// default, and MinMsgs at least 2.
func (c Config) WithDefaults() Config {
	if c.Inflight <= 0 {
		c.Inflight = 1
	}
	if c.Window < 0 {
		c.Window = 0
	}
	if c.MinMsgs <= 0 {
		c.MinMsgs = 8
	}
	c.MinMsgs = max(c.MinMsgs, 2)
	if c.MaxMsgs <= 0 {
		c.MaxMsgs = 100
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 4 << 20
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.Tries <= 0 {
		c.Tries = 2
	}
	if c.Name == "" {
		c.Name = "groupcommit"
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}
