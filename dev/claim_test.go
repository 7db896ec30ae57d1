package dev_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/dev"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/testkit"
	"github.com/mailscope/mailscope/workers"
)

// sizedMail returns an unsigned mail to rcpt of exactly n bytes.
func sizedMail(t *testing.T, rcpt string, n int) []byte {
	t.Helper()
	buf := bytes.NewBufferString("From: Alice <alice@example.com>\r\nTo: " + rcpt + "\r\nSubject: sized\r\n" +
		"Message-ID: <" + strings.ReplaceAll(rcpt, "@", ".") + "@example.com>\r\n\r\n")
	for rest := n - buf.Len(); rest > 0; {
		line := min(rest, 78)
		if rest-line == 1 {
			line--
		}
		buf.WriteString(strings.Repeat("x", line-2) + "\r\n")
		rest -= line
	}
	if buf.Len() != n {
		t.Fatalf("sizedMail(%d) made %d bytes", n, buf.Len())
	}
	return buf.Bytes()
}

// claimObjects returns the claim bucket's live objects and its chunk
// messages, as the operator sees them.
func (b *bundle) claimObjects(t *testing.T) ([]*jetstream.ObjectInfo, uint64) {
	t.Helper()
	op := b.js(t, access.Operator)
	bucket := contracts.DefaultNames().ClaimBucket
	obs, err := op.ObjectStore(t.Context(), bucket)
	if err != nil {
		t.Fatal(err)
	}
	list, err := obs.List(t.Context())
	if err != nil && !errors.Is(err, jetstream.ErrNoObjectsFound) {
		t.Fatal(err)
	}
	s, err := op.Stream(t.Context(), "OBJ_"+bucket)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context(), jetstream.WithSubjectFilter("$O."+bucket+".C.>"))
	if err != nil {
		t.Fatal(err)
	}
	var chunks uint64
	for _, n := range info.State.Subjects {
		chunks += n
	}
	return list, chunks
}

// TestLargeMail: mail above the producer's claim threshold goes through
// the real wiring by claim check, over SMTP, with rules in the bucket: a
// 30 MiB DKIM-signed mail is processed with dkim=pass and leaves no
// object behind; mails of exactly the threshold and one byte more are
// both processed (inline, then claimed); a mail over MaxSize is refused
// 552 5.3.4 and leaves nothing in the bucket.
func TestLargeMail(t *testing.T) {
	if testing.Short() {
		t.Skip("30 MiB mail")
	}
	b := setup(t, workers.Config{})
	b.putRules(t, rules.FlagHandler, "rcpt:^large@ 10 quarantine\ndefault 0 publish\n")
	threshold := int(b.sys.Producer.Config().ClaimThreshold)

	t.Run("a 30 MiB signed mail is processed with dkim=pass and its object deleted", func(t *testing.T) {
		body := strings.Repeat("A line of a large mail, long enough to count for something.\r\n", 30<<20/62)
		raw := testkit.SampleMail("Alice <alice@example.com>", "large@example.org", "30 MiB", body,
			time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), "large.example.org@example.com")
		raw, err := testkit.Sign(raw, testkit.SignOptions{Domain: "example.com", Selector: "s1", Key: b.rsaKey})
		if err != nil {
			t.Fatal(err)
		}
		b.sendSMTP(t, raw, "large@example.org")
		o := b.outcomes.First(t, "large@example.org")
		wantDisposition(t, o, contracts.Quarantined, "quarantine")
		wantDKIM(t, o, "example.com", "s1", "rsa-sha256", contracts.ResultPass)
		if o.Envelope.Claim == nil || o.Envelope.Claim.Size != int64(len(raw)) {
			t.Errorf("claim %+v, want the mail's %d bytes by claim check", o.Envelope.Claim, len(raw))
		}
		if o.Summary == nil || o.Summary.Size != len(raw) {
			t.Errorf("summary %+v, want the mail's size", o.Summary)
		}
		if o.ID != contracts.ContentID("alice@example.com", []string{"large@example.org"}, raw) {
			t.Errorf("id %s is not the mail's content id", o.ID)
		}
		systest.WaitDrained(t, b.sys.JS)
		systest.WaitFor(t, "the object to be deleted", func() bool {
			list, chunks := b.claimObjects(t)
			return len(list) == 0 && chunks == 0
		})
	})

	t.Run("mails of the threshold and one byte more are both processed", func(t *testing.T) {
		for rcpt, size := range map[string]int{"at@example.org": threshold, "over@example.org": threshold + 1} {
			b.sendSMTP(t, sizedMail(t, rcpt, size), rcpt)
			o := b.outcomes.First(t, rcpt)
			wantDisposition(t, o, contracts.Processed, "publish")
			if claimed := o.Envelope.Claim != nil; claimed != (size > threshold) {
				t.Errorf("%d bytes (threshold %d): claimed %v", size, threshold, claimed)
			}
			if o.Summary == nil || o.Summary.Size != size {
				t.Errorf("%d bytes: summary %+v", size, o.Summary)
			}
		}
		systest.WaitDrained(t, b.sys.JS)
		systest.WaitFor(t, "the objects to be deleted", func() bool {
			list, chunks := b.claimObjects(t)
			return len(list) == 0 && chunks == 0
		})
	})

	t.Run("a mail over MaxSize is refused 552 5.3.4 and leaves no object", func(t *testing.T) {
		max := int(b.sys.Producer.Config().MaxSize)
		err := dev.SendSMTP(b.sys.SMTPAddr, "alice@example.com", []string{"huge@example.org"}, sizedMail(t, "huge@example.org", max+1<<20))
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code != 552 || se.EnhancedCode != (smtp.EnhancedCode{5, 3, 4}) {
			t.Errorf("got %v, want 552 5.3.4", err)
		}
		if list, chunks := b.claimObjects(t); len(list) != 0 || chunks != 0 {
			t.Errorf("%d objects, %d chunks left by a refused mail", len(list), chunks)
		}
	})
}
