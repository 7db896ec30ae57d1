package contracts

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

func sampleServiceRequest() ServiceRequest {
	o := sampleOutcome()
	return ServiceRequest{
		Schema:     ServiceSchema,
		ID:         o.ID,
		Service:    "tickets",
		DryRun:     false,
		Deadline:   o.ReceivedAt.Add(10 * time.Second),
		MessageID:  o.MessageID,
		Envelope:   o.Envelope,
		ReceivedAt: o.ReceivedAt,
		Attempt:    1,
		Auth:       o.Auth,
		Flags: append(o.Flags, FlagDecision{Flag: "mail.service", Value: "tickets",
			Rule: &RuleRef{Revision: 9, Line: 1, Scope: "default", Priority: 0}}),
		MailContent: sampleMailContent(o),
		Worker:      o.Worker,
		TraceID:     o.TraceID,
	}
}

func TestServiceGolden(t *testing.T) {
	b, err := json.MarshalIndent(sampleServiceRequest(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "service.v1.json", append(b, '\n'))
	replies, err := json.MarshalIndent([]ServiceReply{
		{Schema: ServiceReplySchema, Decision: ServiceAccept, Reason: "ticket 4711 opened"},
		{Decision: ServiceAccept, Disposition: Quarantined, Reason: "looks like spam"},
		{Decision: ServiceReject, Reason: "no such ticket queue"},
		{Decision: ServiceRetry, RetryAfter: 30, Reason: "ticket system in maintenance"},
	}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "service.reply.v1.json", append(replies, '\n'))
}

// TestFrozenService decodes the service request and replies as their
// version first had them, strictly, and checks what they say.
func TestFrozenService(t *testing.T) {
	var r ServiceRequest
	decodeStrictly(t, "service.v1.first.json", frozen(t, "service.v1.first.json"), &r)
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	if r.Schema != ServiceSchema || r.ID != "01JDXAMPLE" || r.Service != "tickets" || r.DryRun || r.Attempt != 1 || !r.Deadline.Equal(at.Add(10*time.Second)) {
		t.Errorf("schema %q id %q service %q dry run %v attempt %d deadline %v", r.Schema, r.ID, r.Service, r.DryRun, r.Attempt, r.Deadline)
	}
	if len(r.Attachments) != 2 || string(r.Attachments[0].Content) != "%PDF-1.7\n\x00" || r.Attachments[1].Content != nil || r.Attachments[1].Omitted == "" {
		t.Errorf("attachments %+v", r.Attachments)
	}
	if len(r.Headers) != 2 || r.Summary == nil || r.Summary.Subject != "hello" || r.Auth.Trust != TrustWeak || len(r.Flags) != 3 || r.Flags[2].Value != "tickets" {
		t.Errorf("headers %+v summary %+v auth %+v flags %+v", r.Headers, r.Summary, r.Auth, r.Flags)
	}
	var replies []json.RawMessage
	if err := json.Unmarshal(frozen(t, "service.reply.v1.first.json"), &replies); err != nil {
		t.Fatal(err)
	}
	var got []ServiceReply
	for i, raw := range replies {
		var strict ServiceReply
		decodeStrictly(t, "service.reply.v1.first.json", raw, &strict)
		p, err := ParseServiceReply(raw)
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		got = append(got, p)
	}
	if len(got) != 4 || got[0].Decision != ServiceAccept || got[1].Disposition != Quarantined || got[2].Decision != ServiceReject ||
		got[2].Reason != "no such ticket queue" || got[3].Decision != ServiceRetry || got[3].Delay() != 30*time.Second {
		t.Errorf("replies %+v", got)
	}
}

// TestParseServiceReply: what a service may answer, and every way a
// reply can break the contract, each said.
func TestParseServiceReply(t *testing.T) {
	for _, c := range []struct {
		reply string
		want  ServiceReply
	}{
		{`{"decision":"accept"}`, ServiceReply{Decision: ServiceAccept}},
		{`{"decision":"accept","disposition":"discarded","reason":"duplicate","extra":{"ignored":true}}`, ServiceReply{Decision: ServiceAccept, Disposition: Discarded, Reason: "duplicate"}},
		{`{"schema":"mailscope.service.reply.v1","decision":"reject","reason":"no"}`, ServiceReply{Schema: ServiceReplySchema, Decision: ServiceReject, Reason: "no"}},
		{`{"decision":"retry","retry_after":0.5}`, ServiceReply{Decision: ServiceRetry, RetryAfter: 0.5}},
	} {
		got, err := ParseServiceReply([]byte(c.reply))
		if err != nil || got != c.want {
			t.Errorf("%s: %+v, %v; want %+v", c.reply, got, err, c.want)
		}
	}
	if d := (ServiceReply{Decision: ServiceRetry, RetryAfter: 1e12}).Delay(); d != 24*time.Hour {
		t.Errorf("a huge retry_after: %v, want a day", d)
	}
	long, err := ParseServiceReply([]byte(`{"decision":"reject","reason":"` + strings.Repeat("é", ServiceMaxReason) + `"}`))
	if err != nil || len(long.Reason) > ServiceMaxReason || !strings.HasPrefix(long.Reason, "éé") || !strings.HasSuffix(long.Reason, "é") {
		t.Errorf("a long reason: %d bytes, %v", len(long.Reason), err)
	}
	for reply, want := range map[string]string{
		`accept`:               "not a JSON object",
		`{"decision":"maybe"}`: `decision "maybe", want accept, reject or retry`,
		`{}`:                   `decision "", want`,
		`{"schema":"mailscope.service.reply.v2","decision":"accept"}`: `schema "mailscope.service.reply.v2"`,
		`{"decision":"retry","retry_after":-1}`:                       "retry_after -1, want seconds, not negative",
		`{"decision":"retry","retry_after":"soon"}`:                   "not a JSON object",
		`{"decision":"accept","retry_after":3}`:                       "retry_after with decision accept",
		`{"decision":"reject","disposition":"quarantined"}`:           "disposition with decision reject",
		`{"decision":"accept","disposition":"dead"}`:                  `disposition "dead", want processed, quarantined or discarded`,
	} {
		_, err := ParseServiceReply([]byte(reply))
		if !errors.Is(err, ErrServiceReply) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want ErrServiceReply saying %q", reply, err, want)
		}
	}
}
