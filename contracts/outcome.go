package contracts

import "time"

// OutcomeSchema is the version of the outcome event format. It changes
// when a field is removed or its meaning changes; added fields keep it.
const OutcomeSchema = "mailscope.outcome.v1"

// Disposition is what became of a mail.
type Disposition string

// Dispositions. Each is also the last token of the outcome subject.
const (
	// Processed: a handler took the mail.
	Processed Disposition = "processed"
	// Quarantined: the quarantine handler took the mail for review.
	Quarantined Disposition = "quarantined"
	// Discarded: the discard handler dropped the mail on purpose.
	Discarded Disposition = "discarded"
	// Rejected: a rule or a handler refused the mail for good.
	Rejected Disposition = "rejected"
	// Dead: the mail could not be processed and was dead-lettered.
	Dead Disposition = "dead"
)

// DKIM results in RFC 8601 words.
const (
	ResultPass      = "pass"
	ResultFail      = "fail"
	ResultNeutral   = "neutral"
	ResultPolicy    = "policy"
	ResultTempError = "temperror"
	ResultPermError = "permerror"
	ResultNone      = "none"
)

// Trust levels. See DESIGN.md, "Authentication".
const (
	TrustStrong = "strong"
	TrustWeak   = "weak"
	TrustNone   = "none"
)

// Outcome is the event a worker publishes for every mail, exactly once
// per mail id (it carries the input's id as Nats-Msg-Id), on the subject
// Names.OutcomeSubject(Disposition).
type Outcome struct {
	// Schema is always OutcomeSchema.
	Schema string `json:"schema"`
	// ID is the mail's id, the input's Nats-Msg-Id.
	ID string `json:"id"`
	// MessageID is the mail's Message-ID header without angle brackets;
	// empty if it has none (or could not be parsed).
	MessageID string `json:"message_id"`
	// Envelope is the SMTP envelope.
	Envelope Envelope `json:"envelope"`
	// ReceivedAt is when the producer received the mail.
	ReceivedAt time.Time `json:"received_at"`
	// ProcessedAt is when the worker decided the outcome.
	ProcessedAt time.Time `json:"processed_at"`
	// Disposition is what became of the mail.
	Disposition Disposition `json:"disposition"`
	// Handler is the handler that took the mail (the value of the flag
	// mail.handler); empty when none ran.
	Handler string `json:"handler"`
	// Reason explains a rejected or dead mail; empty otherwise.
	Reason string `json:"reason,omitempty"`
	// DryRun is true when the flag mail.dry_run was on: the handler
	// decided but performed no side effect.
	DryRun bool `json:"dry_run,omitempty"`
	// Attempt is the delivery attempt that produced this outcome, from 1.
	Attempt int `json:"attempt"`
	// Auth holds the authentication results.
	Auth Auth `json:"auth"`
	// Flags lists every flag consulted for this mail, in the order
	// consulted, with its value and the rule that decided it.
	Flags []FlagDecision `json:"flags"`
	// Summary is the parsed mail, set by handlers that publish it.
	Summary *Summary `json:"summary,omitempty"`
	// Worker says who processed the mail.
	Worker WorkerInfo `json:"worker"`
}

// Auth holds the authentication results of one mail.
type Auth struct {
	// DKIM has one entry per DKIM-Signature verified, in header order; a
	// single entry with result "none" for unsigned mail.
	DKIM []DKIMResult `json:"dkim"`
	// Skipped is non-empty when verification did not run, and says why
	// (for example when the flag mail.dkim.verify is off).
	Skipped string `json:"skipped,omitempty"`
	// Note is set when the signatures were capped: more DKIM-Signature
	// fields than the worker verifies per mail (default 5).
	Note string `json:"note,omitempty"`
	// Trust is the trust level: "strong", "weak" or "none".
	Trust string `json:"trust"`
	// AuthenticationResults is the value of the Authentication-Results
	// header (RFC 8601) describing these results.
	AuthenticationResults string `json:"authentication_results"`
}

// DKIMResult is the result of verifying one DKIM signature.
type DKIMResult struct {
	// Domain is the signing domain, tag d=.
	Domain string `json:"domain,omitempty"`
	// Selector is tag s=.
	Selector string `json:"selector,omitempty"`
	// Algorithm is tag a=, for example "rsa-sha256".
	Algorithm string `json:"algorithm,omitempty"`
	// Result is an RFC 8601 result word: pass, fail, neutral, policy,
	// temperror, permerror, or none (unsigned mail).
	Result string `json:"result"`
	// Reason explains any result but pass and none.
	Reason string `json:"reason,omitempty"`
}

// FlagDecision records the value of one consulted flag for one mail.
type FlagDecision struct {
	// Flag is the flag name, e.g. "mail.handler".
	Flag string `json:"flag"`
	// Value is the flag's value for this mail, as text.
	Value string `json:"value"`
	// Rule is the rule that decided the value; nil when no rule matched
	// and the flag's registered default applied.
	Rule *RuleRef `json:"rule,omitempty"`
}

// RuleRef names the rule line that decided a flag.
type RuleRef struct {
	// Revision is the KV revision of the flag's key.
	Revision uint64 `json:"revision"`
	// Line is the 1-based line number within the key's value.
	Line int `json:"line"`
	// Scope is the rule's scope text.
	Scope string `json:"scope"`
	// Priority is the rule's priority.
	Priority int `json:"priority"`
}

// Summary is a parsed view of a mail.
type Summary struct {
	From        []string     `json:"from"`
	To          []string     `json:"to"`
	Cc          []string     `json:"cc,omitempty"`
	Subject     string       `json:"subject"`
	Date        string       `json:"date,omitempty"`
	MessageID   string       `json:"message_id"`
	TextParts   []TextPart   `json:"text_parts"`
	Attachments []Attachment `json:"attachments"`
	// Size is the raw mail's size in bytes.
	Size int `json:"size"`
	// ParseError is set when the body could not be fully parsed; the
	// parts read until then are kept.
	ParseError string `json:"parse_error,omitempty"`
}

// TextPart is a text/* part of a mail, decoded to UTF-8.
type TextPart struct {
	ContentType string `json:"content_type"`
	Text        string `json:"text"`
	// Truncated is true when Text was cut at the handler's size limit.
	Truncated bool `json:"truncated,omitempty"`
}

// Attachment describes an attachment (or any non-text part).
type Attachment struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	// Size is the decoded size in bytes.
	Size int `json:"size"`
}

// WorkerInfo says which worker processed a mail.
type WorkerInfo struct {
	// Name is the worker's name (its host or pod name by default).
	Name string `json:"name"`
	// Version is the worker's release version.
	Version string `json:"version"`
	// Env is the worker's configured environment, e.g. "staging".
	Env string `json:"env,omitempty"`
}
