package groupcommit

import "sync/atomic"

// Stats counts how a Publisher stored its messages.
type Stats struct {
	// Batches counts atomic batches stored; BatchedMails the messages in
	// them.
	Batches, BatchedMails int64
	// Alone counts messages published on their own: a group under
	// MinMsgs, a Single publisher, batching bypassed, or a fallback.
	Alone int64
	// Fallbacks counts batches the server refused for a reason that
	// publishing message by message avoids (a duplicate id, atomic
	// publish not allowed); their messages were then published alone.
	Fallbacks int64
	// Failed counts batches that failed as a whole: every message in
	// them was answered with an error wrapping ErrNotStored.
	Failed int64
	// Retries counts the attempts Publish made again under
	// Config.RetryFor after a retryable failure.
	Retries int64
}

// counters are the live Stats.
type counters struct {
	batches, batchedMails, alone, fallbacks, failed, retries atomic.Int64
}

// Stats returns how p has stored its messages so far.
func (p *Publisher) Stats() Stats {
	return Stats{
		Batches:      p.stats.batches.Load(),
		BatchedMails: p.stats.batchedMails.Load(),
		Alone:        p.stats.alone.Load(),
		Fallbacks:    p.stats.fallbacks.Load(),
		Failed:       p.stats.failed.Load(),
		Retries:      p.stats.retries.Load(),
	}
}
