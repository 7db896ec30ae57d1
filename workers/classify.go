package workers

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/mailscope/mailscope/contracts"
)

// Class is a failure class (docs/architecture.md, "Failure classes"). One
// function, decide, turns a class and an attempt count into what happens
// to the input message.
type Class int

const (
	// Transient failures may go away: NATS errors, handler timeouts and
	// errors, panics. The mail is redelivered with backoff and
	// dead-lettered after the attempt limit. Unclassified errors are
	// transient: retrying is never the lossy choice.
	Transient Class = iota
	// Malformed mail cannot be processed by any retry: it is
	// dead-lettered at once with the reason.
	Malformed
	// Held mail is kept safely (mail.pause) and looked at again on every
	// rule change; holding never uses an attempt.
	Held
	// Permanent failures are a handler's final refusal: the outcome is
	// rejected with the reason, and the mail is acknowledged.
	Permanent
	// DNS failures are DKIM key lookups that did not answer (temperror):
	// retried with backoff like transient ones, but once out of attempts
	// the mail waits with the held mail until DNS answers, never
	// dead-lettered for an outage; past Config.DNSHoldMax it is decided
	// with the temperror recorded.
	DNS
)

// String returns the class's name as metrics and dead letters give it.
func (c Class) String() string {
	switch c {
	case Malformed:
		return "malformed"
	case Held:
		return "held"
	case Permanent:
		return "permanent"
	case DNS:
		return "dns"
	default:
		return "transient"
	}
}

// classError carries a class with its cause, and for a retry the delay a
// handler asked for.
type classError struct {
	class Class
	err   error
	after time.Duration // RetryLater's delay; 0: the backoff
}

func (e *classError) Error() string { return e.err.Error() }
func (e *classError) Unwrap() error { return e.err }

// Reject returns the error a handler returns to refuse a mail for good:
// the outcome is rejected with reason, the mail is acknowledged and never
// retried (class Permanent).
func Reject(reason string) error {
	return &classError{class: Permanent, err: errors.New(reason)}
}

// RetryLater returns the error a handler returns when the mail may
// succeed later (class Transient): it is redelivered after the delay (0:
// the worker's backoff; capped at Config.BackoffMax) and dead-lettered
// once out of attempts. A handler error that is not classified is
// treated the same way, with the backoff.
func RetryLater(err error, after time.Duration) error {
	return &classError{class: Transient, err: err, after: max(after, 0)}
}

// Unprocessable returns the error a handler returns for a mail that no
// retry can process (class Malformed): it is dead-lettered at once with
// err as the reason.
func Unprocessable(err error) error {
	return &classError{class: Malformed, err: err}
}

// malformed marks err as Malformed.
func malformed(format string, args ...any) error {
	return &classError{class: Malformed, err: fmt.Errorf(format, args...)}
}

// transient marks err as Transient.
func transient(format string, args ...any) error {
	return &classError{class: Transient, err: fmt.Errorf(format, args...)}
}

// dnsFailure marks err as DNS.
func dnsFailure(format string, args ...any) error {
	return &classError{class: DNS, err: fmt.Errorf(format, args...)}
}

// errHeld is returned when mail.pause holds a mail.
var errHeld = &classError{class: Held, err: errors.New("held by mail.pause")}

// ClassOf returns the class of err; Transient unless marked otherwise.
// The outermost class wins.
func ClassOf(err error) Class {
	var ce *classError
	if errors.As(err, &ce) {
		return ce.class
	}
	return Transient
}

// retryAfter returns the delay a RetryLater error asked for, 0 if none.
func retryAfter(err error) time.Duration {
	var ce *classError
	if errors.As(err, &ce) {
		return ce.after
	}
	return 0
}

// refusedError marks a Checker's refusal, at evaluation, of the
// decisions about a mail (its class is the wrapped error's). A held mail
// evaluated again with such a refusal is resumed, not kept: the pause no
// longer holds it, and the main flow retries and dead-letters it.
type refusedError struct{ error }

func (e refusedError) Unwrap() error { return e.error }

// refused marks err as a Checker's refusal.
func refused(err error) error { return refusedError{err} }

// isRefused reports whether err is a Checker's refusal.
func isRefused(err error) bool {
	var r refusedError
	return errors.As(err, &r)
}

// webhookOutcome classifies the answer to a webhook request to endpoint
// (docs/handlers.md, "Failure classes"): err set (no response) is a
// timeout when timedOut, else a connection error, both Transient with the
// backoff; 2xx is success (nil); 429 is RetryLater after retryAfter (0:
// the backoff); any other 4xx is Reject with the status and detail, a
// bounded excerpt of the response; 5xx and any other status are
// Transient. It returns the result label of the request too.
func webhookOutcome(endpoint string, status int, retryAfter time.Duration, detail string, timedOut bool, err error) (string, error) {
	if detail != "" {
		detail = ": " + detail
	}
	switch {
	case err != nil && timedOut:
		return webhookTimeout, transient("webhook endpoint %s: %v", endpoint, err)
	case err != nil:
		return webhookConnError, transient("webhook endpoint %s: %v", endpoint, err)
	case status >= 200 && status < 300:
		return webhookDelivered, nil
	case status == 429:
		return webhookRetryLater, RetryLater(fmt.Errorf("webhook endpoint %s: HTTP 429, retry after %v%s", endpoint, retryAfter, detail), retryAfter)
	case status >= 400 && status < 500:
		return webhookRejected, Reject(fmt.Sprintf("webhook endpoint %s refused the mail: HTTP %d%s", endpoint, status, detail))
	default:
		return webhookServerError, transient("webhook endpoint %s: HTTP %d%s", endpoint, status, detail)
	}
}

// serviceOutcome classifies what came back from a request to the
// service named name (docs/handlers.md, "External services"), err being
// the request's error and timeout the worker's service timeout: no
// responders, no answer in time and any other failure to get a reply
// are Transient with the backoff; a micro error reply
// (Nats-Service-Error-Code) in the 400s is Reject with its code and
// text, any other code Transient; a reply that breaks the contract is
// Transient (a service fault, retried, then dead-lettered); reject is
// Reject with the service's reason, retry is RetryLater after its
// retry_after (0: the backoff), accept is success (nil), its reply
// returned. It returns the result label of the request too.
func serviceOutcome(name string, timeout time.Duration, reply *nats.Msg, err error) (string, contracts.ServiceReply, error) {
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return serviceNoResponders, contracts.ServiceReply{}, transient("service %s: no service is listening (no responders)", name)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
		return serviceTimeout, contracts.ServiceReply{}, transient("service %s: no answer within %v", name, timeout)
	case err != nil:
		return serviceConnError, contracts.ServiceReply{}, transient("service %s: %v", name, err)
	}
	if code := reply.Header.Get(micro.ErrorCodeHeader); code != "" {
		text := responseDetail([]byte(reply.Header.Get(micro.ErrorHeader)))
		if n, _ := strconv.Atoi(code); n >= 400 && n < 500 {
			return serviceRejected, contracts.ServiceReply{}, Reject(fmt.Sprintf("service %s refused the mail: error %s: %s", name, code, text))
		}
		return serviceError, contracts.ServiceReply{}, transient("service %s: error %s: %s", name, code, text)
	}
	r, err := contracts.ParseServiceReply(reply.Data)
	if err != nil {
		return serviceBadReply, contracts.ServiceReply{}, transient("service %s: %w: %s", name, err, responseDetail(reply.Data))
	}
	r.Reason = printable(r.Reason)
	switch r.Decision {
	case contracts.ServiceReject:
		reason := fmt.Sprintf("service %s rejected the mail", name)
		if r.Reason != "" {
			reason += ": " + r.Reason
		}
		return serviceRejected, r, Reject(reason)
	case contracts.ServiceRetry:
		reason := ""
		if r.Reason != "" {
			reason = ": " + r.Reason
		}
		return serviceRetryLater, r, RetryLater(fmt.Errorf("service %s asked to retry after %v%s", name, r.Delay(), reason), r.Delay())
	default:
		return serviceAccepted, r, nil
	}
}
