package groupcommit

import (
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Headers a Publisher sets: the dedup id, and those of atomic batch
// publishing (nats-server 2.12+).
const (
	hdrMsgID       = jetstream.MsgIDHeader
	hdrBatchID     = "Nats-Batch-Id"
	hdrBatchSeq    = "Nats-Batch-Sequence"
	hdrBatchCommit = "Nats-Batch-Commit"
)

// commitValue is the value of Nats-Batch-Commit, shared by every commit:
// the headers holding it are only ever read (serialized by nats.go).
var commitValue = []string{"1"}

// sendsAsIs reports whether a message with headers h may be published
// alone as it is to be stored with dedup id id: it carries exactly that
// Nats-Msg-Id (or id is empty) and no batch header. Else it is published
// as a copy with its headers set right, so that the caller's stay as
// they are.
func sendsAsIs(h nats.Header, id string) bool {
	if id != "" {
		if v := h[hdrMsgID]; len(v) != 1 || v[0] != id {
			return false
		}
	}
	for _, k := range [...]string{hdrBatchID, hdrBatchSeq, hdrBatchCommit} {
		if _, ok := h[k]; ok {
			return false
		}
	}
	return true
}

// copyHeader makes dst (cleared first) a copy of h without its batch
// headers. The value slices are shared, not copied: neither the caller's
// headers nor dst's values are ever written to.
func copyHeader(dst, h nats.Header) {
	clear(dst)
	for k, v := range h {
		switch k {
		case hdrBatchID, hdrBatchSeq, hdrBatchCommit:
			continue
		}
		dst[k] = v
	}
}

// headerSize estimates the bytes of h on the wire.
func headerSize(h nats.Header) int {
	n := 0
	for k, vs := range h {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}
