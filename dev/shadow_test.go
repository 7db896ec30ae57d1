package dev_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/dev"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/telemetry"
	"github.com/mailscope/mailscope/workers"
)

// TestShadowRuns: rules in the bucket name a shadow handler
// (mail.shadow_handler) beside the live one, through the real wiring.
// The shadow runs in dry run: the live decision is what becomes of the
// mail, the outcome records both and whether they differ, a webhook
// shadow never posts while a webhook live handler posts once, a failing
// or panicking shadow never fails or delays the mail, a mail rejected by
// rule or without a shadow rule has none, and the shadow runs are
// counted per handler pair on /metrics.
func TestShadowRuns(t *testing.T) {
	rv := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ string, _ int) { w.WriteHeader(http.StatusNoContent) })
	srv, err := telemetry.Start("127.0.0.1:0", telemetry.ServiceName("dev"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	var cfg dev.Config
	cfg.Worker = workers.Config{MaxAttempts: 3, BackoffBase: 10 * time.Millisecond, BackoffMax: 50 * time.Millisecond,
		Webhook: workers.WebhookConfig{Endpoints: []workers.WebhookEndpoint{rv.endpoint("tickets", 5*time.Second, 1000)}},
		// The quarantine handler of this worker panics: only ever run as
		// a shadow here, it shows a shadow's panic cannot reach the mail.
		Handlers: map[string]workers.Handler{"quarantine": workers.HandlerFunc(func(context.Context, *workers.Mail, bool) (workers.HandlerResult, error) {
			panic("shadow handler bug")
		})}}
	b := setupDev(t, cfg)
	b.putRules(t, rules.FlagHandler, "rcpt:^s-live-webhook@ 10 webhook\ndefault 0 publish\n")
	shadowRev := b.putRules(t, rules.FlagShadowHandler, strings.Join([]string{
		"rcpt:^s-differ@ 60 discard",
		"rcpt:^s-same@ 50 webhook",
		"rcpt:^s-live-webhook@ 40 publish",
		"rcpt:^s-unknown@ 30 webhook",
		"rcpt:^s-panic@ 20 quarantine",
		"rcpt:^s-rejected@ 10 discard",
	}, "\n")+"\n")
	b.putRules(t, rules.FlagWebhookEndpoint, "rcpt:^s-unknown@ 10 nowhere\ndefault 0 tickets\n")
	b.putRules(t, rules.FlagReject, "rcpt:^s-rejected@ 10 not for us\n")
	before := scrapeMetrics(t, srv)

	send := func(t *testing.T, rcpt string) contracts.Outcome {
		t.Helper()
		b.sendSMTP(t, mail(t, rcpt, "shadowed", b.rsaKey, "example.com", "s1"), rcpt)
		return b.outcomes.First(t, rcpt)
	}
	wantShadow := func(t *testing.T, o contracts.Outcome, want contracts.Shadow, errHas string) {
		t.Helper()
		s := o.Shadow
		if s == nil {
			t.Fatalf("mail to %v: no shadow recorded, want %+v", o.Envelope.RcptTo, want)
		}
		if s.Handler != want.Handler || s.Disposition != want.Disposition || s.Differs != want.Differs ||
			!strings.Contains(s.Reason, want.Reason) || (errHas == "") != (s.Error == "") || !strings.Contains(s.Error, errHas) {
			t.Errorf("mail to %v: shadow %+v, want %+v with error containing %q", o.Envelope.RcptTo, *s, want, errHas)
		}
		if o.Attempt != 1 {
			t.Errorf("mail to %v: decided on attempt %d, want 1: a shadow never retries the mail", o.Envelope.RcptTo, o.Attempt)
		}
	}

	t.Run("a different decision: the live one stands, both recorded", func(t *testing.T) {
		o := send(t, "s-differ@example.org")
		wantDisposition(t, o, contracts.Processed, "publish")
		if o.Summary == nil || o.Summary.Subject != "shadowed" || o.DryRun {
			t.Errorf("summary %+v dry_run %v: want the live publish handler's outcome", o.Summary, o.DryRun)
		}
		wantShadow(t, o, contracts.Shadow{Handler: "discard", Disposition: contracts.Discarded, Reason: "discarded by rule", Differs: true}, "")
		wantDecision(t, o, rules.FlagShadowHandler, decision{"discard", shadowRev, 1})
	})
	t.Run("a webhook shadow decides as the live handler and posts nothing", func(t *testing.T) {
		o := send(t, "s-same@example.org")
		wantDisposition(t, o, contracts.Processed, "publish")
		wantShadow(t, o, contracts.Shadow{Handler: "webhook", Disposition: contracts.Processed, Reason: "dry run: would POST", Differs: false}, "")
		if n := len(rv.got("s-same@example.org")); n != 0 {
			t.Errorf("the receiver got %d requests from a shadow run, want 0", n)
		}
	})
	t.Run("a live webhook posts once beside its shadow", func(t *testing.T) {
		o := send(t, "s-live-webhook@example.org")
		wantDisposition(t, o, contracts.Processed, "webhook")
		if o.Reason != "delivered to webhook endpoint tickets" {
			t.Errorf("reason %q", o.Reason)
		}
		wantShadow(t, o, contracts.Shadow{Handler: "publish", Disposition: contracts.Processed, Differs: false}, "")
		if n := len(rv.got("s-live-webhook@example.org")); n != 1 {
			t.Errorf("the receiver got %d requests, want the live handler's 1", n)
		}
	})
	t.Run("a shadow that cannot run is recorded, the mail processed at once", func(t *testing.T) {
		o := send(t, "s-unknown@example.org")
		wantDisposition(t, o, contracts.Processed, "publish")
		wantShadow(t, o, contracts.Shadow{Handler: "webhook", Differs: true}, `"nowhere" is not a configured webhook endpoint`)
	})
	t.Run("a panicking shadow is recorded, the mail processed at once", func(t *testing.T) {
		o := send(t, "s-panic@example.org")
		wantDisposition(t, o, contracts.Processed, "publish")
		wantShadow(t, o, contracts.Shadow{Handler: "quarantine", Differs: true}, "shadow handler bug")
	})
	t.Run("no shadow for mail rejected by rule, nor without a shadow rule", func(t *testing.T) {
		o := send(t, "s-rejected@example.org")
		wantDisposition(t, o, contracts.Rejected, "")
		if o.Shadow != nil {
			t.Errorf("rejected mail: shadow %+v, want none", *o.Shadow)
		}
		o = send(t, "s-none@example.org")
		wantDisposition(t, o, contracts.Processed, "publish")
		if o.Shadow != nil {
			t.Errorf("mail without a shadow rule: shadow %+v, want none", *o.Shadow)
		}
		wantDecision(t, o, rules.FlagShadowHandler, decision{rules.ShadowNone, 0, 0})
	})
	t.Run("shadow runs counted per handler pair and result", func(t *testing.T) {
		after := scrapeMetrics(t, srv)
		for _, c := range []struct {
			live, shadow, result string
			want                 float64
		}{
			{"publish", "discard", "differ", 1}, {"publish", "webhook", "same", 1}, {"webhook", "publish", "same", 1},
			{"publish", "webhook", "error", 1}, {"publish", "quarantine", "error", 1}, {"publish", "discard", "same", 0},
		} {
			l := labels("live", c.live, "shadow", c.shadow, "result", c.result)
			if got := after.value("mailscope_mail_shadow_runs_total", l) - before.value("mailscope_mail_shadow_runs_total", l); got != c.want {
				t.Errorf("mailscope_mail_shadow_runs_total%v moved by %v, want %v", l, got, c.want)
			}
		}
	})
}
