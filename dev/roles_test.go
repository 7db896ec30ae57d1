package dev_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/workers"
)

// violations connects as role r and returns the connection and a channel
// of the permission violations the server reports to it.
func (b *bundle) violations(t *testing.T, r access.Role) (*nats.Conn, <-chan error) {
	t.Helper()
	errs := make(chan error, 16)
	nc := b.conn(t, r, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) {
			errs <- err
		}
	}))
	return nc, errs
}

// wantRefused publishes on subject (a message, or a JetStream API
// request) and waits for the server to refuse it as a permission
// violation naming the subject.
func wantRefused(t *testing.T, r access.Role, nc *nats.Conn, errs <-chan error, subject string) {
	t.Helper()
	if err := nc.Publish(subject, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	wantViolation(t, r, nc, errs, `publish to "`+subject+`"`)
}

// wantViolation flushes nc (the server answers in order, so a violation
// of what was sent before is on its way) and waits for one that
// contains what.
func wantViolation(t *testing.T, r access.Role, nc *nats.Conn, errs <-chan error, what string) {
	t.Helper()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	deadline := time.After(wait)
	for {
		select {
		case err := <-errs:
			if strings.Contains(strings.ToLower(err.Error()), strings.ToLower(what)) {
				return
			}
		case <-deadline:
			t.Fatalf("%s: %s was not refused", r, what)
		}
	}
}

// TestEveryRoleIsRefusedWhatItShouldNotDo: against the running system,
// with rules in the flag bucket, each role's forbidden actions are
// refused by the server, and the system goes on working afterwards.
func TestEveryRoleIsRefusedWhatItShouldNotDo(t *testing.T) {
	b := setup(t, workers.Config{})
	b.putRules(t, rules.FlagHandler, "rcpt:^review@ 10 quarantine\n")

	if nc, err := nats.Connect(b.sys.URL); err == nil {
		nc.Close()
		t.Fatal("a client without credentials was let in")
	} else if !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
		t.Fatalf("anonymous client: %v, want an authorization violation", err)
	}

	refused := map[access.Role][]string{
		access.Producer: {
			"mail.outcome.processed", "mail.dead", "mail.resumed", "$KV.mail_flags.mail.handler",
			"$JS.API.STREAM.DELETE.MAIL", "$JS.API.CONSUMER.MSG.NEXT.MAIL.workers", "mail.command.status", "mail.reply",
		},
		access.Worker: {
			"mail.incoming", "$KV.mail_flags.mail.handler", "$KV.mail_flags.mail.dkim.verify",
			"$JS.API.STREAM.DELETE.MAIL", "$JS.API.STREAM.PURGE.MAIL", "$JS.API.CONSUMER.DELETE.MAIL.workers",
			"$JS.API.STREAM.UPDATE.MAIL", "$JS.API.STREAM.MSG.GET.MAIL", "$JS.API.STREAM.MSG.GET.MAIL_COMMANDS",
			"$JS.API.STREAM.PURGE.MAIL_COMMANDS",
		},
		access.Provisioner: {
			"mail.incoming", "$KV.mail_flags.mail.handler", "$JS.API.STREAM.DELETE.MAIL", "$JS.API.STREAM.PURGE.MAIL",
			"$JS.API.STREAM.MSG.GET.MAIL", "$JS.API.CONSUMER.MSG.NEXT.MAIL.workers",
		},
		access.Operator: {
			"$JS.API.STREAM.DELETE.MAIL", "$JS.API.STREAM.PURGE.MAIL", "$JS.API.STREAM.MSG.DELETE.MAIL",
			"$JS.API.STREAM.MSG.DELETE.MAIL_OUTCOMES", "$JS.API.STREAM.MSG.DELETE.KV_mail_flags", "$JS.API.STREAM.PURGE.MAIL_DEAD",
			"$JS.API.STREAM.UPDATE.MAIL", "$JS.API.CONSUMER.DELETE.MAIL.workers", "$JS.API.CONSUMER.MSG.NEXT.MAIL.workers",
			"$JS.API.CONSUMER.CREATE.MAIL.workers", "$JS.API.CONSUMER.DURABLE.CREATE.MAIL.workers",
			"$KV.mail_status.someone", "$JS.API.STREAM.MSG.DELETE.MAIL_COMMANDS", "$JS.API.STREAM.PURGE.MAIL_COMMANDS",
			"mail.command.status", "mail.reply",
		},
		access.Observer: {
			"mail.incoming", "$KV.mail_flags.mail.handler", "$JS.API.STREAM.MSG.GET.MAIL", "$JS.API.STREAM.MSG.GET.MAIL_DEAD",
			"$JS.API.DIRECT.GET.MAIL_OUTCOMES", "$JS.API.CONSUMER.CREATE.MAIL_OUTCOMES", "$JS.API.STREAM.DELETE.MAIL",
			"$JS.API.STREAM.MSG.GET.MAIL_COMMANDS", "$JS.API.CONSUMER.CREATE.MAIL_COMMANDS", "mail.command.status",
		},
		access.LoadTest: {
			"mail.incoming", "$KV.mail_flags.mail.handler", "$JS.API.STREAM.DELETE.MAIL", "$JS.API.STREAM.MSG.GET.MAIL",
		},
	}
	for r, subjects := range refused {
		t.Run(string(r), func(t *testing.T) {
			nc, errs := b.violations(t, r)
			for _, s := range subjects {
				wantRefused(t, r, nc, errs, s)
			}
			// No role but the producer and the worker reads a reply
			// meant for another: every inbox is its role's own.
			if _, err := nc.SubscribeSync("_INBOX_worker.>"); err != nil && r != access.Worker {
				t.Fatal(err)
			}
			if r != access.Worker {
				wantViolation(t, r, nc, errs, `subscription to "_INBOX_worker.>"`)
			}
		})
	}
	t.Run("observer reads no mail and no outcome", func(t *testing.T) {
		nc, errs := b.violations(t, access.Observer)
		for _, s := range []string{"mail.incoming", "mail.outcome.>", "mail.dead", "mail.command.>", "mail.reply", ">"} {
			if _, err := nc.SubscribeSync(s); err != nil {
				t.Fatal(err)
			}
			wantViolation(t, access.Observer, nc, errs, `subscription to "`+s+`"`)
		}
	})

	// After all that, the system still stands and takes mail.
	for _, s := range []string{"MAIL", "MAIL_HELD", "MAIL_OUTCOMES", "MAIL_DEAD", "MAIL_COMMANDS", "KV_mail_flags"} {
		if _, err := b.sys.JS.Stream(t.Context(), s); err != nil {
			t.Errorf("stream %s: %v", s, err)
		}
	}
	b.sendSMTP(t, mail(t, "review@example.org", "after the refusals", b.rsaKey, "example.com", "s1"), "review@example.org")
	if o := b.outcomes.First(t, "review@example.org"); o.Handler != "quarantine" {
		t.Errorf("handler %s, want quarantine (the rule in the bucket)", o.Handler)
	}
}

// TestOperatorAndObserverThroughTheCLI: what an operator and an observer
// do with the real nats CLI, each through a context of their role: the
// operator changes rules and reads everything but can delete or purge
// nothing; the observer sees lag and rules but no mail.
func TestOperatorAndObserverThroughTheCLI(t *testing.T) {
	b := setup(t, workers.Config{})
	op := newCLI(t, b)
	op.put(t, rules.FlagHandler, "rcpt:^review@ 10 quarantine\n")
	b.sendSMTP(t, mail(t, "review@example.org", "cli", b.rsaKey, "example.com", "s1"), "review@example.org")
	b.outcomes.First(t, "review@example.org")

	for _, args := range [][]string{
		{"kv", "history", "mail_flags", rules.FlagHandler},
		{"kv", "ls", "mail_status"},
		{"consumer", "info", "MAIL", "workers"},
		{"stream", "get", "MAIL_OUTCOMES", "1"},
		{"stream", "ls"},
	} {
		op.run(t, args...)
	}
	for _, args := range [][]string{
		{"stream", "rm", "-f", "MAIL"},
		{"stream", "purge", "-f", "MAIL_OUTCOMES"},
		{"stream", "rmm", "-f", "MAIL_OUTCOMES", "1"},
		{"consumer", "rm", "-f", "MAIL", "workers"},
		{"kv", "put", "mail_status", "someone", "forged"},
	} {
		wantCLIRefused(t, op, args...)
	}

	obs := newCLIAs(t, b, access.Observer)
	for _, args := range [][]string{
		{"consumer", "info", "MAIL", "workers"},
		{"stream", "info", "MAIL"},
		{"kv", "get", "mail_flags", rules.FlagHandler},
		{"kv", "ls", "mail_status"},
	} {
		obs.run(t, args...)
	}
	for _, args := range [][]string{
		{"stream", "get", "MAIL_OUTCOMES", "1"},
		{"kv", "put", "mail_flags", rules.FlagHandler, "default 0 discard"},
		{"stream", "rm", "-f", "MAIL_OUTCOMES"},
	} {
		wantCLIRefused(t, obs, args...)
	}
	if got := op.run(t, "kv", "get", "--raw", "mail_flags", rules.FlagHandler); got != "rcpt:^review@ 10 quarantine\n" {
		t.Errorf("mail.handler after the observer's put: %q", got)
	}
	if n := b.streamCount(t, "MAIL_OUTCOMES"); n != 1 {
		t.Errorf("%d outcomes stored, want the one (nothing purged or deleted)", n)
	}
}

// wantCLIRefused runs `nats ARGS...` and wants it to fail on the
// server's permission violation, not for some other reason. The CLI
// reports the violation at once but waits for an answer that cannot
// come until its --timeout, shortened here.
func wantCLIRefused(t *testing.T, c *cli, args ...string) {
	t.Helper()
	stdout, stderr, err := c.try(t, append([]string{"--timeout", "1s"}, args...)...)
	if err == nil {
		t.Errorf("nats %s succeeded: %s", strings.Join(args, " "), stdout)
		return
	}
	out := strings.ToLower(stdout + stderr)
	if !strings.Contains(out, "permissions violation") {
		t.Errorf("nats %s failed for another reason: %s%s", strings.Join(args, " "), stdout, stderr)
	}
}
