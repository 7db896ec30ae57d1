package dev_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/dev"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/testkit"
	"github.com/mailscope/mailscope/workers"
)

// The rules of the end-to-end test: every scope kind, every known flag.
// Line numbers matter: outcomes are checked against them.
const (
	handlerRules = `# routing rules of the end-to-end test
rcpt:^review@ 50 quarantine
dkim:partner.example 40 discard
mail_header:X-Route:(?i)^bulk$ 30 discard
trust:strong&rcpt:^trusted@ 25 quarantine
env:e2e&rcpt:^envtest@ 20 discard
release:e2e-release&rcpt:^canary@ 16 quarantine
release:no-such-release 15 discard
sender_percent:100&rcpt:^pct@ 12 quarantine
trust:weak&rcpt:^weak@ 11 quarantine
default 0 publish
`
	rejectRules = `mail_header:Subject:(?i)free\smoney 10 spam subject
`
	strongRules = `rcpt:^weak@ 20 false
dkim:example.com 10 true
`
	verifyRules = `rcpt:^noverify@ 10 false
default 0 true
`
	dryRunRules = `rcpt:^dry@ 10 true
`
	pauseRules = `rcpt:@paused\.invalid$ 10 true
`
	webhookEndpointRules = `rcpt:^hook@ 10 tickets
`
	shadowRules = `rcpt:^shadow@ 10 discard
`
	serviceRules = `rcpt:^svc@ 10 tickets
`
)

func putAllRules(t *testing.T, b *bundle) {
	t.Helper()
	b.putRules(t, rules.FlagHandler, handlerRules)
	b.putRules(t, rules.FlagReject, rejectRules)
	b.putRules(t, rules.FlagDKIMStrong, strongRules)
	b.putRules(t, rules.FlagDKIMVerify, verifyRules)
	b.putRules(t, rules.FlagDryRun, dryRunRules)
	b.putRules(t, rules.FlagPause, pauseRules)
	b.putRules(t, rules.FlagWebhookEndpoint, webhookEndpointRules)
	b.putRules(t, rules.FlagShadowHandler, shadowRules)
	b.putRules(t, rules.FlagService, serviceRules)
	for _, f := range rules.Known() {
		if b.sys.Worker.Rules().Snapshot().RuleSet(f.Name) == nil {
			t.Fatalf("known flag %s has no rule in the test bucket", f.Name)
		}
	}
}

// TestEndToEnd sends real mail over SMTP and LMTP through the whole
// system, with rules for every scope kind and every known flag in the
// bucket, and checks each outcome event field by field.
func TestEndToEnd(t *testing.T) {
	b := setup(t, workers.Config{Release: "e2e-release"})
	putAllRules(t, b)
	sent := 0
	send := func(raw []byte, rcpts ...string) {
		t.Helper()
		b.sendSMTP(t, raw, rcpts...)
		sent++
	}
	rsa := func(rcpt, subject string, extra ...string) []byte {
		return mail(t, rcpt, subject, b.rsaKey, "example.com", "s1", extra...)
	}

	t.Run("good signature passes and is strong", func(t *testing.T) {
		send(rsa("good@example.org", "Quarterly report"), "good@example.org")
		o := b.outcomes.First(t, "good@example.org")
		wantDisposition(t, o, contracts.Processed, "publish")
		wantDKIM(t, o, "example.com", "s1", "rsa-sha256", contracts.ResultPass)
		if o.Auth.Trust != contracts.TrustStrong {
			t.Errorf("trust %s, want strong", o.Auth.Trust)
		}
		if !strings.Contains(o.Auth.AuthenticationResults, "header.d=example.com") {
			t.Errorf("Authentication-Results %q lacks header.d", o.Auth.AuthenticationResults)
		}
		wantRule(t, o, rules.FlagDKIMVerify, "true", 2)
		wantRule(t, o, rules.FlagDKIMStrong, "true", 2)
		wantRule(t, o, rules.FlagPause, "false", 0)
		wantRule(t, o, rules.FlagReject, "", 0)
		wantRule(t, o, rules.FlagDryRun, "false", 0)
		wantRule(t, o, rules.FlagHandler, "publish", 11)
		if o.Schema != contracts.OutcomeSchema || o.ID == "" || o.Attempt != 1 || o.DryRun {
			t.Errorf("schema %q id %q attempt %d dry_run %v", o.Schema, o.ID, o.Attempt, o.DryRun)
		}
		if o.MessageID != "good.example.org@example.com" {
			t.Errorf("message id %q", o.MessageID)
		}
		e := o.Envelope
		if e.ID != o.ID || e.MailFrom != "alice@example.com" || len(e.RcptTo) != 1 || e.Protocol != "smtp" || e.ClientAddr == "" {
			t.Errorf("envelope %+v", e)
		}
		if o.ReceivedAt.IsZero() || o.ProcessedAt.Before(o.ReceivedAt) {
			t.Errorf("received %v processed %v", o.ReceivedAt, o.ProcessedAt)
		}
		if o.Worker.Version == "" || o.Worker.Env != "e2e" {
			t.Errorf("worker %+v", o.Worker)
		}
		s := o.Summary
		if s == nil {
			t.Fatal("no summary")
		}
		if len(s.From) != 1 || s.From[0] != "alice@example.com" || len(s.To) != 1 || s.To[0] != "good@example.org" ||
			s.Subject != "Quarterly report" || s.MessageID != o.MessageID || s.Size == 0 {
			t.Errorf("summary %+v", s)
		}
		if len(s.TextParts) != 1 || !strings.Contains(s.TextParts[0].Text, "Hello good@example.org.") {
			t.Errorf("text parts %+v", s.TextParts)
		}
	})

	t.Run("tampered body fails", func(t *testing.T) {
		raw := bytes.Replace(rsa("tampered@example.org", "Invoice"), []byte("Hello"), []byte("Jello"), 1)
		send(raw, "tampered@example.org")
		o := b.outcomes.First(t, "tampered@example.org")
		wantDisposition(t, o, contracts.Processed, "publish")
		wantDKIM(t, o, "example.com", "s1", "rsa-sha256", contracts.ResultFail)
		if o.Auth.Trust != contracts.TrustNone {
			t.Errorf("trust %s, want none", o.Auth.Trust)
		}
	})

	t.Run("unsigned mail is none", func(t *testing.T) {
		send(mail(t, "unsigned@example.org", "Plain", nil, "", ""), "unsigned@example.org")
		o := b.outcomes.First(t, "unsigned@example.org")
		wantDisposition(t, o, contracts.Processed, "publish")
		wantDKIM(t, o, "", "", "", contracts.ResultNone)
		if o.Auth.Trust != contracts.TrustNone {
			t.Errorf("trust %s, want none", o.Auth.Trust)
		}
	})

	t.Run("key that does not exist is permerror", func(t *testing.T) {
		send(mail(t, "nokey@example.org", "Lost key", b.rsaKey, "example.com", "gone"), "nokey@example.org")
		o := b.outcomes.First(t, "nokey@example.org")
		wantDisposition(t, o, contracts.Processed, "publish")
		wantDKIM(t, o, "example.com", "gone", "rsa-sha256", contracts.ResultPermError)
	})

	t.Run("dkim rule routes a verified domain; ed25519; unaligned is weak", func(t *testing.T) {
		send(mail(t, "partner@example.org", "From a partner", b.edKey, "partner.example", "ed"), "partner@example.org")
		o := b.outcomes.First(t, "partner@example.org")
		wantDisposition(t, o, contracts.Discarded, "discard")
		wantDKIM(t, o, "partner.example", "ed", "ed25519-sha256", contracts.ResultPass)
		wantRule(t, o, rules.FlagHandler, "discard", 3)
		if o.Auth.Trust != contracts.TrustWeak {
			t.Errorf("trust %s, want weak (d=partner.example does not align with example.com)", o.Auth.Trust)
		}
		if o.Summary != nil {
			t.Errorf("discard handler published a summary")
		}
	})

	t.Run("LMTP answers per recipient; rcpt rule routes to quarantine", func(t *testing.T) {
		codes := b.sendLMTP(t, rsa("review@example.org", "Please review"), "review@example.org", "other@example.org")
		sent++
		if codes["review@example.org"] != 250 || codes["other@example.org"] != 250 || len(codes) != 2 {
			t.Errorf("LMTP replies %v, want 250 for each recipient", codes)
		}
		o := b.outcomes.First(t, "review@example.org")
		wantDisposition(t, o, contracts.Quarantined, "quarantine")
		wantRule(t, o, rules.FlagHandler, "quarantine", 2)
		if o.Envelope.Protocol != "lmtp" || len(o.Envelope.RcptTo) != 2 || o.Envelope.Helo != "lmtp-client.test" {
			t.Errorf("envelope %+v", o.Envelope)
		}
		if o.Summary == nil || o.Summary.Subject != "Please review" {
			t.Errorf("quarantine summary %+v", o.Summary)
		}
	})

	t.Run("mail_header rule rejects", func(t *testing.T) {
		send(rsa("spam@example.org", "FREE money"), "spam@example.org")
		o := b.outcomes.First(t, "spam@example.org")
		wantDisposition(t, o, contracts.Rejected, "")
		wantRule(t, o, rules.FlagReject, "spam subject", 1)
		if o.Reason != "spam subject" {
			t.Errorf("reason %q", o.Reason)
		}
	})

	t.Run("mail_header matches the RFC 2047-decoded value", func(t *testing.T) {
		send(rsa("bulk@example.org", "Newsletter", "X-Route: =?UTF-8?B?QlVMSw==?="), "bulk@example.org")
		o := b.outcomes.First(t, "bulk@example.org")
		wantDisposition(t, o, contracts.Discarded, "discard")
		wantRule(t, o, rules.FlagHandler, "discard", 4)
	})

	t.Run("trust and conjunction", func(t *testing.T) {
		send(rsa("trusted@example.org", "Signed"), "trusted@example.org")
		send(mail(t, "trusted@example.net", "Unsigned", nil, "", ""), "trusted@example.net")
		send(rsa("weak@example.org", "Signed, not strong by rule"), "weak@example.org")
		o := b.outcomes.First(t, "trusted@example.org")
		wantDisposition(t, o, contracts.Quarantined, "quarantine")
		wantRule(t, o, rules.FlagHandler, "quarantine", 5)
		o = b.outcomes.First(t, "trusted@example.net")
		wantDisposition(t, o, contracts.Processed, "publish")
		wantRule(t, o, rules.FlagHandler, "publish", 11)
		o = b.outcomes.First(t, "weak@example.org")
		if o.Auth.Trust != contracts.TrustWeak {
			t.Errorf("trust %s, want weak (mail.auth.dkim_strong off by rule)", o.Auth.Trust)
		}
		wantRule(t, o, rules.FlagDKIMStrong, "false", 1)
		wantRule(t, o, rules.FlagHandler, "quarantine", 10)
	})

	t.Run("a trusted domain's signature does not make another aligned domain strong", func(t *testing.T) {
		evil := newKey(t, "ed25519", b.keys, "e1", "evil.test")
		raw := testkit.SampleMail("CEO <ceo@evil.test>", "cfo@example.org", "wire the money", "now\r\n",
			time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), "wire@evil.test")
		raw, err := testkit.Sign(raw, testkit.SignOptions{Domain: "evil.test", Selector: "e1", Key: evil})
		if err != nil {
			t.Fatal(err)
		}
		// example.com is trusted by mail.auth.dkim_strong and signs too.
		if raw, err = testkit.Sign(raw, testkit.SignOptions{Domain: "example.com", Selector: "s1", Key: b.rsaKey}); err != nil {
			t.Fatal(err)
		}
		send(raw, "cfo@example.org")
		o := b.outcomes.First(t, "cfo@example.org")
		if len(o.Auth.DKIM) != 2 || o.Auth.DKIM[0].Result != contracts.ResultPass || o.Auth.DKIM[1].Result != contracts.ResultPass {
			t.Fatalf("DKIM %+v, want two passes", o.Auth.DKIM)
		}
		if o.Auth.Trust != contracts.TrustWeak {
			t.Errorf("trust %s, want weak: evil.test aligns but is not trusted, example.com is trusted but does not align", o.Auth.Trust)
		}
		wantRule(t, o, rules.FlagDKIMStrong, "false", 0)
	})

	t.Run("env, release and sender_percent scopes", func(t *testing.T) {
		send(rsa("envtest@example.org", "env"), "envtest@example.org")
		send(rsa("canary@example.org", "release"), "canary@example.org")
		send(rsa("pct@example.org", "percent"), "pct@example.org")
		wantRule(t, b.outcomes.First(t, "envtest@example.org"), rules.FlagHandler, "discard", 6)
		wantRule(t, b.outcomes.First(t, "canary@example.org"), rules.FlagHandler, "quarantine", 7)
		wantRule(t, b.outcomes.First(t, "pct@example.org"), rules.FlagHandler, "quarantine", 9)
	})

	t.Run("kill switch skips verification", func(t *testing.T) {
		k := newKey(t, "rsa", b.keys, "nv", "example.com")
		send(mail(t, "noverify@example.org", "Unverified", k, "example.com", "nv"), "noverify@example.org")
		o := b.outcomes.First(t, "noverify@example.org")
		wantRule(t, o, rules.FlagDKIMVerify, "false", 1)
		if o.Auth.Skipped == "" || len(o.Auth.DKIM) != 1 || o.Auth.DKIM[0].Result != contracts.ResultNone {
			t.Errorf("auth %+v, want skipped with result none", o.Auth)
		}
		if n := b.keys.Queries(testkit.DNSName("nv", "example.com")); n != 0 {
			t.Errorf("%d key lookups with verification off", n)
		}
	})

	t.Run("dry run is recorded", func(t *testing.T) {
		send(rsa("dry@example.org", "dry"), "dry@example.org")
		o := b.outcomes.First(t, "dry@example.org")
		wantRule(t, o, rules.FlagDryRun, "true", 1)
		if !o.DryRun {
			t.Error("outcome not marked dry_run")
		}
	})

	t.Run("a rule put between two mails decides the second", func(t *testing.T) {
		send(rsa("change@example.org", "before"), "change@example.org")
		first := b.outcomes.Nth(t, "change@example.org", 1)
		wantDisposition(t, first, contracts.Processed, "publish")
		rev := b.putRules(t, rules.FlagHandler, "rcpt:^change@ 60 discard\n"+handlerRules)
		send(rsa("change@example.org", "after"), "change@example.org")
		second := b.outcomes.Nth(t, "change@example.org", 2)
		wantDisposition(t, second, contracts.Discarded, "discard")
		wantRule(t, second, rules.FlagHandler, "discard", 1)
		if r := flag(t, second, rules.FlagHandler).Rule; r == nil || r.Revision != rev {
			t.Errorf("decided by %+v, want revision %d", r, rev)
		}
	})

	t.Run("a rule that does not parse is ignored; the previous rules stay", func(t *testing.T) {
		good := b.sys.Worker.Rules().Snapshot().RuleSet(rules.FlagHandler).Revision
		bad, err := b.kv.PutString(t.Context(), rules.FlagHandler, "rcpt:^review@ 50 no-such-handler\ndefault 0 publish\n")
		if err != nil {
			t.Fatal(err)
		}
		b.waitStore(t, "bad mail.handler reported", func(s *rules.Store) bool {
			for _, p := range s.Problems() {
				if p.Flag == rules.FlagHandler && p.Revision == bad {
					return len(p.Lines) == 1 && p.Lines[0].Line == 1
				}
			}
			return false
		})
		b.waitStatus(t, func(st contracts.WorkerStatus) bool {
			for _, p := range st.Problems {
				if p.Flag == rules.FlagHandler && p.Revision == bad && p.KeptRevision == good &&
					len(p.Errors) == 1 && strings.HasPrefix(p.Errors[0], "line 1: ") {
					return true
				}
			}
			return false
		})
		send(rsa("review@example.org", "again"), "review@example.org")
		o := b.outcomes.Nth(t, "review@example.org", 2)
		wantDisposition(t, o, contracts.Quarantined, "quarantine")
		if r := flag(t, o, rules.FlagHandler).Rule; r == nil || r.Revision != good {
			t.Errorf("decided by %+v, want the last good revision %d", r, good)
		}
	})

	t.Run("mail.pause holds mail without counting attempts; resumes when switched off", func(t *testing.T) {
		send(rsa("held@paused.invalid", "hold me"), "held@paused.invalid")
		systest.WaitFor(t, "the worker to hold the mail", func() bool { return b.sys.Worker.Held() == 1 })
		rev := b.putRules(t, rules.FlagPause, "rcpt:@paused\\.invalid$ 10 false\n")
		o := b.outcomes.First(t, "held@paused.invalid")
		wantDisposition(t, o, contracts.Processed, "publish")
		if f := flag(t, o, rules.FlagPause); f.Value != "false" || f.Rule == nil || f.Rule.Revision != rev {
			t.Errorf("mail.pause decision %+v, want false by revision %d", f, rev)
		}
		if o.Attempt != 1 {
			t.Errorf("attempt %d after a hold, want 1", o.Attempt)
		}
		b.putRules(t, rules.FlagPause, pauseRules)
	})

	t.Run("mail that is not RFC 5322 is dead-lettered with a reason", func(t *testing.T) {
		raw := []byte("this line is no header field\r\n\r\nbody\r\n")
		send(raw, "malformed@example.org")
		o := b.outcomes.First(t, "malformed@example.org")
		if o.Disposition != contracts.Dead || !strings.Contains(o.Reason, "malformed") {
			t.Fatalf("disposition %s reason %q, want dead/malformed", o.Disposition, o.Reason)
		}
		m, err := b.sys.JS.Stream(t.Context(), "MAIL_DEAD")
		if err != nil {
			t.Fatal(err)
		}
		// The dead letter is stored after its dead outcome.
		var dl *jetstream.RawStreamMsg
		systest.WaitFor(t, "the dead letter after its outcome", func() bool {
			dl, err = m.GetLastMsgForSubject(t.Context(), "mail.dead")
			return err == nil && dl.Header.Get(contracts.HeaderOriginalID) == o.ID
		})
		if !bytes.Equal(dl.Data, raw) {
			t.Errorf("dead letter data %q, want the raw mail", dl.Data)
		}
		if dl.Header.Get(contracts.HeaderDeadClass) != "malformed" || dl.Header.Get(contracts.HeaderOriginalID) != o.ID ||
			dl.Header.Get(contracts.HeaderAttempts) != "1" || !strings.Contains(dl.Header.Get(contracts.HeaderDeadReason), "header") {
			t.Errorf("dead letter headers %v", dl.Header)
		}
	})

	t.Run("oversized mail gets 552 5.3.4", func(t *testing.T) {
		raw := append(mail(t, "big@example.org", "big", nil, "", ""), bytes.Repeat([]byte("0123456789abcdef\r\n"), 33<<20/18)...)
		err := dev.SendSMTP(b.sys.SMTPAddr, "alice@example.com", []string{"big@example.org"}, raw)
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code != 552 || se.EnhancedCode != (smtp.EnhancedCode{5, 3, 4}) {
			t.Errorf("got %v, want 552 5.3.4", err)
		}
	})

	// Every mail has exactly one outcome, and the queue is drained.
	systest.WaitDrained(t, b.sys.JS)
	if n := b.streamCount(t, "MAIL_OUTCOMES"); n != uint64(sent) {
		t.Errorf("%d outcome events for %d mails", n, sent)
	}
}
