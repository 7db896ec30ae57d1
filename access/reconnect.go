package access

import (
	"time"

	"github.com/nats-io/nats.go"
)

// Reconnect timing of every role's connection.
const (
	// ReconnectWait is how long a client waits before it tries a server
	// again. nats.go's default, 2s, made every nats-server restart cost
	// 2 to 4 seconds of 451s; with the producer's retries inside its
	// publish timeout a restart costs a delay instead.
	ReconnectWait = 100 * time.Millisecond
	// ReconnectJitter is the most added at random to each wait (and
	// ReconnectJitterTLS over TLS), so that a fleet of clients does not
	// come back in the same instant.
	ReconnectJitter    = 100 * time.Millisecond
	ReconnectJitterTLS = 500 * time.Millisecond
)

// ReconnectOptions are the reconnect behaviour of every role's
// connection: reconnect for ever, every ReconnectWait plus up to
// ReconnectJitter, and no reconnect buffer.
//
// No buffer: a publish while disconnected fails at once instead of being
// sent after the reconnect. The producer retries such a publish itself,
// under the same id, within its publish timeout (it knows when to give
// up and answer 451; a buffer does not), and a mail answered 451 is not
// stored behind the MTA's back later, except for an attempt already
// sent whose answer was lost, which the MTA's resend meets as a
// duplicate inside the mail stream's window. Acks and outcomes of the
// worker likewise fail at once and are redone, deduplicated.
func ReconnectOptions() []nats.Option {
	return []nats.Option{
		nats.MaxReconnects(-1),
		nats.ReconnectWait(ReconnectWait),
		nats.ReconnectJitter(ReconnectJitter, ReconnectJitterTLS),
		nats.ReconnectBufSize(-1),
	}
}
