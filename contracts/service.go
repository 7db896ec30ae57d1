package contracts

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// ServiceSchema is the version of the request the service handler sends
// an external service (docs/handlers.md, "External services"). It
// changes when a field is removed or its meaning changes; added fields
// keep it, so services ignore fields they do not know.
const ServiceSchema = "mailscope.service.v1"

// ServiceReplySchema is the version of a service's reply. A reply may
// leave its schema out (it is then this version); any other value is a
// bad reply.
const ServiceReplySchema = "mailscope.service.reply.v1"

// HeaderServiceMailID carries the mail's id on a service request, as in
// the body's id: a service may route or deduplicate without decoding.
const HeaderServiceMailID = "Mailscope-Mail-Id"

// ServiceRequest is the JSON body of the request the service handler
// sends, on NATS, to the external service a rule chose, for one mail.
// The service answers with a ServiceReply before Deadline. With DryRun
// set the service must decide as it would otherwise, and do nothing.
type ServiceRequest struct {
	// Schema is always ServiceSchema.
	Schema string `json:"schema"`
	// ID is the mail's id (as in the outcome): the same on every retry of
	// one mail, so a service uses it as its idempotency key.
	ID string `json:"id"`
	// Service is the name of the service, as the rule chose it.
	Service string `json:"service"`
	// DryRun is mail.dry_run: when true the service decides and does
	// nothing (no side effect); its decision becomes the outcome, which
	// says dry_run.
	DryRun bool `json:"dry_run"`
	// Deadline is when the worker stops waiting for the reply (the
	// worker's service timeout after sending); a reply after it is lost
	// and the mail is asked again later.
	Deadline time.Time `json:"deadline"`
	// MessageID is the Message-ID without angle brackets; "" if none.
	MessageID string `json:"message_id"`
	// Envelope is the SMTP envelope.
	Envelope Envelope `json:"envelope"`
	// ReceivedAt is when the producer received the mail.
	ReceivedAt time.Time `json:"received_at"`
	// Attempt is the delivery attempt sending this request, from 1.
	Attempt int `json:"attempt"`
	// Auth holds the authentication results and the trust level, as in
	// the outcome.
	Auth Auth `json:"auth"`
	// Flags lists every flag consulted for this mail with its value and
	// the rule that decided it, as in the outcome.
	Flags []FlagDecision `json:"flags"`
	// MailContent is the parsed mail (its fields are the request's own
	// in JSON), as the webhook sends it: headers, summary, attachments
	// inline while they fit the worker's service attachment limit.
	MailContent
	// Worker says who sent the request.
	Worker WorkerInfo `json:"worker"`
	// TraceID is the mail's W3C trace id, as in the outcome; "" without one.
	TraceID string `json:"trace_id,omitempty"`
}

// ServiceDecision is what a service decided about a mail.
type ServiceDecision string

// The decisions of a ServiceReply.
const (
	// ServiceAccept: the service took the mail (or, in a dry run, would
	// have). The outcome has the reply's disposition, processed by
	// default.
	ServiceAccept ServiceDecision = "accept"
	// ServiceReject: the service refuses the mail for good. The outcome
	// is rejected with the reply's reason; the mail is not retried.
	ServiceReject ServiceDecision = "reject"
	// ServiceRetry: the service cannot decide now. The mail is asked
	// again after RetryAfter seconds (absent or 0: the worker's backoff)
	// and dead-lettered once out of attempts.
	ServiceRetry ServiceDecision = "retry"
)

// ServiceReply is the JSON body a service answers a ServiceRequest with.
// Fields a reply has that this version does not know are ignored.
type ServiceReply struct {
	// Schema is ServiceReplySchema or absent.
	Schema string `json:"schema,omitempty"`
	// Decision is accept, reject or retry. Required.
	Decision ServiceDecision `json:"decision"`
	// Reason says why, for people: it is the outcome's reason (for a
	// rejection, after the service's name). Optional; at most
	// ServiceMaxReason bytes are kept.
	Reason string `json:"reason,omitempty"`
	// RetryAfter is, for retry, the delay in seconds before the mail is
	// asked again (the worker caps it at its backoff cap, 5 minutes by
	// default); absent or 0: the worker's backoff. Not negative.
	RetryAfter float64 `json:"retry_after,omitempty"`
	// Disposition is, for accept, the outcome's disposition: processed
	// (the default), quarantined or discarded.
	Disposition Disposition `json:"disposition,omitempty"`
}

// ServiceMaxReason is the most bytes of a reply's reason kept in the
// outcome.
const ServiceMaxReason = 1024

// ErrServiceReply is the error of ParseServiceReply for a reply that
// does not follow the contract.
var ErrServiceReply = errors.New("bad service reply")

// ParseServiceReply decodes and checks a service's reply: JSON, schema
// absent or ServiceReplySchema, a known decision, a retry_after that is
// a non-negative number of seconds for retry only, a disposition of
// processed, quarantined or discarded for accept only. Its errors wrap
// ErrServiceReply and say what is wrong.
func ParseServiceReply(data []byte) (ServiceReply, error) {
	var r ServiceReply
	if err := json.Unmarshal(data, &r); err != nil {
		return ServiceReply{}, fmt.Errorf("%w: not a JSON object: %v", ErrServiceReply, err)
	}
	switch {
	case r.Schema != "" && r.Schema != ServiceReplySchema:
		return ServiceReply{}, fmt.Errorf("%w: schema %q, want %q", ErrServiceReply, r.Schema, ServiceReplySchema)
	case r.Decision != ServiceAccept && r.Decision != ServiceReject && r.Decision != ServiceRetry:
		return ServiceReply{}, fmt.Errorf("%w: decision %q, want accept, reject or retry", ErrServiceReply, r.Decision)
	case r.RetryAfter < 0 || math.IsNaN(r.RetryAfter):
		return ServiceReply{}, fmt.Errorf("%w: retry_after %v, want seconds, not negative", ErrServiceReply, r.RetryAfter)
	case r.RetryAfter != 0 && r.Decision != ServiceRetry:
		return ServiceReply{}, fmt.Errorf("%w: retry_after with decision %s", ErrServiceReply, r.Decision)
	case r.Disposition != "" && r.Decision != ServiceAccept:
		return ServiceReply{}, fmt.Errorf("%w: disposition with decision %s", ErrServiceReply, r.Decision)
	}
	switch r.Disposition {
	case "", Processed, Quarantined, Discarded:
	default:
		return ServiceReply{}, fmt.Errorf("%w: disposition %q, want processed, quarantined or discarded", ErrServiceReply, r.Disposition)
	}
	if len(r.Reason) > ServiceMaxReason {
		r.Reason = strings.ToValidUTF8(r.Reason[:ServiceMaxReason], "")
	}
	return r, nil
}

// Delay is the reply's RetryAfter as a duration, 0 when absent; at most
// a day.
func (r ServiceReply) Delay() time.Duration {
	return time.Duration(min(r.RetryAfter, 86400) * float64(time.Second))
}
