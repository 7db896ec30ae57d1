package contracts

import (
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
)

// DeadLetter is what a dead-letter message says of its mail beyond the
// input's envelope headers, which it keeps: why it was dead-lettered
// (HeaderDeadReason), the failure class (HeaderDeadClass), the attempts
// made (HeaderAttempts) and the input message's id (HeaderOriginalID).
// The message data is the raw mail, byte for byte (empty for a claimed
// mail, whose object is kept).
type DeadLetter struct {
	// Reason says why, one line of at most 1 KiB.
	Reason string
	// Class is the failure class: "malformed" or "transient".
	Class string
	// Attempts is the number of delivery attempts made.
	Attempts int
	// OriginalID is the id of the input message.
	OriginalID string
}

// Encode writes d into h, beside the envelope headers copied from the
// input.
func (d DeadLetter) Encode(h nats.Header) {
	h.Set(HeaderDeadReason, d.Reason)
	h.Set(HeaderDeadClass, d.Class)
	h.Set(HeaderAttempts, strconv.Itoa(d.Attempts))
	h.Set(HeaderOriginalID, d.OriginalID)
}

// DecodeDeadLetter reads the dead-letter headers of h. ok is false when h
// is not a dead letter's (no HeaderDeadReason). A present but broken
// HeaderAttempts is an error wrapping [ErrBadEnvelope].
func DecodeDeadLetter(h nats.Header) (d DeadLetter, ok bool, err error) {
	if h.Get(HeaderDeadReason) == "" {
		return DeadLetter{}, false, nil
	}
	d = DeadLetter{Reason: h.Get(HeaderDeadReason), Class: h.Get(HeaderDeadClass), OriginalID: h.Get(HeaderOriginalID)}
	if a := h.Get(HeaderAttempts); a != "" {
		if d.Attempts, err = strconv.Atoi(a); err != nil || d.Attempts < 0 {
			return d, true, fmt.Errorf("%w: %s %q is not a count", ErrBadEnvelope, HeaderAttempts, a)
		}
	}
	return d, true, nil
}
