package contracts

import (
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
)

// ClaimAdopted is the header a worker sets in a claimed mail's object
// metadata (ObjectMeta.Headers) when it first takes the mail: the time,
// RFC 3339 UTC. An adopted object belongs to a message that reached a
// worker, so the orphan collector never touches it; only an object that
// is not adopted can be an orphan (a producer stopped between writing
// the object and storing its message).
const ClaimAdopted = "Mailscope-Adopted"

// Claim is the reference a claimed mail's message carries instead of the
// mail: the object that holds the raw mail in the claim bucket, and its
// size. The message data of a claimed mail is empty.
type Claim struct {
	// Object is the object's name in the claim bucket (HeaderClaim).
	Object string `json:"object"`
	// Size is the raw mail's size in bytes (HeaderClaimSize).
	Size int64 `json:"size"`
}

// Encode writes c into h (HeaderClaim and HeaderClaimSize).
func (c Claim) Encode(h nats.Header) {
	h.Set(HeaderClaim, c.Object)
	h.Set(HeaderClaimSize, strconv.FormatInt(c.Size, 10))
}

// DecodeClaim reads the claim of an input message: ok is false when h
// carries none (the mail is the message data). It fails, wrapping
// [ErrBadEnvelope], when the claim is there but its size is missing or
// not a non-negative integer.
func DecodeClaim(h nats.Header) (c Claim, ok bool, err error) {
	c.Object = h.Get(HeaderClaim)
	if c.Object == "" {
		return Claim{}, false, nil
	}
	c.Size, err = strconv.ParseInt(h.Get(HeaderClaimSize), 10, 64)
	if err != nil || c.Size < 0 {
		return c, true, fmt.Errorf("%w: %s %q", ErrBadEnvelope, HeaderClaimSize, h.Get(HeaderClaimSize))
	}
	return c, true, nil
}
