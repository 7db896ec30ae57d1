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

// Trust levels. See docs/architecture.md, "Authentication".
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
	// Reason explains a rejected or dead mail, or says what a handler
	// with an effect did (the webhook: the endpoint delivered to; the
	// commands handler: the command events published, or why none was
	// and whether a reply was; under dry run what it would have done);
	// empty otherwise.
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
	// Shadow is the decision of the shadow handler (the flag
	// mail.shadow_handler), run in dry run beside Handler on the same
	// mail; nil when none ran. It never changes Disposition. Added in
	// outcome schema v1 without a version change: old consumers ignore it.
	Shadow *Shadow `json:"shadow,omitempty"`
	// Note says what was left out of this event to keep it within the
	// server's max_payload; empty normally.
	Note string `json:"note,omitempty"`
	// Worker says who processed the mail.
	Worker WorkerInfo `json:"worker"`
	// TraceID is the W3C trace id (32 lower-case hex digits) of the trace
	// the producer started for the mail and the worker continued: the key
	// to look the mail's spans up in the tracing backend, and to find its
	// log lines (their trace_id). Empty for mail published without trace
	// context. Added in outcome schema v1 without a version change: old
	// consumers ignore it.
	TraceID string `json:"trace_id,omitempty"`
}

// Shadow is what a shadow handler decided about a mail, in dry run.
type Shadow struct {
	// Handler is the shadow handler's name.
	Handler string `json:"handler"`
	// Disposition is what the shadow handler would have made of the
	// mail; empty when it failed (then Error says why).
	Disposition Disposition `json:"disposition,omitempty"`
	// Reason is the shadow handler's reason (a rejection, or what it
	// would have done).
	Reason string `json:"reason,omitempty"`
	// Error is the shadow handler's failure (a transient error, a panic,
	// a configuration it lacks); the live decision stands regardless.
	Error string `json:"error,omitempty"`
	// Differs is true when the shadow decision is not the live one: a
	// different disposition, or a failure.
	Differs bool `json:"differs"`
}

// Auth holds the authentication results of one mail.
type Auth struct {
	// DKIM has one entry per DKIM-Signature verified, in header order; a
	// single entry with result "none" for unsigned mail.
	DKIM []DKIMResult `json:"dkim"`
	// Skipped is non-empty when verification did not run, and says why
	// (for example when the flag mail.dkim.verify is off).
	Skipped string `json:"skipped,omitempty"`
	// Note is set when the signatures were capped (more DKIM-Signature
	// fields than the worker verifies per mail, default 5), and when the
	// mail was decided with a DKIM temperror after waiting held for DNS
	// for the workers' DNSHoldMax (default 1 hour); notes are joined by
	// "; ".
	Note string `json:"note,omitempty"`
	// Trust is the trust level: "strong", "weak" or "none".
	Trust string `json:"trust"`
	// AuthenticationResults is the value of the Authentication-Results
	// header (RFC 8601) describing these results.
	AuthenticationResults string `json:"authentication_results"`
	// DMARC is the DMARC policy the From domain publishes, as found when
	// the mail was verified; nil when verification was skipped or the
	// mail has no From domain. It is recorded, not enforced.
	DMARC *DMARCPolicy `json:"dmarc,omitempty"`
}

// DMARC lookup statuses, in DMARCPolicy.Status.
const (
	// DMARCFound: a DMARC record was found and parsed.
	DMARCFound = "found"
	// DMARCNone: neither the From domain nor its organizational domain
	// publishes a DMARC record.
	DMARCNone = "none"
	// DMARCTempError: the record could not be fetched now (DNS timeout,
	// SERVFAIL). The mail is not held back for it.
	DMARCTempError = "temperror"
	// DMARCPermError: a record exists but does not parse.
	DMARCPermError = "permerror"
)

// DMARCPolicy is the DMARC policy (RFC 7489) of a mail's From domain.
type DMARCPolicy struct {
	// Domain is the From domain the policy was looked up for.
	Domain string `json:"domain"`
	// Status is "found", "none", "temperror" or "permerror".
	Status string `json:"status"`
	// RecordDomain is the domain whose _dmarc record was found: Domain,
	// or its organizational domain when Domain has none (RFC 7489
	// 6.6.3). Set when Status is "found".
	RecordDomain string `json:"record_domain,omitempty"`
	// Policy is tag p=: "none", "quarantine" or "reject".
	Policy string `json:"policy,omitempty"`
	// SubdomainPolicy is tag sp=; empty when the record has none.
	SubdomainPolicy string `json:"subdomain_policy,omitempty"`
	// EffectivePolicy is the policy that applies to Domain: Policy when
	// the record is Domain's own, else SubdomainPolicy, or Policy when
	// the record has no sp=.
	EffectivePolicy string `json:"effective_policy,omitempty"`
	// Percent is tag pct=, 100 when the record has none; nil unless
	// Status is "found".
	Percent *int `json:"percent,omitempty"`
	// DKIMAlignment is tag adkim=: "r" (relaxed, the default) or "s".
	DKIMAlignment string `json:"dkim_alignment,omitempty"`
	// Reason explains "temperror" and "permerror".
	Reason string `json:"reason,omitempty"`
}

// DKIMResult is the result of verifying one DKIM signature.
type DKIMResult struct {
	// Domain is the signing domain, tag d=.
	Domain string `json:"domain,omitempty"`
	// Selector is tag s=.
	Selector string `json:"selector,omitempty"`
	// Algorithm is tag a=, for example "rsa-sha256".
	Algorithm string `json:"algorithm,omitempty"`
	// Canonicalization is tag c= as header/body, for example
	// "relaxed/relaxed"; "simple/simple" when the signature has no c=
	// (the RFC 6376 default), and "relaxed/simple" for a bare "relaxed".
	Canonicalization string `json:"canonicalization,omitempty"`
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
	// Truncated says what was left out to keep the summary bounded (MIME
	// nesting, number of parts, total text, outcome size); empty when
	// nothing was.
	Truncated string `json:"truncated,omitempty"`
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
