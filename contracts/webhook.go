package contracts

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"
)

// WebhookSchema is the version of the webhook request body. It changes
// when a field is removed or its meaning changes; added fields keep it.
const WebhookSchema = "mailscope.webhook.v1"

// Headers of a webhook request (docs/handlers.md, "Signing").
const (
	// HeaderWebhookID carries the mail's id: the same on every retry of
	// one mail, so a receiver uses it as its idempotency key.
	HeaderWebhookID = "Mailscope-Webhook-Id"
	// HeaderWebhookTimestamp carries the time of the request, in Unix
	// seconds (decimal); it is signed with the body.
	HeaderWebhookTimestamp = "Mailscope-Webhook-Timestamp"
	// HeaderWebhookSignature carries "v1=" and the lower-case hex
	// HMAC-SHA256 of timestamp + "." + body under the endpoint's secret.
	HeaderWebhookSignature = "Mailscope-Webhook-Signature"
)

// WebhookRequest is the JSON body the webhook handler POSTs to an
// endpoint for one mail.
type WebhookRequest struct {
	// Schema is always WebhookSchema.
	Schema string `json:"schema"`
	// ID is the mail's id (as in the outcome and HeaderWebhookID).
	ID string `json:"id"`
	// Endpoint is the name of the endpoint, as the rule chose it.
	Endpoint string `json:"endpoint"`
	// MessageID is the Message-ID without angle brackets; "" if none.
	MessageID string `json:"message_id"`
	// Envelope is the SMTP envelope.
	Envelope Envelope `json:"envelope"`
	// ReceivedAt is when the producer received the mail.
	ReceivedAt time.Time `json:"received_at"`
	// Attempt is the delivery attempt sending this request, from 1.
	Attempt int `json:"attempt"`
	// Auth holds the authentication results, as in the outcome.
	Auth Auth `json:"auth"`
	// Flags lists every flag consulted for this mail, as in the outcome.
	Flags []FlagDecision `json:"flags"`
	// MailContent is the parsed mail (its fields are the request's own
	// in JSON): headers, summary and attachments, inline while they fit
	// the endpoint's attachment limit.
	MailContent
	// Worker says who sent the request.
	Worker WorkerInfo `json:"worker"`
	// TraceID is the mail's W3C trace id, as in the outcome; "" without one.
	TraceID string `json:"trace_id,omitempty"`
}

// MailContent is a mail as a handler with side effects sends it to a
// receiver (the webhook's endpoints, the external services): the same
// fields, described once, in every such request.
type MailContent struct {
	// Headers are the mail's header fields in order, values unfolded but
	// not decoded, at most WebhookMaxHeaders of them, each value cut at
	// WebhookMaxHeaderValue bytes (HeadersTruncated says so).
	Headers []HeaderField `json:"headers"`
	// HeadersTruncated is true when Headers left fields out or cut a value.
	HeadersTruncated bool `json:"headers_truncated,omitempty"`
	// Summary is the parsed mail: addresses, subject, text parts (each cut
	// at the worker's text limit, 64 KiB by default) and every non-text
	// part described.
	Summary *Summary `json:"summary"`
	// Attachments are the non-text parts with their content: inline
	// (base64) while they fit the receiver's attachment limit, otherwise
	// described only (Content empty, Omitted says why).
	Attachments []WebhookAttachment `json:"attachments"`
}

// Bounds of MailContent.Headers.
const (
	// WebhookMaxHeaders is the most header fields a request carries.
	WebhookMaxHeaders = 256
	// WebhookMaxHeaderValue is the longest header value carried, in bytes.
	WebhookMaxHeaderValue = 4096
)

// HeaderField is one header field of a mail.
type HeaderField struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// WebhookAttachment is one non-text part of a mail.
type WebhookAttachment struct {
	Filename    string `json:"filename"`
	ContentType string `json:"content_type"`
	// Size is the decoded size in bytes.
	Size int `json:"size"`
	// Content is the decoded content, base64 in JSON; absent when the
	// part was not sent (Omitted says why).
	Content []byte `json:"content,omitempty"`
	// Omitted says why Content is absent, e.g. that the part is larger
	// than the endpoint's attachment limit. mailscope keeps no copy a
	// receiver could fetch: an omitted part is described, never sent.
	Omitted string `json:"omitted,omitempty"`
}

// WebhookSignature returns the value of HeaderWebhookSignature for body
// sent at timestamp (Unix seconds, as in HeaderWebhookTimestamp):
// "v1=" and the hex HMAC-SHA256 of timestamp + "." + body under secret.
func WebhookSignature(secret []byte, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(timestamp))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1=" + hex.EncodeToString(mac.Sum(nil))
}

// Errors of VerifyWebhook.
var (
	// ErrWebhookSignature: no v1 signature of the header matches.
	ErrWebhookSignature = errors.New("webhook signature does not match")
	// ErrWebhookTimestamp: the timestamp is not a number or lies outside
	// the replay window.
	ErrWebhookTimestamp = errors.New("webhook timestamp missing or outside the replay window")
)

// VerifyWebhook checks a webhook request as a receiver should: the
// timestamp lies within window of now (docs/handlers.md recommends 5
// minutes), and one of the comma-separated "v1=" values of signature
// equals the HMAC of timestamp + "." + body under secret (compared in
// constant time). A receiver still deduplicates by HeaderWebhookID: a
// retry is the same mail again, with a fresh timestamp and signature.
func VerifyWebhook(secret []byte, timestamp, signature string, body []byte, now time.Time, window time.Duration) error {
	sec, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return ErrWebhookTimestamp
	}
	if d := now.Sub(time.Unix(sec, 0)); d > window || d < -window {
		return ErrWebhookTimestamp
	}
	want := WebhookSignature(secret, timestamp, body)
	for _, s := range strings.Split(signature, ",") {
		if hmac.Equal([]byte(strings.TrimSpace(s)), []byte(want)) {
			return nil
		}
	}
	return ErrWebhookSignature
}
