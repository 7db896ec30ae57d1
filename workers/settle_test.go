package workers

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/provision"
	"github.com/mailscope/mailscope/systest"
)

// fakeMsg is a jetstream.Msg that records what settle does with it.
type fakeMsg struct {
	data      []byte
	hdr       nats.Header
	delivered uint64
	seq       uint64

	mu    sync.Mutex
	calls []string
	delay time.Duration
}

func (m *fakeMsg) record(call string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, call)
	return nil
}

func (m *fakeMsg) Calls() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.calls)
}

func (m *fakeMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{NumDelivered: m.delivered, Sequence: jetstream.SequencePair{Stream: m.seq}}, nil
}
func (m *fakeMsg) Data() []byte                       { return m.data }
func (m *fakeMsg) Headers() nats.Header               { return m.hdr }
func (m *fakeMsg) Subject() string                    { return "mail.incoming" }
func (m *fakeMsg) Reply() string                      { return "" }
func (m *fakeMsg) Ack() error                         { return m.record("ack") }
func (m *fakeMsg) DoubleAck(context.Context) error    { return m.record("ack") }
func (m *fakeMsg) Nak() error                         { return m.record("nak") }
func (m *fakeMsg) InProgress() error                  { return m.record("progress") }
func (m *fakeMsg) Term() error                        { return m.record("term") }
func (m *fakeMsg) TermWithReason(reason string) error { return m.record("term") }
func (m *fakeMsg) NakWithDelay(d time.Duration) error {
	m.mu.Lock()
	m.delay = d
	m.mu.Unlock()
	return m.record("nak-delay")
}

// settleBundle is a worker on a real, provisioned server, connected as
// the worker, and a second one whose outcome, dead-letter, held and
// resume subjects reach no stream, so that every store it makes fails.
// That one is no worker of the product (its subjects are outside what
// the worker role may publish on): it connects as the test's admin. js
// reads the streams as the operator.
type settleBundle struct {
	js            jetstream.JetStream
	worker, stuck *Worker
}

func setupSettle(t *testing.T) *settleBundle {
	t.Helper()
	env := systest.Start(t)
	if err := provision.Run(t.Context(), env.JetStream(t, access.Provisioner), provision.Config{}); err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		MaxAttempts: 3, BackoffBase: 10 * time.Millisecond, BackoffMax: time.Second, HoldDelay: 7 * time.Second,
		Name: "settle-test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	w, err := New(t.Context(), cfg, env.Conn(t, access.Worker))
	if err != nil {
		t.Fatal(err)
	}
	stuckCfg := cfg
	stuckCfg.Names = contracts.DefaultNames()
	stuckCfg.Names.OutcomePrefix, stuckCfg.Names.DeadSubject = "nowhere.outcome", "nowhere.dead"
	stuckCfg.Names.HeldSubject, stuckCfg.Names.ResumeSubject = "nowhere.held", "nowhere.resumed"
	stuck, err := New(t.Context(), stuckCfg, env.Admin(t).Conn())
	if err != nil {
		t.Fatal(err)
	}
	return &settleBundle{js: env.JetStream(t, access.Operator), worker: w, stuck: stuck}
}

// count returns the messages stored on subject.
func (b *settleBundle) count(t *testing.T, stream, subject string) uint64 {
	t.Helper()
	s, err := b.js.Stream(t.Context(), stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context(), jetstream.WithSubjectFilter(subject))
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// TestSettle walks every decision the settle path makes: given what
// happened to a delivery, the calls on the message and what is stored.
func TestSettle(t *testing.T) {
	b := setupSettle(t)
	raw := plainMail("bob@example.org", "settle", "hello")
	var (
		bad       = malformed("malformed mail: no From header field")
		temp      = transient("handler publish: connection refused")
		dnsDown   = dnsFailure("dkim temperror: d=example.com s=s1: timeout")
		refused   = Reject("no such list")
		slowDown  = RetryLater(errors.New("backend busy"), 600*time.Millisecond)
		tooLong   = RetryLater(errors.New("backend busy"), time.Hour)
		processed = func(id string) *contracts.Outcome {
			return &contracts.Outcome{Schema: contracts.OutcomeSchema, ID: id, Disposition: contracts.Processed,
				Auth: contracts.Auth{DKIM: []contracts.DKIMResult{}}, Flags: []contracts.FlagDecision{}}
		}
	)
	for _, tc := range []struct {
		name    string
		stuck   bool // every store fails
		step    step
		err     error
		attempt int
		out     bool // an outcome to store
		// want
		act    action
		kept   bool // settle keeps the delivery (a held mail in flight)
		calls  []string
		delay  time.Duration
		stored string // subject that gained a message: outcome, dead, held, resumed
	}{
		{name: "an outcome is stored, then the mail acked", step: stepProcessed, attempt: 1, out: true,
			act: actStore, calls: []string{"ack"}, stored: "outcome"},
		{name: "a handler's Reject stores its rejected outcome and acks", step: stepProcessed, err: refused, attempt: 1, out: true,
			act: actStore, calls: []string{"ack"}, stored: "outcome"},
		{name: "a transient failure is retried with backoff", step: stepProcessed, err: temp, attempt: 2,
			act: actRetry, calls: []string{"nak-delay"}, delay: 20 * time.Millisecond},
		{name: "a transient failure at the limit is dead-lettered and termed", step: stepProcessed, err: temp, attempt: 3,
			act: actDead, calls: []string{"term"}, stored: "dead"},
		{name: "RetryLater's delay replaces the backoff", step: stepProcessed, err: slowDown, attempt: 1,
			act: actRetry, calls: []string{"nak-delay"}, delay: 600 * time.Millisecond},
		{name: "RetryLater's delay is capped by BackoffMax", step: stepProcessed, err: tooLong, attempt: 1,
			act: actRetry, calls: []string{"nak-delay"}, delay: time.Second},
		{name: "malformed mail is dead at once", step: stepProcessed, err: bad, attempt: 1,
			act: actDead, calls: []string{"term"}, stored: "dead"},
		{name: "a broken envelope is dead at delivery", step: stepDelivered, err: bad, attempt: 1,
			act: actDead, calls: []string{"term"}, stored: "dead"},
		{name: "a mail delivered past twice the limit is dead unprocessed", step: stepDelivered, attempt: 7,
			act: actDead, calls: []string{"term"}, stored: "dead"},
		{name: "a mail at twice the limit is still processed", step: stepDelivered, attempt: 6, act: actProcess},
		{name: "a paused mail is parked and acked", step: stepProcessed, err: errHeld, attempt: 1,
			act: actHold, calls: []string{"ack"}, stored: "held"},
		{name: "a paused mail far past the limit is still parked", step: stepProcessed, err: errHeld, attempt: 100,
			act: actHold, calls: []string{"ack"}, stored: "held"},
		{name: "a DNS failure before the limit is retried", step: stepProcessed, err: dnsDown, attempt: 1,
			act: actRetry, calls: []string{"nak-delay"}, delay: 10 * time.Millisecond},
		{name: "a DNS failure at the limit is held, never dead", step: stepProcessed, err: dnsDown, attempt: 3,
			act: actHold, calls: []string{"ack"}, stored: "held"},
		{name: "a held mail no longer held is resumed", step: stepHeldChecked, attempt: 2,
			act: actResume, calls: []string{"ack"}, stored: "resumed"},
		{name: "a held mail gone malformed is resumed, for the main flow to dead-letter", step: stepHeldChecked, err: bad, attempt: 2,
			act: actResume, calls: []string{"ack"}, stored: "resumed"},
		{name: "a held mail whose decisions a handler refuses is resumed, for the main flow to retry and dead-letter", step: stepHeldChecked,
			err: refusedError{transient("no such endpoint")}, attempt: 2,
			act: actResume, calls: []string{"ack"}, stored: "resumed"},
		{name: "a held mail still paused is kept", step: stepHeldChecked, err: errHeld, attempt: 2, act: actKeep, kept: true},
		{name: "a held mail whose DNS is still silent is kept", step: stepHeldChecked, err: dnsDown, attempt: 5, act: actKeep},
		{name: "on shutdown a mail is handed back at once", step: stepStopping, attempt: 1,
			act: actRelease, calls: []string{"nak"}},

		// Stores that fail.
		{name: "an outcome not stored is retried", stuck: true, step: stepProcessed, attempt: 1, out: true,
			act: actStore, calls: []string{"nak-delay"}, delay: 10 * time.Millisecond},
		{name: "an outcome not stored on the last attempt is dead-lettered; that failing too, retried", stuck: true,
			step: stepProcessed, attempt: 3, out: true, act: actStore, calls: []string{"nak-delay"}, delay: 40 * time.Millisecond},
		{name: "a dead letter not stored is retried with backoff", stuck: true, step: stepProcessed, err: bad, attempt: 2,
			act: actDead, calls: []string{"nak-delay"}, delay: 20 * time.Millisecond},
		{name: "a held copy not stored is looked at again after HoldDelay", stuck: true, step: stepProcessed, err: errHeld, attempt: 1,
			act: actHold, calls: []string{"nak-delay"}, delay: 7 * time.Second},
		{name: "a resume not stored keeps the mail held", stuck: true, step: stepHeldChecked, attempt: 2, act: actResume, kept: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := b.worker
			if tc.stuck {
				w = b.stuck
			}
			id := "settle-" + t.Name()[len("TestSettle/"):]
			if len(id) > 60 {
				id = id[:60]
			}
			env := contracts.Envelope{ID: id, MailFrom: "alice@example.com", RcptTo: []string{"bob@example.org"},
				ReceivedAt: testDate, Protocol: "smtp"}
			msg := &fakeMsg{data: raw, hdr: nats.Header{}, delivered: uint64(tc.attempt), seq: 1}
			env.Encode(msg.hdr)
			d := w.newDelivery(msg)
			if d.attempt != tc.attempt {
				t.Fatalf("attempt %d, want %d", d.attempt, tc.attempt)
			}
			v := w.policy.decide(event{step: tc.step, err: tc.err, attempt: d.attempt})
			if v.act != tc.act {
				t.Fatalf("decide = %v, want %v", v.act, tc.act)
			}
			if v.act == actProcess {
				return
			}
			var out *contracts.Outcome
			if tc.out {
				out = processed(id)
			}
			before := map[string]uint64{
				"outcome": b.count(t, "MAIL_OUTCOMES", "mail.outcome.>"),
				"dead":    b.count(t, "MAIL_DEAD", "mail.dead"),
				"held":    b.count(t, "MAIL_HELD", "mail.held"),
				"resumed": b.count(t, "MAIL", "mail.resumed"),
			}
			left := w.settle(t.Context(), d, v, out)
			if got := msg.Calls(); !slices.Equal(got, tc.calls) {
				t.Errorf("calls %v, want %v", got, tc.calls)
			}
			if want := tc.act != actKeep && !tc.kept; left != want {
				t.Errorf("settle reported the mail gone %v, want %v", left, want)
			}
			if tc.delay != 0 && msg.delay != tc.delay {
				t.Errorf("nak delay %v, want %v", msg.delay, tc.delay)
			}
			after := map[string]uint64{
				"outcome": b.count(t, "MAIL_OUTCOMES", "mail.outcome.>"),
				"dead":    b.count(t, "MAIL_DEAD", "mail.dead"),
				"held":    b.count(t, "MAIL_HELD", "mail.held"),
				"resumed": b.count(t, "MAIL", "mail.resumed"),
			}
			for k := range before {
				want := before[k]
				if k == tc.stored {
					want++
				}
				if k == "outcome" && tc.stored == "dead" {
					want++ // a dead letter comes with its outcome
				}
				if after[k] != want {
					t.Errorf("%s: %d stored, want %d", k, after[k]-before[k], want-before[k])
				}
			}
		})
	}
}
