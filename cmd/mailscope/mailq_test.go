package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/mailq"
	"github.com/mailscope/mailscope/provision"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/testkit"
	"github.com/mailscope/mailscope/workers"
)

// TestDeadAndHeldTooling: dead letters and held mail as an operator sees
// them through the binary, against a running worker with rules in the
// bucket. A handler fails until it is fixed, so two mails are
// dead-lettered (transient) beside one malformed one; `dead list` shows
// all three with their reasons, `dead show` a raw mail, `dead retry --all
// --class transient` puts the two back with new ids once the handler
// works: each gets a processed outcome and its dead letter is gone, while
// the malformed one stays. A paused mail is listed by `held list` with its
// reason.
func TestDeadAndHeldTooling(t *testing.T) {
	env := natsServer(t)
	if err := provision.Run(t.Context(), env.JetStream(t, access.Provisioner), provision.Config{}); err != nil {
		t.Fatal(err)
	}
	var fixed atomic.Bool
	publish := workers.Handlers(64 << 10)["publish"]
	flaky := workers.HandlerFunc(func(ctx context.Context, m *workers.Mail, dryRun bool) (workers.HandlerResult, error) {
		if !fixed.Load() {
			return workers.HandlerResult{}, workers.RetryLater(errors.New("downstream refuses"), 0)
		}
		return publish.Handle(ctx, m, dryRun)
	})
	ctx, stop := context.WithCancel(t.Context())
	w, err := workers.New(ctx, workers.Config{MaxAttempts: 2, BackoffBase: time.Millisecond, BackoffMax: time.Millisecond,
		Handlers: map[string]workers.Handler{"publish": flaky}, Logger: slog.New(slog.DiscardHandler)}, env.Conn(t, access.Worker))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() { stop(); <-done })

	op := env.JetStream(t, access.Operator)
	kv, err := op.KeyValue(t.Context(), "mail_flags")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.PutString(t.Context(), rules.FlagPause, "rcpt:^paused@ 10 on\n"); err != nil {
		t.Fatal(err)
	}
	systest.WaitFor(t, "the worker to load the pause rule", func() bool {
		return w.Rules().Snapshot().RuleSet(rules.FlagPause) != nil
	})
	outcomes := systest.NewOutcomes(t, env.Conn(t, access.Operator), systest.ByRcpt)
	prod := env.JetStream(t, access.Producer)
	send := func(rcpt string, raw []byte) {
		t.Helper()
		e := contracts.Envelope{ID: contracts.ContentID("alice@example.com", []string{rcpt}, raw), MailFrom: "alice@example.com",
			RcptTo: []string{rcpt}, ReceivedAt: time.Now(), Protocol: "publish"}
		m := &nats.Msg{Subject: "mail.incoming", Header: nats.Header{}, Data: raw}
		e.Encode(m.Header)
		if _, err := prod.PublishMsg(t.Context(), m); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		rcpt := fmt.Sprintf("retry-%d@example.org", i)
		send(rcpt, testkit.SampleMail("Alice <alice@example.com>", rcpt, "retry me", "Hi.\r\n", time.Now(), fmt.Sprintf("retry-%d@example.com", i)))
	}
	send("broken@example.org", []byte("no header section at all\r\n"))
	dead := map[string]contracts.Outcome{}
	for _, r := range []string{"retry-0@example.org", "retry-1@example.org", "broken@example.org"} {
		o := outcomes.First(t, r)
		if o.Disposition != contracts.Dead {
			t.Fatalf("%s: %s, want dead", r, o.Disposition)
		}
		dead[r] = o
	}
	send("paused@example.org", testkit.SampleMail("Alice <alice@example.com>", "paused@example.org", "paused", "Hi.\r\n", time.Now(), "paused@example.com"))
	systest.WaitFor(t, "the paused mail to be held", func() bool { return w.Held() == 1 })

	creds := []string{"--nats", env.URL, "--nats-nkey", env.Keys.SeedFile(access.Operator)}
	listed := func(args ...string) []mailq.Entry {
		t.Helper()
		r := ok(t, "", nil, append(append(args, "--json"), creds...)...)
		var es []mailq.Entry
		for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
			if line == "" {
				continue
			}
			var e mailq.Entry
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("%s: %q: %v", strings.Join(args, " "), line, err)
			}
			es = append(es, e)
		}
		return es
	}
	all := listed("dead", "list")
	if len(all) != 3 {
		t.Fatalf("dead list: %+v, want 3 dead letters", all)
	}
	byID := map[string]mailq.Entry{}
	for _, e := range all {
		byID[e.ID] = e
	}
	for r, o := range dead {
		e, found := byID[o.ID]
		switch {
		case !found:
			t.Errorf("%s's dead letter (%s) not listed", r, o.ID)
		case r == "broken@example.org" && e.Class != "malformed":
			t.Errorf("%s: class %q, want malformed", r, e.Class)
		case r != "broken@example.org" && (e.Class != "transient" || e.Attempts != 2 || !strings.Contains(e.Reason, "downstream refuses")):
			t.Errorf("%s: %+v, want transient after 2 attempts, with the handler's reason", r, e)
		}
	}
	if got := listed("dead", "list", "--class", "transient"); len(got) != 2 {
		t.Errorf("dead list --class transient: %d entries, want 2", len(got))
	}
	if got := listed("dead", "list", "--reason", "DOWNSTREAM"); len(got) != 2 {
		t.Errorf("dead list --reason DOWNSTREAM: %d entries, want 2", len(got))
	}
	table := ok(t, "", nil, append([]string{"dead", "list"}, creds...)...)
	if !strings.Contains(table.stdout, "3 entries") || !strings.Contains(table.stdout, dead["broken@example.org"].ID) {
		t.Errorf("dead list table:\n%s", table.stdout)
	}
	shown := ok(t, "", nil, append(append([]string{"dead", "show"}, creds...), strconv.FormatUint(byID[dead["broken@example.org"].ID].Seq, 10))...)
	if !strings.Contains(shown.stdout, "no header section at all") || !strings.Contains(shown.stdout, contracts.HeaderDeadReason) {
		t.Errorf("dead show:\n%s", shown.stdout)
	}

	held := listed("held", "list")
	if len(held) != 1 || held[0].Reason != contracts.HoldPause || held[0].HeldSince.IsZero() || held[0].Envelope.RcptTo[0] != "paused@example.org" {
		t.Errorf("held list: %+v, want the paused mail with reason pause and its hold time", held)
	}

	fixed.Store(true)
	r := ok(t, "", nil, append([]string{"dead", "retry", "--all", "--class", "transient"}, creds...)...)
	if !strings.Contains(r.stdout, "2 retried") {
		t.Errorf("dead retry: %s", r.stdout)
	}
	for _, rcpt := range []string{"retry-0@example.org", "retry-1@example.org"} {
		o := outcomes.Nth(t, rcpt, 2)
		e := byID[dead[rcpt].ID]
		if o.Disposition != contracts.Processed || o.ID != mailq.RetryID(dead[rcpt].ID, e.Seq) || o.Attempt != 1 {
			t.Errorf("%s after the retry: %s as %s at attempt %d, want processed as %s at attempt 1", rcpt, o.Disposition, o.ID, o.Attempt, mailq.RetryID(dead[rcpt].ID, e.Seq))
		}
		if !o.Envelope.ReceivedAt.Equal(dead[rcpt].Envelope.ReceivedAt) {
			t.Errorf("%s: received %v after the retry, want the original %v", rcpt, o.Envelope.ReceivedAt, dead[rcpt].Envelope.ReceivedAt)
		}
	}
	if left := listed("dead", "list"); len(left) != 1 || left[0].ID != dead["broken@example.org"].ID {
		t.Errorf("after the retry the dead letters are %+v, want only the malformed one", left)
	}
	// A dead letter retried already is gone: retrying it again is an
	// error, not a second copy.
	again := run(t, "", nil, nil, append(append([]string{"dead", "retry"}, creds...), strconv.FormatUint(byID[dead["retry-0@example.org"].ID].Seq, 10))...)
	if again.code != 1 || !strings.Contains(again.stderr, "not found") {
		t.Errorf("retrying a retried dead letter: exit %d, %s", again.code, again.stderr)
	}
	if bad := run(t, "", nil, nil, append([]string{"dead", "retry", "--nope"}, creds...)...); bad.code != 2 {
		t.Errorf("bad flag: exit %d", bad.code)
	}
}
