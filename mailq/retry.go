package mailq

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/contracts"
)

// RetryID is the id the mail of the dead letter at seq, of mail id
// mailID, gets when retried: a new one, so that its outcome is not
// deduplicated against the dead one's (the outcome stream keeps one event
// per id), and the same for the same dead letter, so that a retry
// repeated after a lost acknowledgement is stored once.
func RetryID(mailID string, seq uint64) string {
	return mailID + "-retry-" + strconv.FormatUint(seq, 10)
}

// Retried is one dead letter put back on the mail subject.
type Retried struct {
	// Seq is the dead letter's sequence; it is deleted.
	Seq uint64
	// OldID is the mail id the dead letter had, NewID the one its mail
	// has now (RetryID).
	OldID, NewID string
}

// Retry puts the mail of the dead letter at seq back on the mail subject
// (names.MailSubject) with its original envelope and a new id (RetryID),
// as a mail with no attempts used, and deletes the dead letter only once
// the new copy is stored: a failure at any point leaves the dead letter
// where it was, and retrying again stores the copy once. The headers the
// dead letter added and the stream's own are dropped; Mailscope-Original-Id
// names the dead letter's mail id. A mail whose body is in the object
// store keeps its reference: the object stays until the retried mail has
// its outcome.
func Retry(ctx context.Context, js jetstream.JetStream, names contracts.Names, seq uint64) (Retried, error) {
	names = names.WithDefaults()
	s, err := js.Stream(ctx, names.DeadStream)
	if err != nil {
		return Retried{}, fmt.Errorf("stream %s: %w", names.DeadStream, err)
	}
	m, err := s.GetMsg(ctx, seq)
	if err != nil {
		return Retried{}, fmt.Errorf("dead letter %d: %w", seq, err)
	}
	e := entryOf(m)
	if e.ID == "" {
		return Retried{}, fmt.Errorf("dead letter %d has no mail id", seq)
	}
	if e.EnvelopeError != "" {
		return Retried{}, fmt.Errorf("dead letter %d (%s): its envelope does not decode (%s); a retry would be dead-lettered again", seq, e.ID, e.EnvelopeError)
	}
	r := Retried{Seq: seq, OldID: e.ID, NewID: RetryID(e.ID, seq)}
	out := &nats.Msg{Subject: names.MailSubject, Header: retryHeaders(m.Header, r), Data: m.Data}
	if _, err := js.PublishMsg(ctx, out, jetstream.WithMsgID(r.NewID)); err != nil {
		return Retried{}, fmt.Errorf("dead letter %d (%s): not stored on %s, left in place: %w", seq, e.ID, names.MailSubject, err)
	}
	if err := s.DeleteMsg(ctx, seq); err != nil {
		return r, fmt.Errorf("dead letter %d (%s): retried as %s but not deleted (a repeated retry stores it once): %w", seq, e.ID, r.NewID, err)
	}
	return r, nil
}

// retryHeaders returns the headers of the retried copy: the envelope and
// whatever else the mail carried, less what the dead-lettering, a hold
// and the stream added, with the new id.
func retryHeaders(from nats.Header, r Retried) nats.Header {
	h := nats.Header{}
	for k, v := range from {
		switch {
		case strings.HasPrefix(k, "Nats-"),
			k == contracts.HeaderDeadReason, k == contracts.HeaderDeadClass, k == contracts.HeaderAttempts,
			k == contracts.HeaderPriorAttempts, k == contracts.HeaderMailID,
			k == contracts.HeaderHeldReason, k == contracts.HeaderHeldSince:
			continue
		}
		h[k] = append([]string(nil), v...)
	}
	h.Set(contracts.HeaderMsgID, r.NewID)
	h.Set(contracts.HeaderOriginalID, r.OldID)
	return h
}

// RetryAll retries every dead letter f selects, oldest first, and returns
// those retried; it stops at the first failure.
func RetryAll(ctx context.Context, js jetstream.JetStream, names contracts.Names, f Filter) ([]Retried, error) {
	names = names.WithDefaults()
	entries, err := List(ctx, js, names.DeadStream, f)
	if err != nil {
		return nil, err
	}
	var done []Retried
	for _, e := range entries {
		r, err := Retry(ctx, js, names, e.Seq)
		if err != nil {
			return done, err
		}
		done = append(done, r)
	}
	return done, nil
}
