package contracts

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
)

var update = flag.Bool("update", false, "rewrite golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./contracts -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s changed; if deliberate, run go test ./contracts -update\n got: %s\nwant: %s", name, got, want)
	}
}

func sampleOutcome() Outcome {
	hundred := 100
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	return Outcome{
		Schema:    OutcomeSchema,
		ID:        "01JDXAMPLE",
		MessageID: "abc@example.com",
		Envelope: Envelope{
			ID: "01JDXAMPLE", MailFrom: "alice@example.com", RcptTo: []string{"bob@example.org"},
			ReceivedAt: at, ClientAddr: "127.0.0.1:40000", Helo: "mx.example.com", Protocol: "smtp",
		},
		ReceivedAt:  at,
		ProcessedAt: at.Add(3 * time.Millisecond),
		Disposition: Processed,
		Handler:     "publish",
		Attempt:     1,
		Auth: Auth{
			DKIM: []DKIMResult{{Domain: "example.com", Selector: "s1", Algorithm: "rsa-sha256",
				Canonicalization: "relaxed/relaxed", Result: ResultPass}},
			Trust:                 TrustWeak,
			AuthenticationResults: "mailscope; dkim=pass header.d=example.com",
			DMARC: &DMARCPolicy{Domain: "example.com", Status: DMARCFound, RecordDomain: "example.com",
				Policy: "reject", SubdomainPolicy: "quarantine", EffectivePolicy: "reject", Percent: &hundred, DKIMAlignment: "r"},
		},
		Flags: []FlagDecision{
			{Flag: "mail.reject", Value: ""},
			{Flag: "mail.handler", Value: "publish", Rule: &RuleRef{Revision: 4, Line: 2, Scope: "default", Priority: 0}},
		},
		Summary: &Summary{
			From: []string{"alice@example.com"}, To: []string{"bob@example.org"}, Subject: "hello",
			MessageID: "abc@example.com", Size: 321,
			TextParts:   []TextPart{{ContentType: "text/plain", Text: "hi"}},
			Attachments: []Attachment{{Filename: "a.pdf", ContentType: "application/pdf", Size: 10}},
		},
		Worker:  WorkerInfo{Name: "worker-0", Version: "v0.1.0", Env: "dev"},
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736",
	}
}

func TestOutcomeGolden(t *testing.T) {
	b, err := json.MarshalIndent(sampleOutcome(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "outcome.v1.json", append(b, '\n'))

	var back Outcome
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	again, _ := json.MarshalIndent(back, "", "  ")
	if !bytes.Equal(b, again) {
		t.Errorf("outcome does not survive a JSON round trip")
	}
}

func TestEnvelopeRoundTrip(t *testing.T) {
	e := sampleOutcome().Envelope
	h := nats.Header{}
	e.Encode(h)
	var buf bytes.Buffer
	for _, k := range []string{HeaderMsgID, HeaderMailFrom, HeaderRcptTo, HeaderReceivedAt, HeaderClientAddr, HeaderHelo, HeaderProtocol} {
		for _, v := range h.Values(k) {
			buf.WriteString(k + ": " + v + "\n")
		}
	}
	golden(t, "envelope.headers", buf.Bytes())
	got, err := DecodeEnvelope(h)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != e.ID || got.MailFrom != e.MailFrom || len(got.RcptTo) != 1 || got.RcptTo[0] != e.RcptTo[0] ||
		!got.ReceivedAt.Equal(e.ReceivedAt) || got.ClientAddr != e.ClientAddr || got.Helo != e.Helo || got.Protocol != e.Protocol {
		t.Errorf("round trip: got %+v, want %+v", got, e)
	}
}

func TestDecodeEnvelopeErrors(t *testing.T) {
	good := func() nats.Header {
		h := nats.Header{}
		sampleOutcome().Envelope.Encode(h)
		return h
	}
	cases := map[string]func(h nats.Header){
		"no id":          func(h nats.Header) { h.Del(HeaderMsgID) },
		"no rcpt":        func(h nats.Header) { h.Del(HeaderRcptTo) },
		"bad rcpt":       func(h nats.Header) { h.Set(HeaderRcptTo, "<bob@example.org>") },
		"rcpt no domain": func(h nats.Header) { h.Set(HeaderRcptTo, "bob@") },
		"bad sender":     func(h nats.Header) { h.Set(HeaderMailFrom, "alice") },
		"no time":        func(h nats.Header) { h.Del(HeaderReceivedAt) },
		"bad time":       func(h nats.Header) { h.Set(HeaderReceivedAt, "yesterday") },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			h := good()
			mutate(h)
			if _, err := DecodeEnvelope(h); !errors.Is(err, ErrBadEnvelope) {
				t.Errorf("got %v, want ErrBadEnvelope", err)
			}
		})
	}
	h := good()
	h.Set(HeaderMailFrom, "")
	h.Set(HeaderRcptTo, "Postmaster")
	if _, err := DecodeEnvelope(h); err != nil {
		t.Errorf("null sender to postmaster: %v", err)
	}
}
