package contracts

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/trace"
)

// frozen reads a file of testdata/frozen (see its README.md): data as an
// earlier mailscope wrote it, never regenerated.
func frozen(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "frozen", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// frozenHeaders reads a frozen file of "Name: value" lines into headers,
// names kept as written (NATS headers are case-sensitive).
func frozenHeaders(t *testing.T, name string) nats.Header {
	t.Helper()
	h := nats.Header{}
	sc := bufio.NewScanner(bytes.NewReader(frozen(t, name)))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ": ")
		if !ok {
			t.Fatalf("%s: line %q is not a header", name, sc.Text())
		}
		h[k] = append(h[k], v)
	}
	return h
}

// decodeStrictly decodes data into v, failing on fields v does not
// have: a field an old producer wrote that today's schema dropped would
// be lost to every consumer.
func decodeStrictly(t *testing.T, name string, data []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s does not decode with today's schema: %v", name, err)
	}
}

// TestFrozenContracts decodes every frozen contract file with today's
// code and checks what it says: outcomes, worker status, envelope, claim
// and dead-letter headers, each in the form its version first had.
func TestFrozenContracts(t *testing.T) {
	at := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	t.Run("outcome v1, both forms", func(t *testing.T) {
		for _, name := range []string{"outcome.v1.first.json", "outcome.v1.json"} {
			var o Outcome
			decodeStrictly(t, name, frozen(t, name), &o)
			if o.Schema != OutcomeSchema || o.ID != "01JDXAMPLE" || o.Disposition != Processed || o.Handler != "publish" ||
				!o.ReceivedAt.Equal(at) || !o.ProcessedAt.Equal(at.Add(3*time.Millisecond)) || o.Attempt != 1 {
				t.Errorf("%s: %+v", name, o)
			}
			if len(o.Auth.DKIM) != 1 || o.Auth.DKIM[0].Result != ResultPass || o.Auth.DKIM[0].Domain != "example.com" || o.Auth.Trust != TrustWeak {
				t.Errorf("%s: auth %+v", name, o.Auth)
			}
			if len(o.Flags) != 2 || o.Flags[1].Rule == nil || o.Flags[1].Rule.Revision != 4 || o.Flags[1].Value != "publish" {
				t.Errorf("%s: flags %+v", name, o.Flags)
			}
			if o.Summary == nil || o.Summary.Subject != "hello" || len(o.Summary.Attachments) != 1 {
				t.Errorf("%s: summary %+v", name, o.Summary)
			}
			if o.Envelope.MailFrom != "alice@example.com" || len(o.Envelope.RcptTo) != 1 || o.TraceID != "" {
				t.Errorf("%s: envelope %+v trace %q", name, o.Envelope, o.TraceID)
			}
		}
	})
	t.Run("worker status v1, first form", func(t *testing.T) {
		var s WorkerStatus
		decodeStrictly(t, "status.v1.first.json", frozen(t, "status.v1.first.json"), &s)
		if s.Schema != StatusSchema || !s.Ready || s.Worker.Name != "worker-0" || s.Rules["mail.handler"] != 7 || !s.UpdatedAt.Equal(at.Add(30*time.Second)) {
			t.Errorf("status %+v", s)
		}
		// Written before refused keys had a cause: every one was a value
		// that did not parse.
		if len(s.Problems) != 1 || s.Problems[0].Flag != "mail.pause" || s.Problems[0].KeptRevision != 5 || s.Problems[0].Cause != "" || len(s.Unknown) != 0 {
			t.Errorf("problems %+v unknown %v", s.Problems, s.Unknown)
		}
	})
	t.Run("envelope v1 headers, with trace context", func(t *testing.T) {
		h := frozenHeaders(t, "envelope.v1.headers")
		e, err := DecodeEnvelope(h)
		if err != nil {
			t.Fatal(err)
		}
		if e.ID != "01JDXAMPLE" || e.MailFrom != "alice@example.com" || strings.Join(e.RcptTo, ",") != "bob@example.org,carol@example.org" ||
			!e.ReceivedAt.Equal(at) || e.Helo != "mx.example.com" || e.Protocol != "smtp" || e.Claim != nil {
			t.Errorf("envelope %+v", e)
		}
		sc := trace.SpanContextFromContext(ExtractTrace(context.Background(), h))
		if sc.TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" || !sc.IsRemote() || !sc.IsSampled() {
			t.Errorf("trace context %v", sc)
		}
	})
	t.Run("claim v1 headers", func(t *testing.T) {
		e, err := DecodeEnvelope(frozenHeaders(t, "claim.v1.headers"))
		if err != nil {
			t.Fatal(err)
		}
		if e.Claim == nil || e.Claim.Object != "claim.2f6ZJx3e1YqZ2CkbNvR9Lm" || e.Claim.Size != 30<<20 {
			t.Errorf("claim %+v", e.Claim)
		}
	})
	t.Run("dead-letter v1 headers", func(t *testing.T) {
		h := frozenHeaders(t, "deadletter.v1.headers")
		d, ok, err := DecodeDeadLetter(h)
		if err != nil || !ok {
			t.Fatalf("dead letter: ok %v, %v", ok, err)
		}
		if d.Class != "malformed" || d.Attempts != 1 || d.OriginalID != "01JDXAMPLE" || !strings.HasPrefix(d.Reason, "malformed mail: header:") {
			t.Errorf("dead letter %+v", d)
		}
		if e, err := DecodeEnvelope(h); err != nil || e.ID != "01JDXAMPLE" {
			t.Errorf("its envelope: %+v, %v", e, err)
		}
	})
}

// TestDeadLetterRoundTrip: what the worker encodes, DecodeDeadLetter
// reads; a message that is no dead letter is said so; a broken attempt
// count is an error.
func TestDeadLetterRoundTrip(t *testing.T) {
	d := DeadLetter{Reason: "attempt limit reached: dns: timeout", Class: "transient", Attempts: 5, OriginalID: "X"}
	h := nats.Header{}
	d.Encode(h)
	if got, ok, err := DecodeDeadLetter(h); err != nil || !ok || got != d {
		t.Errorf("round trip: %+v %v %v, want %+v", got, ok, err, d)
	}
	if _, ok, err := DecodeDeadLetter(nats.Header{HeaderMsgID: {"X"}}); ok || err != nil {
		t.Errorf("an input message read as a dead letter: %v %v", ok, err)
	}
	h.Set(HeaderAttempts, "five")
	if _, ok, err := DecodeDeadLetter(h); !ok || err == nil {
		t.Errorf("attempts %q: ok %v err %v, want an error", "five", ok, err)
	}
}
