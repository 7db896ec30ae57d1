package workers

import (
	"errors"
	"fmt"
	"time"
)

// Class is a failure class (DESIGN.md, "Failure classes"). One function,
// decide, turns a class and an attempt count into what happens to the
// input message.
type Class int

const (
	// Transient failures may go away: DNS timeouts, NATS errors, handler
	// timeouts, panics. The mail is redelivered with backoff and
	// dead-lettered after the attempt limit. Unclassified errors are
	// transient: retrying is never the lossy choice.
	Transient Class = iota
	// Malformed mail cannot be processed by any retry: it is
	// dead-lettered at once with the reason.
	Malformed
	// Held mail is kept in the queue (mail.pause) and redelivered later.
	Held
)

func (c Class) String() string {
	switch c {
	case Malformed:
		return "malformed"
	case Held:
		return "held"
	default:
		return "transient"
	}
}

// classError carries a class with its cause.
type classError struct {
	class Class
	err   error
}

func (e *classError) Error() string { return e.err.Error() }
func (e *classError) Unwrap() error { return e.err }

// malformed marks err as Malformed.
func malformed(format string, args ...any) error {
	return &classError{Malformed, fmt.Errorf(format, args...)}
}

// transient marks err as Transient.
func transient(format string, args ...any) error {
	return &classError{Transient, fmt.Errorf(format, args...)}
}

// errHeld is returned when mail.pause holds a mail.
var errHeld = &classError{Held, errors.New("held by mail.pause")}

// ClassOf returns the class of err; Transient unless marked otherwise.
func ClassOf(err error) Class {
	var ce *classError
	if errors.As(err, &ce) {
		return ce.class
	}
	return Transient
}

// action is what becomes of an input message that failed.
type action int

const (
	actRetry action = iota // Nak with delay
	actDead                // dead letter, then Term
	actHold                // Nak with the hold delay
)

func (a action) String() string {
	switch a {
	case actDead:
		return "dead"
	case actHold:
		return "hold"
	default:
		return "retry"
	}
}

// decide maps a failure to its action. attempt counts from 1.
func decide(err error, attempt, maxAttempts int) action {
	switch ClassOf(err) {
	case Malformed:
		return actDead
	case Held:
		return actHold
	default:
		if attempt >= maxAttempts {
			return actDead
		}
		return actRetry
	}
}

// backoff returns the redelivery delay after a transient failure on the
// given attempt: base doubled per attempt, capped at max. The doubling
// stops at the cap before it could overflow, so a cap of "no limit"
// (math.MaxInt64) never turns into a zero or negative delay.
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
