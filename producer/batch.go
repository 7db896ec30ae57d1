package producer

import (
	"log/slog"
	"time"

	"github.com/mailscope/mailscope/groupcommit"
)

// Batching configures the group commit of concurrent publishes (package
// groupcommit holds the mechanism and the server's atomic-batch
// semantics). The zero value is group commit on, with the defaults
// below, which measured best on a single-node server with sync_interval
// always (see loadtest/README.md).
type Batching struct {
	// Off stores every mail on its own: one fsync each with
	// sync_interval always. Default false: group commit on. Group commit
	// needs a mail stream that allows atomic publish, which provisioning
	// always sets; see loadtest/README.md for what it gains.
	Off bool
	// Inflight is how many batches may be committing at once. Default 1
	// (see groupcommit.Config.Inflight).
	Inflight int
	// Window is how long mail waits for more mail while a commit slot is
	// free. Default 0: mail that finds a slot free is committed at once
	// (see groupcommit.Config.Window for the measurements).
	Window time.Duration
	// MinMsgs: a group of fewer mails is published mail by mail rather
	// than as an atomic batch, which has a fixed cost. Default 8, at
	// least 2 (see groupcommit.Config.MinMsgs).
	MinMsgs int
	// MaxMsgs caps the mails of one batch. Default 100; the server
	// refuses batches over its max_batch_size (default 1000).
	MaxMsgs int
	// MaxBytes caps the bytes of one batch (a larger mail is stored on
	// its own). Default 4 MiB.
	MaxBytes int
	// Logger receives the group commit's warnings. Default the
	// producer's Logger, else slog.Default().
	Logger *slog.Logger
}

// config returns the group commit configuration of b for a producer
// waiting up to timeout for each acknowledgement (0: the default).
func (b Batching) config(timeout time.Duration) groupcommit.Config {
	return groupcommit.Config{
		Inflight: b.Inflight,
		Window:   b.Window,
		MinMsgs:  b.MinMsgs,
		MaxMsgs:  b.MaxMsgs,
		MaxBytes: b.MaxBytes,
		Timeout:  timeout,
		Name:     "producer",
		Logger:   b.Logger,
	}
}

// withDefaults returns b with every unset field at its documented
// default.
func (b Batching) withDefaults() Batching {
	c := b.config(0).WithDefaults()
	b.Inflight, b.Window, b.MinMsgs, b.MaxMsgs, b.MaxBytes, b.Logger = c.Inflight, c.Window, c.MinMsgs, c.MaxMsgs, c.MaxBytes, c.Logger
	return b
}
