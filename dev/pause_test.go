package dev_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/auth"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/dev"
	"github.com/mailscope/mailscope/keyserver"
	"github.com/mailscope/mailscope/producer"
	"github.com/mailscope/mailscope/provision"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/testkit"
	"github.com/mailscope/mailscope/workers"
)

// TestPauseDoesNotStallOtherMail: more held mail than the workers
// consumer lets be in flight must not stop other mail, and every held
// mail is processed, at its first attempt, once the pause is off.
func TestPauseDoesNotStallOtherMail(t *testing.T) {
	b := setupDev(t, dev.Config{Provision: provision.Config{MaxAckPending: 3}})
	b.putRules(t, rules.FlagPause, `rcpt:@paused\.invalid$ 10 true`+"\n")
	const held = 6
	for i := range held {
		rcpt := "p" + strconv.Itoa(i) + "@paused.invalid"
		b.sendSMTP(t, mail(t, rcpt, "paused", nil, "", ""), rcpt)
	}
	systest.WaitFor(t, "every paused mail to be held", func() bool { return b.sys.Worker.Held() == held })

	b.sendSMTP(t, mail(t, "free@example.org", "not paused", nil, "", ""), "free@example.org")
	if o := b.outcomes.First(t, "free@example.org"); o.Disposition != contracts.Processed {
		t.Errorf("unpaused mail: %s", o.Disposition)
	}

	rev := b.putRules(t, rules.FlagPause, `rcpt:@paused\.invalid$ 10 off`+"\n")
	for i := range held {
		o := b.outcomes.First(t, "p"+strconv.Itoa(i)+"@paused.invalid")
		if o.Disposition != contracts.Processed || o.Attempt != 1 {
			t.Errorf("held mail %d: %s at attempt %d, want processed at 1", i, o.Disposition, o.Attempt)
		}
		if f := flag(t, o, rules.FlagPause); f.Rule == nil || f.Rule.Revision != rev {
			t.Errorf("held mail %d decided by %+v, want revision %d", i, f.Rule, rev)
		}
	}
	systest.WaitDrained(t, b.sys.JS)
	if n := b.streamCount(t, "MAIL_OUTCOMES"); n != held+1 {
		t.Errorf("%d outcomes for %d mails", n, held+1)
	}
}

// TestAttemptsSurviveAHold: the attempts a mail used before it was held
// still count after it resumes (Mailscope-Prior-Attempts), so a pause
// neither adds attempts nor forgives them; a DNS outage on the last
// attempt holds the mail instead of failing it; and a mail delivered far
// past the attempt limit without an outcome (it crashed or stalled
// workers) is dead-lettered without being processed again.
func TestAttemptsSurviveAHold(t *testing.T) {
	b := setup(t, workers.Config{MaxAttempts: 3, BackoffBase: time.Millisecond, BackoffMax: time.Millisecond,
		HoldDelay: 20 * time.Millisecond, Auth: auth.Config{Timeout: 50 * time.Millisecond, Retries: -1}})
	k := newKey(t, "ed25519", b.keys, "slow", "example.com")
	name := testkit.DNSName("slow", "example.com")
	b.keys.SetFault(name, keyserver.FaultTimeout)

	prod := b.js(t, access.Producer)
	publish := func(rcpt, prior string) {
		t.Helper()
		raw := mail(t, rcpt, "prior attempts", k, "example.com", "slow")
		env := contracts.Envelope{ID: producer.NewID(), RcptTo: []string{rcpt}, ReceivedAt: time.Now(), Protocol: "publish"}
		msg := &nats.Msg{Subject: "mail.incoming", Header: nats.Header{}, Data: raw}
		env.Encode(msg.Header)
		msg.Header.Set(contracts.HeaderPriorAttempts, prior)
		if _, err := prod.PublishMsg(t.Context(), msg); err != nil {
			t.Fatal(err)
		}
	}

	// Two attempts used before the hold: this delivery is the last one,
	// so after one delivery (not three) DNS not answering holds the mail;
	// it is processed, at attempt 3, once DNS answers.
	publish("prior@example.org", "2")
	systest.WaitFor(t, "the mail to wait held for DNS", func() bool { return b.sys.Worker.Held() == 1 })
	cons, err := b.sys.JS.Consumer(t.Context(), "MAIL", "workers")
	if err != nil {
		t.Fatal(err)
	}
	ci, err := cons.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if ci.Delivered.Consumer != 1 {
		t.Errorf("%d deliveries before the hold; the two attempts before it must count", ci.Delivered.Consumer)
	}
	b.keys.SetFault(name, keyserver.FaultNone)
	o := b.outcomes.First(t, "prior@example.org")
	if o.Disposition != contracts.Processed || o.Attempt != 3 || o.Auth.DKIM[0].Result != contracts.ResultPass {
		t.Errorf("%s at attempt %d, DKIM %+v: want processed at attempt 3 with a pass", o.Disposition, o.Attempt, o.Auth.DKIM)
	}

	// Six used: this delivery is far past the limit (twice MaxAttempts),
	// so it is dead-lettered without being processed.
	publish("poison@example.org", "6")
	o = b.outcomes.First(t, "poison@example.org")
	if o.Disposition != contracts.Dead || o.Attempt != 7 || !strings.Contains(o.Reason, "past the attempt limit") {
		t.Errorf("%s at attempt %d (%s), want dead past the limit", o.Disposition, o.Attempt, o.Reason)
	}
	if len(o.Auth.DKIM) != 0 || len(o.Flags) != 0 {
		t.Errorf("a mail past the limit was processed: auth %+v flags %+v", o.Auth, o.Flags)
	}
}

// TestPauseWithVerifiedException: "pause everyone but our verified
// partner" holds the others and lets the partner's signed mail through.
func TestPauseWithVerifiedException(t *testing.T) {
	b := setup(t, workers.Config{})
	b.putRules(t, rules.FlagPause, "dkim:example.com 10 off\ndefault 0 on\n")
	b.sendSMTP(t, mail(t, "partner@example.org", "signed", b.rsaKey, "example.com", "s1"), "partner@example.org")
	o := b.outcomes.First(t, "partner@example.org")
	if o.Disposition != contracts.Processed {
		t.Errorf("partner's mail: %s", o.Disposition)
	}
	wantRule(t, o, rules.FlagPause, "false", 1)
	b.sendSMTP(t, mail(t, "other@example.org", "unsigned", nil, "", ""), "other@example.org")
	systest.WaitFor(t, "the unsigned mail to be held", func() bool { return b.sys.Worker.Held() == 1 })
	b.putRules(t, rules.FlagPause, "dkim:example.com 10 off\n")
	if o := b.outcomes.First(t, "other@example.org"); o.Disposition != contracts.Processed {
		t.Errorf("other mail after the pause: %s", o.Disposition)
	}
}

// TestHeldRechecksNeverAct: a held mail is evaluated again on every rule
// change and every HoldDelay, and none of these re-checks runs its
// handler (the one step with side effects); the handler runs once, when
// the pause lifts. The pause rule has a dkim: term, so that every
// re-check goes through verification and rules, the whole evaluate step.
func TestHeldRechecksNeverAct(t *testing.T) {
	var mu sync.Mutex
	acted := map[string]int{} // by recipient
	publish := workers.Handlers(64 << 10)["publish"]
	counting := workers.HandlerFunc(func(ctx context.Context, m *workers.Mail, dryRun bool) (workers.HandlerResult, error) {
		mu.Lock()
		acted[m.Env.RcptTo[0]]++
		mu.Unlock()
		return publish.Handle(ctx, m, dryRun)
	})
	actedOn := func(rcpt string) int {
		mu.Lock()
		defer mu.Unlock()
		return acted[rcpt]
	}
	b := setup(t, workers.Config{HoldDelay: 20 * time.Millisecond, Handlers: map[string]workers.Handler{"publish": counting}})
	b.putRules(t, rules.FlagPause, `dkim:partner.example&rcpt:^held@ 10 true`+"\n")

	b.sendSMTP(t, mail(t, "held@example.org", "held", b.edKey, "partner.example", "ed"), "held@example.org")
	b.sendSMTP(t, mail(t, "free@example.org", "free", b.edKey, "partner.example", "ed"), "free@example.org")
	if o := b.outcomes.First(t, "free@example.org"); o.Disposition != contracts.Processed {
		t.Fatalf("unpaused mail: %s", o.Disposition)
	}
	systest.WaitFor(t, "the mail to be held", func() bool { return b.sys.Worker.Held() == 1 })
	checks := b.sys.Worker.HeldChecks()
	// Re-checks on rule changes (a key the mail does not match) and on
	// the HoldDelay ticks.
	b.putRules(t, rules.FlagReject, `rcpt:^nobody@ 10 not this one`+"\n")
	b.putRules(t, rules.FlagDryRun, `rcpt:^nobody@ 10 true`+"\n")
	systest.WaitFor(t, "ten re-checks of the held mail", func() bool { return b.sys.Worker.HeldChecks() >= checks+10 })
	if n := actedOn("held@example.org"); n != 0 {
		t.Fatalf("the handler ran %d times for a mail that is still held", n)
	}
	if n := actedOn("free@example.org"); n != 1 {
		t.Errorf("the handler ran %d times for the unpaused mail, want 1", n)
	}

	b.putRules(t, rules.FlagPause, `dkim:partner.example&rcpt:^held@ 10 false`+"\n")
	if o := b.outcomes.First(t, "held@example.org"); o.Disposition != contracts.Processed {
		t.Errorf("held mail after the pause: %s", o.Disposition)
	}
	if n := actedOn("held@example.org"); n != 1 {
		t.Errorf("the handler ran %d times for the resumed mail, want 1", n)
	}
}
