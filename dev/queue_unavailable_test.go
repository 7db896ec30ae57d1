package dev_test

import (
	"errors"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/dev"
	"github.com/mailscope/mailscope/producer"
	"github.com/mailscope/mailscope/provision"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/systest"
)

// want451 fails unless err is the producer's 451 4.3.0: not stored, the
// MTA keeps the mail and retries.
func want451(t *testing.T, what string, err error) {
	t.Helper()
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 451 || se.EnhancedCode != (smtp.EnhancedCode{4, 3, 0}) {
		t.Errorf("%s: got %v, want 451 4.3.0", what, err)
	}
}

// TestMailRefusedWhileNATSIsDown: while the nats-server is down, the
// producer answers 451 4.3.0 to mail stored inline and to mail above the
// claim threshold alike (its claim bucket cannot even be looked up), once
// PublishTimeout is spent, and the transaction's span records the 451 as
// its error type. When the server is back, the MTA's retries of both are
// stored and processed by the rules in force. A claimed mail sent twice
// (a resend after a lost 250) is stored once: one outcome, and the
// second copy's object is dropped at once, so that the bucket is empty
// once the mail is processed.
func TestMailRefusedWhileNATSIsDown(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := trace.NewTracerProvider(trace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(t.Context()) })
	const threshold = 4 << 10
	b := setupDev(t, dev.Config{Producer: producer.Config{PublishTimeout: 300 * time.Millisecond,
		ClaimThreshold: threshold, TracerProvider: tp}})
	b.putRules(t, rules.FlagHandler, "rcpt:^(inline|claimed|twice)@ 10 quarantine\n")
	inline := mail(t, "inline@example.org", "while NATS is down", b.rsaKey, "example.com", "s1")
	claimed := sizedMail(t, "claimed@example.org", 2*threshold)

	err := b.sys.RestartNATS(t.Context(), func() {
		want451(t, "inline mail while NATS is down", dev.SendSMTP(b.sys.SMTPAddr, "alice@example.com", []string{"inline@example.org"}, inline))
		want451(t, "claimed mail while NATS is down", dev.SendSMTP(b.sys.SMTPAddr, "alice@example.com", []string{"claimed@example.org"}, claimed))
	})
	if err != nil {
		t.Fatal(err)
	}
	var refused int
	for _, s := range rec.Ended() {
		for _, a := range s.Attributes() {
			if a.Key == "error.type" && a.Value.AsString() == "451" {
				refused++
			}
		}
	}
	if refused != 2 {
		t.Errorf("%d transaction spans with error.type 451, want 2", refused)
	}

	b.sendSMTP(t, inline, "inline@example.org")
	b.sendSMTP(t, claimed, "claimed@example.org")
	o := b.outcomes.First(t, "inline@example.org")
	wantDKIM(t, o, "example.com", "s1", "rsa-sha256", contracts.ResultPass)
	wantDisposition(t, o, contracts.Quarantined, "quarantine")
	if o := b.outcomes.First(t, "claimed@example.org"); o.Envelope.Claim == nil {
		t.Errorf("a mail of %d bytes was not claimed (threshold %d)", len(claimed), threshold)
	}

	twice := sizedMail(t, "twice@example.org", 2*threshold)
	b.sendSMTP(t, twice, "twice@example.org")
	b.sendSMTP(t, twice, "twice@example.org")
	wantDisposition(t, b.outcomes.First(t, "twice@example.org"), contracts.Quarantined, "quarantine")
	systest.WaitDrained(t, b.sys.JS)
	systest.WaitFor(t, "every claim object to be deleted", func() bool {
		list, chunks := b.claimObjects(t)
		return len(list) == 0 && chunks == 0
	})
	if n := len(b.outcomes.All()["twice@example.org"]); n != 1 {
		t.Errorf("a claimed mail sent twice has %d outcomes, want 1", n)
	}
}

// TestFullStreamsAnswer451: when the mail stream is full (DiscardNew,
// MailMaxBytes) every mail is answered 451 4.3.0, inline or claimed: a
// claimed mail's object was stored but its message refused, and the
// producer deletes the object at once. When the claim bucket is full
// (ClaimMaxBytes), a claimed mail is answered 451 4.3.0 too, and none of
// its data is left in the bucket.
func TestFullStreamsAnswer451(t *testing.T) {
	const threshold = 4 << 10
	b := setupDev(t, dev.Config{Producer: producer.Config{PublishTimeout: 300 * time.Millisecond, ClaimThreshold: threshold},
		Provision: provision.Config{MailMaxBytes: 128, ClaimMaxBytes: 16 << 10}})
	b.putRules(t, rules.FlagHandler, "default 10 quarantine\n")

	send := func(what string, size int) {
		t.Helper()
		rcpt := "full@example.org"
		want451(t, what, dev.SendSMTP(b.sys.SMTPAddr, "alice@example.com", []string{rcpt}, sizedMail(t, rcpt, size)))
	}
	send("inline mail, mail stream full", 1<<10)
	send("claimed mail, mail stream full", 2*threshold)
	if list, chunks := b.claimObjects(t); len(list) != 0 || chunks != 0 {
		t.Errorf("%d objects, %d chunks left by mail refused for a full mail stream", len(list), chunks)
	}
	// Over the bucket's bytes, the object store refuses the data; the
	// object's description may stay (the object store writes it before
	// it learns the data was refused) until the orphan collector takes
	// it, but no data does.
	send("claimed mail over the claim bucket", 32<<10)
	if _, chunks := b.claimObjects(t); chunks != 0 {
		t.Errorf("%d chunks left by mail refused for a full claim bucket", chunks)
	}
	if n := b.streamCount(t, "MAIL"); n != 0 {
		t.Errorf("%d messages in the full mail stream, want none", n)
	}
}
