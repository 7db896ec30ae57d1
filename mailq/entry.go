package mailq

import (
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/contracts"
)

// Entry is one waiting mail: a dead letter or a held copy.
type Entry struct {
	// Seq is the message's sequence in its stream: what Show and Retry
	// take.
	Seq uint64 `json:"seq"`
	// Stored is when the stream stored it (dead-lettered or held).
	Stored time.Time `json:"stored"`
	// ID is the mail's id; for a dead letter, the id its outcome (of
	// disposition dead) has.
	ID string `json:"id"`
	// Envelope is the mail's envelope, as far as it decodes (a mail
	// dead-lettered for a broken envelope has what could be read).
	Envelope contracts.Envelope `json:"envelope"`
	// EnvelopeError says why the envelope did not decode; "" when it did.
	EnvelopeError string `json:"envelope_error,omitempty"`
	// Reason is why it waits: the dead letter's reason, or the hold
	// reason (contracts.HoldPause, contracts.HoldDNS; "" for a copy held
	// before reasons were recorded).
	Reason string `json:"reason"`
	// Class is a dead letter's failure class ("malformed", "transient");
	// "" for held mail.
	Class string `json:"class,omitempty"`
	// Attempts is a dead letter's delivery attempts.
	Attempts int `json:"attempts,omitempty"`
	// HeldSince is when a held mail's hold began (zero if unknown).
	HeldSince time.Time `json:"held_since,omitzero"`
	// Size is the raw mail's size in bytes as stored in the message (0
	// for a mail whose body is in the object store).
	Size int `json:"size"`
}

// entryOf reads an Entry from a stored message.
func entryOf(m *jetstream.RawStreamMsg) Entry {
	h := m.Header
	if h == nil {
		h = nats.Header{}
	}
	e := Entry{Seq: m.Sequence, Stored: m.Time.UTC(), Size: len(m.Data)}
	env, err := contracts.DecodeEnvelope(h)
	if err != nil {
		e.EnvelopeError = err.Error()
		env = contracts.Envelope{ID: contracts.MailID(h), MailFrom: h.Get(contracts.HeaderMailFrom),
			RcptTo: h.Values(contracts.HeaderRcptTo), Protocol: h.Get(contracts.HeaderProtocol)}
	}
	e.Envelope = env
	e.ID = env.ID
	if id := h.Get(contracts.HeaderOriginalID); id != "" && e.ID == "" {
		e.ID = id
	}
	if dl, ok, _ := contracts.DecodeDeadLetter(h); ok {
		// A broken attempt count leaves Attempts at what could be read.
		e.Reason, e.Class, e.Attempts = dl.Reason, dl.Class, dl.Attempts
	} else {
		e.Reason = h.Get(contracts.HeaderHeldReason)
		if t, err := time.Parse(time.RFC3339Nano, h.Get(contracts.HeaderHeldSince)); err == nil {
			e.HeldSince = t.UTC()
		}
	}
	return e
}
