package groupcommit

import (
	"errors"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ErrNotStored is wrapped by every Publish error: JetStream did not
// acknowledge the message, so it is not known to be stored (the caller
// keeps it, or has its sender retry).
var ErrNotStored = errors.New("message not stored")

// JetStream error codes a Publisher answers by publishing a batch's
// messages one by one.
const (
	errCodeAtomicDisabled      jetstream.ErrorCode = 10174 // the stream does not allow atomic publish
	errCodeAtomicIncomplete    jetstream.ErrorCode = 10176 // a message of the batch went missing
	errCodeAtomicTooLarge      jetstream.ErrorCode = 10199 // over the server's max_batch_size
	errCodeAtomicDuplicate     jetstream.ErrorCode = 10201 // a Nats-Msg-Id seen before, or twice in the batch
	errCodeAtomicTooMany       jetstream.ErrorCode = 10210 // too many open batches
	errCodeDuplicateInProgress jetstream.ErrorCode = 10158 // a Nats-Msg-Id being stored by another publish
)

// byOneByOneCodes are the refusals that concern batching itself, not the
// message or the stream.
var byOneByOneCodes = [...]jetstream.ErrorCode{errCodeAtomicDisabled, errCodeAtomicIncomplete, errCodeAtomicTooLarge,
	errCodeAtomicDuplicate, errCodeAtomicTooMany, errCodeDuplicateInProgress}

// errInvalidBatchAck: the answer to a commit is no batch acknowledgement
// (a server without atomic batches stores each message as it comes).
var errInvalidBatchAck = errors.New("invalid batch acknowledgement")

// byOneByOne reports whether the messages of a batch refused with err
// may still be stored one by one: refusals that concern batching itself,
// not the message or the stream.
func byOneByOne(err error) bool {
	if errors.Is(err, errInvalidBatchAck) {
		return true
	}
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) {
		return false
	}
	for _, code := range byOneByOneCodes {
		if apiErr.ErrorCode == code {
			return true
		}
	}
	return false
}

func isAPIError(err error, code jetstream.ErrorCode) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr) && apiErr.ErrorCode == code
}

// reason names a fallback's cause for the metric: the JetStream error
// code, or "invalid_ack".
func reason(err error) string {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return strconv.Itoa(int(apiErr.ErrorCode))
	}
	return "invalid_ack"
}

// retryable reports whether a publish error may go away on an immediate
// retry: a timeout or a missing responder may, while an answer from the
// server (stream full, message too large) will not.
func retryable(err error) bool {
	var apiErr *jetstream.APIError
	return !errors.As(err, &apiErr) && !errors.Is(err, nats.ErrMaxPayload)
}
