package contracts

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"
)

func sampleWebhook() WebhookRequest {
	o := sampleOutcome()
	return WebhookRequest{
		Schema:     WebhookSchema,
		ID:         o.ID,
		Endpoint:   "tickets",
		MessageID:  o.MessageID,
		Envelope:   o.Envelope,
		ReceivedAt: o.ReceivedAt,
		Attempt:    1,
		Auth:       o.Auth,
		Flags: append(o.Flags, FlagDecision{Flag: "mail.webhook.endpoint", Value: "tickets",
			Rule: &RuleRef{Revision: 7, Line: 1, Scope: "default", Priority: 0}}),
		MailContent: sampleMailContent(o),
		Worker:      o.Worker,
		TraceID:     o.TraceID,
	}
}

func sampleMailContent(o Outcome) MailContent {
	return MailContent{
		Headers: []HeaderField{{Name: "From", Value: "Alice <alice@example.com>"}, {Name: "Subject", Value: "hello"}},
		Summary: o.Summary,
		Attachments: []WebhookAttachment{
			{Filename: "a.pdf", ContentType: "application/pdf", Size: 10, Content: []byte("%PDF-1.7\n\x00")},
			{Filename: "big.zip", ContentType: "application/zip", Size: 5 << 20, Omitted: "larger than the attachment limit (1048576 bytes left of 1048576)"},
		},
	}
}

func TestWebhookGolden(t *testing.T) {
	b, err := json.MarshalIndent(sampleWebhook(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "webhook.v1.json", append(b, '\n'))
}

// TestFrozenWebhook decodes the webhook request as its version first had
// it, strictly, and checks what it says.
func TestFrozenWebhook(t *testing.T) {
	var r WebhookRequest
	decodeStrictly(t, "webhook.v1.first.json", frozen(t, "webhook.v1.first.json"), &r)
	if r.Schema != WebhookSchema || r.ID != "01JDXAMPLE" || r.Endpoint != "tickets" || r.Attempt != 1 {
		t.Errorf("schema %q id %q endpoint %q attempt %d", r.Schema, r.ID, r.Endpoint, r.Attempt)
	}
	if len(r.Attachments) != 2 || string(r.Attachments[0].Content) != "%PDF-1.7\n\x00" || r.Attachments[1].Content != nil || r.Attachments[1].Omitted == "" {
		t.Errorf("attachments %+v", r.Attachments)
	}
	if len(r.Headers) != 2 || r.Headers[1] != (HeaderField{"Subject", "hello"}) {
		t.Errorf("headers %+v", r.Headers)
	}
	if r.Summary == nil || r.Summary.Subject != "hello" || r.Auth.Trust != TrustWeak || len(r.Flags) != 3 || r.Flags[2].Rule.Revision != 7 {
		t.Errorf("summary %+v auth %+v flags %+v", r.Summary, r.Auth, r.Flags)
	}
}

func TestVerifyWebhook(t *testing.T) {
	secret, body := []byte("s3cret"), []byte(`{"schema":"mailscope.webhook.v1"}`)
	now := time.Unix(1_800_000_000, 0)
	ts := "1800000000"
	sig := WebhookSignature(secret, ts, body)
	// Known answer: printf '%s' '1800000000.{"schema":"mailscope.webhook.v1"}' | openssl dgst -sha256 -hmac s3cret
	if want := "v1=00944978cfb9a4a0a2598e6d06fa55ced42e35187a6a324a90fbccfe41366cbf"; sig != want {
		t.Errorf("signature %q, want %q (openssl's)", sig, want)
	}
	for _, c := range []struct {
		name    string
		secret  []byte
		ts, sig string
		body    []byte
		now     time.Time
		want    error
	}{
		{"good", secret, ts, sig, body, now, nil},
		{"one of several", secret, ts, "v1=00, " + sig, body, now, nil},
		{"other secret", []byte("other"), ts, sig, body, now, ErrWebhookSignature},
		{"body changed", secret, ts, sig, append([]byte(" "), body...), now, ErrWebhookSignature},
		{"timestamp changed", secret, "1800000001", sig, body, now.Add(time.Second), ErrWebhookSignature},
		{"replayed late", secret, ts, sig, body, now.Add(6 * time.Minute), ErrWebhookTimestamp},
		{"from the future", secret, ts, sig, body, now.Add(-6 * time.Minute), ErrWebhookTimestamp},
		{"no timestamp", secret, "", sig, body, now, ErrWebhookTimestamp},
		{"no signature", secret, ts, "", body, now, ErrWebhookSignature},
	} {
		if err := VerifyWebhook(c.secret, c.ts, c.sig, c.body, c.now, 5*time.Minute); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

// A receiver verifies a request before it trusts the body: the
// timestamp within its replay window, then the signature.
func ExampleVerifyWebhook() {
	secret := []byte("the endpoint's secret")
	body := []byte(`{"schema":"mailscope.webhook.v1","id":"01JDXAMPLE"}`)
	// What a worker sends (the headers of the request):
	ts := "1800000000"
	sig := WebhookSignature(secret, ts, body)

	// What the receiver does with them:
	now := time.Unix(1800000042, 0) // time.Now() in a receiver
	err := VerifyWebhook(secret, ts, sig, body, now, 5*time.Minute)
	fmt.Println("genuine:", err == nil)
	err = VerifyWebhook(secret, ts, sig, []byte(`{"forged":true}`), now, 5*time.Minute)
	fmt.Println("forged:", err)
	// Output:
	// genuine: true
	// forged: webhook signature does not match
}
