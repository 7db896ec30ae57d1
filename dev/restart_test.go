package dev_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/workers"
)

// floodSize is how many updates of one key the restart test puts in a row.
const floodSize = 200

// recoverWithin bounds the time from the worker's reconnection to the
// rules put across a restart being in force. nats.go's KV watcher left to
// itself notices a restarted server only by missed heartbeats, 10 to 20
// seconds later, and the worker decided mail by stale rules meanwhile;
// the worker re-watches on reconnect (rules.Store.Rewatch), which takes
// milliseconds. The bound is loose for slow machines, tight enough to
// catch the heartbeat path.
const recoverWithin = 8 * time.Second

// TestRulesPutAcrossNATSRestart restarts the nats-server under the running
// system and puts rules while the worker is still reconnecting (a flood
// of updates to one key, a change and a delete of others), then right
// after it is back, before its watcher has caught up. Every change must
// be in force afterwards and decide the next mail, and every mail, sent
// before or after the restart, must have exactly one outcome.
func TestRulesPutAcrossNATSRestart(t *testing.T) {
	b := setup(t, workers.Config{Release: "e2e-release"})
	putAllRules(t, b)
	url := b.sys.URL
	operator, err := b.sys.Credentials.Options(access.Operator)
	if err != nil {
		t.Fatal(err)
	}

	// Mail before the restart: not waited for, so some is in flight
	// when the server goes away.
	const before = 5
	for i := range before {
		rcpt := fmt.Sprintf("before-%d@example.org", i)
		b.sendSMTP(t, mail(t, rcpt, "before the restart", b.rsaKey, "example.com", "s1"), rcpt)
	}

	// The flood's last value is distinct; each one before it routes
	// flood@ elsewhere, so a stale value shows in the outcome.
	lastHandler := "rcpt:^flood@ 60 discard\n" + handlerRules
	const newReject = "mail_header:Subject:(?i)free\\smoney 10 spam subject, after the restart\n"
	type puts struct {
		handler, reject, dryRunDel uint64
		at                         time.Time
		err                        error
	}
	during := make(chan puts, 1)
	start := time.Now()
	err = b.sys.RestartNATS(t.Context(), func() {
		// The server is down. This operator's client connects the moment
		// it is back, often before the worker's (whose reconnect wait is
		// 100ms plus jitter), and puts at once.
		go func() {
			var p puts
			defer func() { during <- p }()
			nc, err := nats.Connect(url, append(operator, nats.RetryOnFailedConnect(true), nats.ReconnectWait(5*time.Millisecond), nats.MaxReconnects(-1))...)
			if err != nil {
				p.err = err
				return
			}
			defer nc.Close()
			ctx, cancel := context.WithTimeout(t.Context(), wait)
			defer cancel()
			kv, err := lookupBucket(ctx, nc, "mail_flags")
			if err != nil {
				p.err = err
				return
			}
			for i := range floodSize - 1 {
				text := fmt.Sprintf("# flood %d\nrcpt:^flood@ 60 quarantine\n", i)
				if _, err := kv.PutString(ctx, rules.FlagHandler, text); err != nil {
					p.err = fmt.Errorf("flood put %d: %w", i, err)
					return
				}
			}
			if p.handler, err = kv.PutString(ctx, rules.FlagHandler, lastHandler); err != nil {
				p.err = err
				return
			}
			if p.reject, err = kv.PutString(ctx, rules.FlagReject, newReject); err != nil {
				p.err = err
				return
			}
			if err := kv.Delete(ctx, rules.FlagDryRun); err != nil {
				p.err = err
				return
			}
			p.dryRunDel = p.reject + 1
			p.at = time.Now()
		}()
	})
	if err != nil {
		t.Fatal(err)
	}
	reconnected := time.Now()
	p := <-during
	if p.err != nil {
		t.Fatalf("puts while the worker was reconnecting: %v", p.err)
	}
	if !p.at.Before(reconnected) {
		t.Logf("note: the puts ended %v after every client was back, not before", p.at.Sub(reconnected))
	}

	// Right after the worker is back, before its watcher has caught up.
	pauseRev, err := b.kv.PutString(t.Context(), rules.FlagPause, "rcpt:@paused\\.invalid$ 10 true\nrcpt:^never@ 5 true\n")
	if err != nil {
		t.Fatal(err)
	}
	if rs := b.sys.Worker.Rules().Snapshot().RuleSet(rules.FlagHandler); rs != nil && rs.Revision >= p.handler {
		t.Logf("note: the worker's watcher had caught up by the time the last put was made")
	}

	b.waitStore(t, "every rule put across the restart", func(s *rules.Store) bool {
		snap := s.Snapshot()
		h, r, pz := snap.RuleSet(rules.FlagHandler), snap.RuleSet(rules.FlagReject), snap.RuleSet(rules.FlagPause)
		return h != nil && h.Revision == p.handler && r != nil && r.Revision == p.reject &&
			pz != nil && pz.Revision == pauseRev && snap.RuleSet(rules.FlagDryRun) == nil
	})
	inForce := time.Since(reconnected)
	t.Logf("server down to every client reconnected: %v; rules put across the restart in force %v later",
		reconnected.Sub(start).Round(time.Millisecond), inForce.Round(time.Millisecond))
	if inForce > recoverWithin {
		t.Errorf("rules put across the restart took %v after the worker reconnected to be in force, want under %v: "+
			"the worker decided mail by stale rules meanwhile", inForce, recoverWithin)
	}
	if probs := b.sys.Worker.Rules().Problems(); len(probs) != 0 {
		t.Errorf("rule problems after the restart: %+v", probs)
	}

	// The outcome stream is the record: read it whole, after the restart.
	outcomes := systest.NewStoredOutcomes(t, b.sys.JS, "MAIL_OUTCOMES", systest.ByRcpt)

	// Mail after the restart is decided by the rules put across it.
	rsa := func(rcpt, subject string) {
		b.sendSMTP(t, mail(t, rcpt, subject, b.rsaKey, "example.com", "s1"), rcpt)
	}
	rsa("flood@example.org", "after the restart")
	rsa("spam@example.org", "FREE money")
	rsa("dry@example.org", "after the restart")

	o := outcomes.First(t, "flood@example.org")
	wantDisposition(t, o, contracts.Discarded, "discard")
	wantDecision(t, o, rules.FlagHandler, decision{"discard", p.handler, 1})
	wantDecision(t, o, rules.FlagPause, decision{"false", 0, 0})
	o = outcomes.First(t, "spam@example.org")
	wantDisposition(t, o, contracts.Rejected, "")
	wantDecision(t, o, rules.FlagReject, decision{"spam subject, after the restart", p.reject, 1})
	o = outcomes.First(t, "dry@example.org")
	wantDisposition(t, o, contracts.Processed, "publish")
	wantDecision(t, o, rules.FlagDryRun, decision{"false", 0, 0})
	wantDecision(t, o, rules.FlagHandler, decision{"publish", p.handler, 12})
	if o.DryRun {
		t.Errorf("dry run after its rules were deleted")
	}

	// Nothing lost, nothing doubled.
	for i := range before {
		rcpt := fmt.Sprintf("before-%d@example.org", i)
		if o := outcomes.First(t, rcpt); o.Disposition != contracts.Processed {
			t.Errorf("mail sent before the restart: disposition %s (%s)", o.Disposition, o.Reason)
		}
	}
	systest.WaitDrained(t, b.sys.JS)
	const sent = before + 3
	if n := b.streamCount(t, "MAIL_OUTCOMES"); n != sent {
		t.Errorf("%d outcome events for %d mails", n, sent)
	}
	for rcpt, got := range outcomes.All() {
		if len(got) != 1 {
			t.Errorf("%d outcomes for the mail to %s", len(got), rcpt)
		}
	}
}

// lookupBucket binds to a KV bucket, retrying until JetStream answers:
// right after a restart the server may take connections before its
// JetStream API is up.
func lookupBucket(ctx context.Context, nc *nats.Conn, bucket string) (jetstream.KeyValue, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		kv, err := js.KeyValue(ctx, bucket)
		if err == nil {
			return kv, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("bucket %s: %w (last error: %v)", bucket, ctx.Err(), err)
		case <-tick.C:
		}
	}
}
