package workers

import (
	"fmt"
	"time"
)

// step is the point of a delivery's life at which decide is asked.
type step int

const (
	// stepDelivered: a mail arrived from the mail consumer; err is set
	// when its envelope does not decode.
	stepDelivered step = iota
	// stepProcessed: evaluate and act ended; err nil means an outcome to
	// store.
	stepProcessed
	// stepStoreFailed: what the previous action had to store (an outcome,
	// a dead letter, a held copy) was not stored; failed names the action.
	stepStoreFailed
	// stepHeldChecked: a held mail was evaluated again under the current
	// rules; err nil means the pause no longer applies.
	stepHeldChecked
	// stepStopping: the worker stops with the delivery still its own.
	stepStopping
)

// action is what becomes of a delivery.
type action int

const (
	actProcess action = iota // evaluate and act on it
	actStore                 // store the outcome, then ack
	actRetry                 // nak with a delay: a later attempt
	actDead                  // dead letter and its outcome, then term
	actHold                  // copy to the held stream, then ack
	actResume                // a held mail: copy to the mail subject, then ack the held copy
	actKeep                  // a held mail: keep it in flight, look again later
	actRelease               // nak without delay: another worker takes it
)

func (a action) String() string {
	switch a {
	case actProcess:
		return "process"
	case actStore:
		return "store"
	case actDead:
		return "dead"
	case actHold:
		return "hold"
	case actResume:
		return "resume"
	case actKeep:
		return "keep"
	case actRelease:
		return "release"
	default:
		return "retry"
	}
}

// event is what decide is told about a delivery.
type event struct {
	step    step
	err     error
	attempt int    // counts from 1, across holds
	failed  action // for stepStoreFailed
}

// verdict is decide's answer: the action, its delay, and the cause the
// dead letter or the log gives.
type verdict struct {
	act   action
	delay time.Duration
	cause error
}

// policy is every attempt rule of the worker (docs/architecture.md, "The
// settle path"), taken from Config.
type policy struct {
	maxAttempts             int
	backoffBase, backoffMax time.Duration
	holdDelay               time.Duration
}

func policyOf(c Config) policy {
	return policy{maxAttempts: c.MaxAttempts, backoffBase: c.BackoffBase, backoffMax: c.BackoffMax, holdDelay: c.HoldDelay}
}

// decide maps what happened to a delivery to what becomes of it. It is
// the only place that judges attempts:
//
//   - a mail delivered more than twice the attempt limit without ever
//     reaching an outcome or a retry decision crashes or stalls its
//     workers: it is dead-lettered without being processed again (the
//     slack of a second limit absorbs redeliveries that were no attempt:
//     a lost ack, a shutdown, a park that failed);
//   - malformed mail is dead at once; a permanent refusal stores its
//     rejected outcome; held mail is held, whatever its attempts;
//   - a transient failure is retried with backoff (or the handler's
//     RetryLater delay) and dead once attempt reaches the limit;
//   - a DNS failure is retried likewise, and once out of attempts held
//     until DNS answers: never dead-lettered for an outage, never decided
//     on half-known authentication, until it has waited DNSHoldMax (then
//     evaluation records the temperror instead of failing: see
//     dnsContext).
func (p policy) decide(e event) verdict {
	switch e.step {
	case stepDelivered:
		if e.err != nil {
			return p.failed(e.err, e.attempt)
		}
		if e.attempt > 2*p.maxAttempts {
			return verdict{act: actDead, cause: transient("delivery %d is far past the attempt limit (%d) without an outcome; dead-lettered unprocessed, as a mail that crashes or stalls workers", e.attempt, p.maxAttempts)}
		}
		return verdict{act: actProcess}
	case stepProcessed:
		if e.err == nil {
			return verdict{act: actStore}
		}
		return p.failed(e.err, e.attempt)
	case stepStoreFailed:
		switch e.failed {
		case actStore:
			// The outcome was not stored: a NATS failure like any other.
			return p.failed(transient("store outcome: %v", e.err), e.attempt)
		case actHold:
			return verdict{act: actRetry, delay: p.holdDelay, cause: e.err}
		case actResume:
			return verdict{act: actKeep, cause: e.err}
		default: // a dead letter: it cannot be dead-lettered again
			return verdict{act: actRetry, delay: p.backoff(e.attempt), cause: e.err}
		}
	case stepHeldChecked:
		// Malformed mail is resumed too: the main flow dead-letters it
		// with the reason; so is a handler's refusal of the decisions
		// (an unknown webhook endpoint), for the main flow to retry and
		// dead-letter. Any other failure (the pause, DNS still silent, a
		// transient error) keeps it held.
		if e.err == nil || ClassOf(e.err) == Malformed || isRefused(e.err) {
			return verdict{act: actResume, cause: e.err}
		}
		return verdict{act: actKeep, cause: e.err}
	default: // stepStopping
		return verdict{act: actRelease}
	}
}

// failed decides a processing failure by its class.
func (p policy) failed(err error, attempt int) verdict {
	switch ClassOf(err) {
	case Malformed:
		return verdict{act: actDead, cause: err}
	case Held:
		return verdict{act: actHold, cause: err}
	case Permanent:
		// The handler's refusal is the outcome (rejected): stored, acked.
		return verdict{act: actStore, cause: err}
	case DNS:
		if attempt >= p.maxAttempts {
			return verdict{act: actHold, cause: &classError{class: Held, err: fmt.Errorf("dkim temperror on the last attempt, waiting for DNS: %w", err)}}
		}
		return verdict{act: actRetry, delay: p.backoff(attempt), cause: err}
	default:
		if attempt >= p.maxAttempts {
			return verdict{act: actDead, cause: err}
		}
		d := p.backoff(attempt)
		if after := retryAfter(err); after > 0 {
			d = min(after, p.backoffMax)
		}
		return verdict{act: actRetry, delay: d, cause: err}
	}
}

// backoff returns the redelivery delay after a failure on the given
// attempt: base doubled per attempt, capped at max. The doubling stops at
// the cap before it could overflow, so a cap of "no limit"
// (math.MaxInt64) never turns into a zero or negative delay.
func (p policy) backoff(attempt int) time.Duration {
	return backoff(attempt, p.backoffBase, p.backoffMax)
}

func backoff(attempt int, base, max time.Duration) time.Duration {
	d := base
	for i := 1; i < attempt && d < max; i++ {
		if d > max/2 {
			d = max
			break
		}
		d *= 2
	}
	if d > max {
		d = max
	}
	return d
}
