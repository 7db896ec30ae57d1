package contracts

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Header names of the input message. The message data is the raw RFC 5322
// mail, byte for byte as received; the envelope travels in these headers.
const (
	// HeaderMsgID is the JetStream de-duplication id of the mail. It is
	// also the mail's id in outcome events and dead letters.
	HeaderMsgID = nats.MsgIdHdr // "Nats-Msg-Id"
	// HeaderMailFrom is the envelope sender (MAIL FROM); empty for the
	// null reverse-path "<>".
	HeaderMailFrom = "Mailscope-Mail-From"
	// HeaderRcptTo is an envelope recipient; repeated once per recipient.
	HeaderRcptTo = "Mailscope-Rcpt-To"
	// HeaderReceivedAt is the time the producer received the mail,
	// RFC 3339 with nanoseconds, UTC.
	HeaderReceivedAt = "Mailscope-Received-At"
	// HeaderClientAddr is the network address of the client that sent the
	// mail (empty for mail published from a file).
	HeaderClientAddr = "Mailscope-Client-Addr"
	// HeaderHelo is the HELO/EHLO/LHLO name the client gave.
	HeaderHelo = "Mailscope-Helo"
	// HeaderProtocol is how the mail arrived: "smtp", "lmtp" or "publish".
	HeaderProtocol = "Mailscope-Protocol"
	// HeaderMailID is the mail's id on a copy of the input message (a mail
	// held by mail.pause, or resumed), whose Nats-Msg-Id must differ from
	// the original's; when present it is the mail's id.
	HeaderMailID = "Mailscope-Mail-Id"
	// HeaderPriorAttempts counts the delivery attempts a mail used up
	// before it was held; a resumed mail's attempt is this plus its
	// delivery count, so holding never counts toward the attempt limit.
	HeaderPriorAttempts = "Mailscope-Prior-Attempts"
	// HeaderHeldReason is why a held copy waits in the held stream:
	// [HoldPause] or [HoldDNS]. A resumed copy keeps it, so that the
	// worker knows how long the mail has waited for what.
	HeaderHeldReason = "Mailscope-Held-Reason"
	// HeaderHeldSince is when the mail was first held for its current
	// reason, RFC 3339 with nanoseconds, UTC; kept across re-holds for
	// the same reason and reset when the reason changes.
	HeaderHeldSince = "Mailscope-Held-Since"
	// HeaderTraceParent carries W3C trace context.
	HeaderTraceParent = "traceparent"
	// HeaderClaim marks a claimed mail, one too large to travel in the
	// message (see [Claim]): its value is the name of the object in the
	// claim bucket (Names.ClaimBucket) that holds the raw mail, byte for
	// byte, and the message data is empty. Absent on every other mail.
	HeaderClaim = "Mailscope-Claim"
	// HeaderClaimSize is the size in bytes (decimal) of a claimed mail's
	// object; set with HeaderClaim.
	HeaderClaimSize = "Mailscope-Claim-Size"
)

// Dead-letter header names, set on messages in the dead-letter stream in
// addition to the input's envelope headers.
const (
	// HeaderDeadReason says why the mail was dead-lettered.
	HeaderDeadReason = "Mailscope-Dead-Reason"
	// HeaderDeadClass is the failure class: "malformed" or "transient"
	// (attempt limit reached).
	HeaderDeadClass = "Mailscope-Dead-Class"
	// HeaderAttempts is the number of delivery attempts made.
	HeaderAttempts = "Mailscope-Attempts"
	// HeaderOriginalID is the id of the input message.
	HeaderOriginalID = "Mailscope-Original-Id"
)

// Hold reasons, the values of [HeaderHeldReason].
const (
	// HoldPause: mail.pause holds the mail, for as long as its rules say.
	HoldPause = "pause"
	// HoldDNS: its DKIM keys did not answer on the last attempt; it waits
	// for DNS, up to the workers' DNSHoldMax, then is decided with
	// temperror recorded.
	HoldDNS = "dns"
)

// Envelope is the SMTP envelope of a mail plus where it came from.
type Envelope struct {
	// ID is the mail's id (the input's Nats-Msg-Id).
	ID string `json:"id"`
	// MailFrom is the envelope sender; empty for "<>".
	MailFrom string `json:"mail_from"`
	// RcptTo lists the envelope recipients, at least one.
	RcptTo []string `json:"rcpt_to"`
	// ReceivedAt is when the producer received the mail.
	ReceivedAt time.Time `json:"received_at"`
	// ClientAddr is the sending client's network address, if any.
	ClientAddr string `json:"client_addr,omitempty"`
	// Helo is the client's HELO name, if any.
	Helo string `json:"helo,omitempty"`
	// Protocol is "smtp", "lmtp" or "publish".
	Protocol string `json:"protocol"`
	// Claim is set for a claimed mail (HeaderClaim): the raw mail is the
	// object it names, the message data is empty. Nil for every other
	// mail.
	Claim *Claim `json:"claim,omitempty"`
}

// ErrBadEnvelope is wrapped by every error of [DecodeEnvelope].
var ErrBadEnvelope = errors.New("bad envelope")

// Encode writes e into h, replacing any envelope headers already there.
func (e Envelope) Encode(h nats.Header) {
	h.Set(HeaderMsgID, e.ID)
	h.Set(HeaderMailFrom, e.MailFrom)
	h.Del(HeaderRcptTo)
	for _, r := range e.RcptTo {
		h.Add(HeaderRcptTo, r)
	}
	h.Set(HeaderReceivedAt, e.ReceivedAt.UTC().Format(time.RFC3339Nano))
	if e.ClientAddr != "" {
		h.Set(HeaderClientAddr, e.ClientAddr)
	}
	if e.Helo != "" {
		h.Set(HeaderHelo, e.Helo)
	}
	h.Set(HeaderProtocol, e.Protocol)
	if e.Claim != nil {
		e.Claim.Encode(h)
	}
}

// MailID returns the mail's id from the headers of an input message:
// Mailscope-Mail-Id on a copy, else Nats-Msg-Id.
func MailID(h nats.Header) string {
	if id := h.Get(HeaderMailID); id != "" {
		return id
	}
	return h.Get(HeaderMsgID)
}

// DecodeEnvelope reads an envelope from the headers of an input message,
// its claim included. It fails, wrapping [ErrBadEnvelope], when the id,
// the recipients or the receive time are missing or malformed, an address
// is not an address, or a claim has no valid size.
func DecodeEnvelope(h nats.Header) (Envelope, error) {
	bad := func(format string, args ...any) (Envelope, error) {
		return Envelope{}, fmt.Errorf("%w: %s", ErrBadEnvelope, fmt.Sprintf(format, args...))
	}
	e := Envelope{
		ID:         MailID(h),
		MailFrom:   h.Get(HeaderMailFrom),
		RcptTo:     h.Values(HeaderRcptTo),
		ClientAddr: h.Get(HeaderClientAddr),
		Helo:       h.Get(HeaderHelo),
		Protocol:   h.Get(HeaderProtocol),
	}
	if e.ID == "" {
		return bad("missing %s", HeaderMsgID)
	}
	if len(e.RcptTo) == 0 {
		return bad("missing %s", HeaderRcptTo)
	}
	for _, r := range e.RcptTo {
		if err := CheckAddress(r); err != nil {
			return bad("recipient %q: %v", r, err)
		}
	}
	if e.MailFrom != "" {
		if err := CheckAddress(e.MailFrom); err != nil {
			return bad("sender %q: %v", e.MailFrom, err)
		}
	}
	ra := h.Get(HeaderReceivedAt)
	if ra == "" {
		return bad("missing %s", HeaderReceivedAt)
	}
	t, err := time.Parse(time.RFC3339Nano, ra)
	if err != nil {
		return bad("%s: %v", HeaderReceivedAt, err)
	}
	e.ReceivedAt = t.UTC()
	c, ok, err := DecodeClaim(h)
	if err != nil {
		return Envelope{}, err
	}
	if ok {
		e.Claim = &c
	}
	return e, nil
}

// CheckAddress returns nil when s is an address an envelope may carry:
// local@domain (quoted local parts and UTF-8 allowed) or the special
// recipient "postmaster". It refuses line breaks, NUL, angle brackets and
// a missing domain.
func CheckAddress(s string) error {
	if strings.EqualFold(s, "postmaster") {
		return nil
	}
	if strings.ContainsAny(s, "<>\r\n\x00") {
		return errors.New("contains a forbidden character")
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return errors.New("not of the form local@domain")
	}
	return nil
}
