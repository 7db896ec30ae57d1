package contracts

import (
	"strconv"
	"time"
)

// Schemas of the commands handler's events (docs/handlers.md, "The
// commands handler"). Each changes when a field is removed or its
// meaning changes; added fields keep it, so consumers ignore unknown
// fields.
const (
	// CommandSchema is the version of a command event.
	CommandSchema = "mailscope.command.v1"
	// ReplySchema is the version of a reply event.
	ReplySchema = "mailscope.reply.v1"
)

// Command is one command of an email-command mail, published on
// Names.CommandSubject(Command) with Nats-Msg-Id CommandMsgID(ID,
// Position), so that a mail processed again stores each of its commands
// once. A mail's commands are published only when every one of its
// command lines parsed and the mail is strongly authenticated: a
// consumer never sees part of a mail's commands because another line was
// bad.
type Command struct {
	// Schema is always CommandSchema.
	Schema string `json:"schema"`
	// ID is the mail's id, as in its outcome.
	ID string `json:"id"`
	// MessageID is the mail's Message-ID without angle brackets; "" if none.
	MessageID string `json:"message_id"`
	// Target is what the commands act on: the local part of the mail's
	// first envelope recipient (1234 for 1234@bugs.example.org).
	Target string `json:"target"`
	// Recipient is that recipient, whole.
	Recipient string `json:"recipient"`
	// Command is the command's name, lower case; the last token of the
	// subject.
	Command string `json:"command"`
	// Args are the command's arguments as written, quotes removed; an
	// empty list for none.
	Args []string `json:"args"`
	// Position is the command's place among the mail's commands, from 1.
	Position int `json:"position"`
	// Count is how many commands the mail has.
	Count int `json:"count"`
	// Line is the command's line number in the mail's first text/plain
	// part, from 1.
	Line int `json:"line"`
	// Sender is the mail's From address, lower case; the identity the
	// trust level vouches for.
	Sender string `json:"sender"`
	// MailFrom is the envelope sender (return path); "" for the null
	// sender.
	MailFrom string `json:"mail_from"`
	// Trust is the mail's trust level: always "strong".
	Trust string `json:"trust"`
	// ReceivedAt is when the producer received the mail.
	ReceivedAt time.Time `json:"received_at"`
	// Worker says who published the event.
	Worker WorkerInfo `json:"worker"`
	// TraceID is the mail's W3C trace id, as in the outcome; "" without one.
	TraceID string `json:"trace_id,omitempty"`
}

// CommandMsgID is the Nats-Msg-Id of the command at position (from 1)
// of mail id: "<id>.<position>".
func CommandMsgID(id string, position int) string {
	return id + "." + strconv.Itoa(position)
}

// ReplyMsgID is the Nats-Msg-Id of the reply to mail id: "<id>.reply".
func ReplyMsgID(id string) string { return id + ".reply" }

// Reply is what an outbound mailer needs to answer an email-command mail
// that was refused: to whom, about which mail, what failed and why, and
// the original. It is published on Names.ReplySubject with Nats-Msg-Id
// ReplyMsgID(ID). mailscope sends no mail itself.
type Reply struct {
	// Schema is always ReplySchema.
	Schema string `json:"schema"`
	// ID is the mail's id, as in its outcome.
	ID string `json:"id"`
	// To is the address to send the reply to: the mail's envelope sender
	// (return path), never "" (a mail with the null sender gets no reply).
	To string `json:"to"`
	// From is the mail's From address, lower case, for the reply's text.
	From string `json:"from"`
	// InReplyTo is the mail's Message-ID without angle brackets, for the
	// reply's In-Reply-To and References; "" if the mail has none.
	InReplyTo string `json:"in_reply_to"`
	// Subject is the mail's subject, decoded, for a "Re: " subject.
	Subject string `json:"subject"`
	// Target is the local part of the first envelope recipient, as in
	// Command.Target, even when it is not a valid target.
	Target string `json:"target"`
	// Trust is the mail's trust level.
	Trust string `json:"trust"`
	// Reason says in one line why no command was carried out.
	Reason string `json:"reason"`
	// Failures are the command lines that failed, in order; empty when
	// the failure concerns the whole mail (its trust, its target, no
	// commands). At most ReplyMaxFailures.
	Failures []LineFailure `json:"failures"`
	// FailuresTruncated is true when more lines failed than Failures holds.
	FailuresTruncated bool `json:"failures_truncated,omitempty"`
	// OriginalSize is the raw mail's size in bytes.
	OriginalSize int `json:"original_size"`
	// Original is the raw mail, base64 in JSON, when it fits the worker's
	// original limit (64 KiB by default). When it does not, Truncated is
	// set and Original holds only the mail's header section (cut at the
	// last whole line within the limit): attach it as
	// text/rfc822-headers, not as message/rfc822. Absent when the limit
	// is none.
	Original []byte `json:"original,omitempty"`
	// Truncated is true when Original is not the whole mail.
	Truncated bool `json:"truncated,omitempty"`
	// ReceivedAt is when the producer received the mail.
	ReceivedAt time.Time `json:"received_at"`
	// Worker says who published the event.
	Worker WorkerInfo `json:"worker"`
	// TraceID is the mail's W3C trace id, as in the outcome; "" without one.
	TraceID string `json:"trace_id,omitempty"`
}

// ReplyMaxFailures bounds Reply.Failures; LineMax bounds
// LineFailure.Text (in bytes).
const (
	ReplyMaxFailures = 100
	LineMax          = 256
)

// LineFailure is one command line that failed.
type LineFailure struct {
	// Line is the line number in the mail's first text/plain part, from 1.
	Line int `json:"line"`
	// Text is the line as written, cut at LineMax bytes.
	Text string `json:"text"`
	// Error says what is wrong with it.
	Error string `json:"error"`
}
