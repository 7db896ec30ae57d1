package workers_test

import (
	"bytes"
	"crypto"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/auth"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/dev"
	"github.com/mailscope/mailscope/keyserver"
	"github.com/mailscope/mailscope/producer"
	"github.com/mailscope/mailscope/provision"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/testkit"
	"github.com/mailscope/mailscope/workers"
)

// wait bounds every wait for a signal in these tests.
const wait = systest.Wait

// The worker configuration of these tests: few attempts, short backoff
// and short DNS timeouts, so that retries and dead letters happen fast.
var testWorker = workers.Config{
	MaxAttempts: 3,
	BackoffBase: 10 * time.Millisecond,
	BackoffMax:  50 * time.Millisecond,
	HoldDelay:   50 * time.Millisecond,
	// Failures are not cached: these tests count the queries of every
	// attempt and heal DNS between attempts.
	Auth: auth.Config{Timeout: 150 * time.Millisecond, FailureTTL: -1},
}

// bundle is a running system, the key server its worker asks, and what
// the tests need to drive it. The test puts mail on the mail stream as
// the producer (pub, produce) and reads streams and outcomes as the
// operator (the system's JS and Conn).
type bundle struct {
	sys      *dev.System
	keys     *keyserver.Server
	key      crypto.Signer // ed25519, published for every selector the tests use
	pub      *producer.Publisher
	produce  jetstream.JetStream // the producer's
	outcomes *systest.Outcomes
}

// setup starts the whole system as the dev command does, with DKIM keys
// served by a key server the test starts on loopback, and subscribes to
// every outcome before any mail is sent.
func setup(t *testing.T, wcfg workers.Config, pcfg provision.Config) *bundle {
	t.Helper()
	keys, err := keyserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keys.Close() })
	key, err := testkit.GenerateKey(testkit.AlgEd25519, 0)
	if err != nil {
		t.Fatal(err)
	}
	sys, err := dev.Start(t.Context(), dev.Config{
		DataDir:   t.TempDir(),
		NATSPort:  -1,
		SMTPAddr:  "127.0.0.1:0",
		LMTPAddr:  "127.0.0.1:0",
		DNSServer: keys.Addr(),
		Worker:    wcfg,
		Provision: pcfg,
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sys.Close)
	pnc, err := sys.Connect(access.Producer)
	if err != nil {
		t.Fatal(err)
	}
	produce, err := jetstream.New(pnc)
	if err != nil {
		t.Fatal(err)
	}
	return &bundle{
		sys:      sys,
		keys:     keys,
		key:      key,
		pub:      producer.NewPublisher(produce, "", 0),
		produce:  produce,
		outcomes: systest.NewOutcomes(t, sys.Conn, systest.ByID),
	}
}

// signed returns a mail to rcpt signed by example.com with selector sel,
// whose key it publishes.
func (b *bundle) signed(t *testing.T, sel, rcpt string) []byte {
	t.Helper()
	txt, err := testkit.TXTRecord(b.key)
	if err != nil {
		t.Fatal(err)
	}
	b.keys.SetTXT(testkit.DNSName(sel, "example.com"), 300, txt)
	raw := testkit.SampleMail("Alice <alice@example.com>", rcpt, "Hello "+sel, "Hello "+rcpt+".\r\n",
		time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), sel+"."+strings.ReplaceAll(rcpt, "@", ".")+"@example.com")
	out, err := testkit.Sign(raw, testkit.SignOptions{Domain: "example.com", Selector: sel, Key: b.key})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// publish puts raw on the mail stream with the given id, as the
// producer does, and returns once JetStream stored it.
func (b *bundle) publish(t *testing.T, id, rcpt string, raw []byte) {
	t.Helper()
	env := &contracts.Envelope{ID: id, MailFrom: "alice@example.com", RcptTo: []string{rcpt}, Protocol: "publish"}
	if _, err := b.pub.Publish(t.Context(), env, raw); err != nil {
		t.Fatalf("publish %s: %v", id, err)
	}
}

// streamMsgs returns the messages of stream whose header key has value.
func (b *bundle) streamMsgs(t *testing.T, stream, key, value string) []*jetstream.RawStreamMsg {
	t.Helper()
	s, err := b.sys.JS.Stream(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			continue // deleted
		}
		if m.Header.Get(key) == value {
			out = append(out, m)
		}
	}
	return out
}

// deadLetter waits for the dead letter of mail id (stored after its dead
// outcome) and returns it, failing unless there is exactly one.
func (b *bundle) deadLetter(t *testing.T, id string) *jetstream.RawStreamMsg {
	t.Helper()
	var dls []*jetstream.RawStreamMsg
	systest.WaitFor(t, "the dead letter of "+id, func() bool {
		dls = b.streamMsgs(t, "MAIL_DEAD", contracts.HeaderOriginalID, id)
		return len(dls) > 0
	})
	if len(dls) != 1 {
		t.Fatalf("%d dead letters of mail %s, want 1", len(dls), id)
	}
	return dls[0]
}

func TestWorkerFailureClasses(t *testing.T) {
	b := setup(t, testWorker, provision.Config{})

	t.Run("a key lookup that times out on every attempt is retried, then waits held until DNS answers", func(t *testing.T) {
		raw := b.signed(t, "timeout", "timeout@example.org")
		name := testkit.DNSName("timeout", "example.com")
		b.keys.SetFault(name, keyserver.FaultTimeout)
		b.publish(t, "timeout-1", "timeout@example.org", raw)
		systest.WaitFor(t, "the mail to be held after its last attempt", func() bool { return b.sys.Worker.Held() == 1 })
		if n := b.keys.Queries(name); n < 3 {
			t.Errorf("%d key queries for 3 attempts", n)
		}
		b.keys.SetFault(name, keyserver.FaultNone) // DNS answers again

		o := b.outcomes.First(t, "timeout-1")
		if o.Disposition != contracts.Processed || o.Attempt != 3 {
			t.Errorf("disposition %s reason %q attempt %d, want processed on attempt 3", o.Disposition, o.Reason, o.Attempt)
		}
		if len(o.Auth.DKIM) != 1 || o.Auth.DKIM[0].Result != contracts.ResultPass {
			t.Errorf("auth %+v, want the signature verified once DNS answered", o.Auth)
		}
		if len(o.Envelope.RcptTo) != 1 || o.Envelope.RcptTo[0] != "timeout@example.org" {
			t.Errorf("envelope %+v", o.Envelope)
		}
		if n := len(b.streamMsgs(t, "MAIL_DEAD", contracts.HeaderOriginalID, "timeout-1")); n != 0 {
			t.Errorf("%d dead letters: a DNS outage must never fail a mail for good", n)
		}
	})

	t.Run("a key server that fails once and heals lets the mail through on a retry", func(t *testing.T) {
		raw := b.signed(t, "servfail", "servfail@example.org")
		name := testkit.DNSName("servfail", "example.com")
		b.keys.SetFault(name, keyserver.FaultServFail)
		b.publish(t, "servfail-1", "servfail@example.org", raw)
		systest.WaitFor(t, "the first key query", func() bool { return b.keys.Queries(name) >= 1 })
		b.keys.SetFault(name, keyserver.FaultNone)

		o := b.outcomes.First(t, "servfail-1")
		if o.Disposition != contracts.Processed || o.Attempt < 2 {
			t.Fatalf("disposition %s (reason %q) attempt %d, want processed on a retry", o.Disposition, o.Reason, o.Attempt)
		}
		if len(o.Auth.DKIM) != 1 || o.Auth.DKIM[0].Result != contracts.ResultPass {
			t.Errorf("DKIM %+v, want pass", o.Auth.DKIM)
		}
		if dls := b.streamMsgs(t, "MAIL_DEAD", contracts.HeaderOriginalID, "servfail-1"); len(dls) != 0 {
			t.Errorf("a mail that was processed has %d dead letters", len(dls))
		}
	})

	t.Run("a broken envelope is dead-lettered at once as malformed", func(t *testing.T) {
		raw := b.signed(t, "envelope", "nobody@example.org")
		h := nats.Header{}
		h.Set(contracts.HeaderMsgID, "broken-envelope-1")
		h.Set(contracts.HeaderMailFrom, "alice@example.com")
		h.Set(contracts.HeaderReceivedAt, time.Now().UTC().Format(time.RFC3339Nano))
		h.Set(contracts.HeaderProtocol, "publish")
		// No Mailscope-Rcpt-To.
		if _, err := b.produce.PublishMsg(t.Context(), &nats.Msg{Subject: "mail.incoming", Header: h, Data: raw}); err != nil {
			t.Fatal(err)
		}

		o := b.outcomes.First(t, "broken-envelope-1")
		if o.Disposition != contracts.Dead || o.Attempt != 1 || !strings.Contains(o.Reason, contracts.HeaderRcptTo) {
			t.Errorf("disposition %s reason %q attempt %d, want dead on attempt 1 naming %s",
				o.Disposition, o.Reason, o.Attempt, contracts.HeaderRcptTo)
		}
		if o.Envelope.MailFrom != "alice@example.com" {
			t.Errorf("outcome envelope %+v, want what could be read of it", o.Envelope)
		}
		dl := b.deadLetter(t, "broken-envelope-1")
		if c, a := dl.Header.Get(contracts.HeaderDeadClass), dl.Header.Get(contracts.HeaderAttempts); c != "malformed" || a != "1" {
			t.Errorf("dead letter class %q attempts %q, want malformed after 1", c, a)
		}
		if r := dl.Header.Get(contracts.HeaderDeadReason); !strings.Contains(r, "bad envelope") {
			t.Errorf("dead letter reason %q", r)
		}
		if !bytes.Equal(dl.Data, raw) {
			t.Error("dead letter data is not the raw mail")
		}
		if n := b.keys.Queries(testkit.DNSName("envelope", "example.com")); n != 0 {
			t.Errorf("%d key queries for a mail with a broken envelope", n)
		}
	})

	// Each mail ended in exactly one stored outcome, and nothing is
	// left in the work queue.
	systest.WaitDrained(t, b.sys.JS)
	for _, id := range []string{"timeout-1", "servfail-1", "broken-envelope-1"} {
		if n := len(b.streamMsgs(t, "MAIL_OUTCOMES", nats.MsgIdHdr, id)); n != 1 {
			t.Errorf("%d stored outcomes of mail %s, want 1", n, id)
		}
	}
}

// TestSlowMailNotRedelivered: a mail whose processing outlasts the
// consumer's AckWait many times over is kept by its worker (progress is
// reported) and processed once.
func TestSlowMailNotRedelivered(t *testing.T) {
	wcfg := testWorker
	// Processing takes a DNS timeout: five AckWaits, with progress sent
	// every 100ms (a third of AckWait), slack enough for a loaded machine.
	wcfg.Auth.Timeout = 1500 * time.Millisecond
	b := setup(t, wcfg, provision.Config{AckWait: 300 * time.Millisecond})
	raw := b.signed(t, "slowonce", "slowonce@example.org")
	name := testkit.DNSName("slowonce", "example.com")
	b.keys.SetFault(name, keyserver.FaultTimeout)
	b.publish(t, "slowonce-1", "slowonce@example.org", raw)
	systest.WaitFor(t, "the first key query", func() bool { return b.keys.Queries(name) >= 1 })
	b.keys.SetFault(name, keyserver.FaultNone)
	o := b.outcomes.First(t, "slowonce-1")
	if o.Disposition != contracts.Processed || o.Attempt != 1 {
		t.Errorf("%s at attempt %d, want processed at the first", o.Disposition, o.Attempt)
	}
	systest.WaitDrained(t, b.sys.JS)
	cons, err := b.sys.JS.Consumer(t.Context(), "MAIL", "workers")
	if err != nil {
		t.Fatal(err)
	}
	ci, err := cons.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// One mail on a fresh consumer: one delivery unless it was redelivered.
	if ci.Delivered.Consumer != 1 {
		t.Errorf("%d deliveries of one mail: it was redelivered while its worker processed it", ci.Delivered.Consumer)
	}
	if got := b.outcomes.Wait(t, "slowonce-1", 1); len(got) != 1 {
		t.Errorf("%d outcome events published for one slow mail, want 1 (it was redelivered)", len(got))
	}
}

// TestRedeliveryOneOutcome makes the server redeliver a mail while a
// worker still processes it (the key lookup outlasts the consumer's
// AckWait), so that it is processed and its outcome published more than
// once; the outcome stream must still hold exactly one outcome.
func TestRedeliveryOneOutcome(t *testing.T) {
	wcfg := testWorker
	wcfg.MaxAttempts = 100 // this test is about duplicates, not the limit
	// The first lookup hangs for a second: twenty AckWaits for the server
	// to redeliver the mail while it is being processed.
	wcfg.Auth.Timeout = time.Second
	// A worker that stalls: it reports progress too rarely to keep the
	// mail, as a stuck or partitioned worker would.
	wcfg.ProgressInterval = time.Hour
	b := setup(t, wcfg, provision.Config{AckWait: 50 * time.Millisecond})

	// A plain mail first: one outcome, stored once.
	b.publish(t, "plain-1", "plain@example.org", b.signed(t, "plain", "plain@example.org"))
	if o := b.outcomes.First(t, "plain-1"); o.Disposition != contracts.Processed {
		t.Fatalf("plain mail: %s (%s)", o.Disposition, o.Reason)
	}

	// The first key query goes unanswered; the retry of the lookup, a
	// timeout (300ms) later, is answered. Meanwhile the mail is
	// redelivered every 50ms.
	raw := b.signed(t, "slow", "slow@example.org")
	name := testkit.DNSName("slow", "example.com")
	b.keys.SetFault(name, keyserver.FaultTimeout)
	b.publish(t, "slow-1", "slow@example.org", raw)
	systest.WaitFor(t, "the first key query", func() bool { return b.keys.Queries(name) >= 1 })
	b.keys.SetFault(name, keyserver.FaultNone)

	published := b.outcomes.Wait(t, "slow-1", 2)
	for _, o := range published {
		if o.Disposition != contracts.Processed || o.Auth.DKIM[0].Result != contracts.ResultPass {
			t.Errorf("outcome of attempt %d: %s DKIM %+v", o.Attempt, o.Disposition, o.Auth.DKIM)
		}
	}
	systest.WaitDrained(t, b.sys.JS)
	for _, id := range []string{"plain-1", "slow-1"} {
		stored := b.streamMsgs(t, "MAIL_OUTCOMES", nats.MsgIdHdr, id)
		if len(stored) != 1 {
			t.Errorf("%d stored outcomes of mail %s, want 1", len(stored), id)
		}
	}
	if n := len(b.streamMsgs(t, "MAIL_DEAD", contracts.HeaderOriginalID, "slow-1")); n != 0 {
		t.Errorf("%d dead letters of a processed mail", n)
	}
	t.Logf("mail slow-1: %d outcome events published, 1 stored", len(b.outcomes.Wait(t, "slow-1", 2)))
}

// TestConsumerDeletedStopsWorker: a worker whose consumer is deleted
// stops with an error and reports not ready, instead of idling as if
// healthy while it takes no mail. No role of the system may delete the
// workers' consumer, so the test's admin does, on a server of the test's
// own; provisioning and the worker connect as their roles.
func TestConsumerDeletedStopsWorker(t *testing.T) {
	env := systest.Start(t)
	if err := provision.Run(t.Context(), env.JetStream(t, access.Provisioner), provision.Config{}); err != nil {
		t.Fatal(err)
	}
	wcfg := testWorker
	wcfg.Name, wcfg.Logger = "test-worker", slog.New(slog.NewTextHandler(io.Discard, nil))
	w, err := workers.New(t.Context(), wcfg, env.Conn(t, access.Worker))
	if err != nil {
		t.Fatal(err)
	}
	stopped := make(chan error, 1)
	go func() { stopped <- w.Run(t.Context()) }()
	systest.WaitFor(t, "the worker to be ready", w.Ready)

	if err := env.Admin(t).DeleteConsumer(t.Context(), "MAIL", "workers"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-stopped:
		if err == nil || !strings.Contains(err.Error(), "workers") {
			t.Errorf("worker stopped with %v, want an error naming the consumer", err)
		}
	case <-time.After(wait):
		t.Fatal("worker kept running without its consumer")
	}
	if w.Ready() {
		t.Error("worker still reports ready")
	}
}
