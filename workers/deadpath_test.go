package workers

import (
	"io"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/provision"
	"github.com/mailscope/mailscope/systest"
)

// deadPathBundle is a worker of the worker role on a provisioned server
// whose dead-letter stream holds at most 1 MiB, and the test's admin to
// fill and empty it.
type deadPathBundle struct {
	w     *Worker
	admin jetstream.JetStream
}

func setupDeadPath(t *testing.T) *deadPathBundle {
	t.Helper()
	env := systest.Start(t)
	if err := provision.Run(t.Context(), env.JetStream(t, access.Provisioner), provision.Config{DeadMaxBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	w, err := New(t.Context(), Config{
		MaxAttempts: 3, BackoffBase: 10 * time.Millisecond, BackoffMax: time.Second,
		Name: "dead-path-test", Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, env.Conn(t, access.Worker))
	if err != nil {
		t.Fatal(err)
	}
	return &deadPathBundle{w: w, admin: env.Admin(t)}
}

// delivery returns delivery number attempt of the mail id.
func (b *deadPathBundle) delivery(id string, attempt int) (*delivery, *fakeMsg) {
	env := contracts.Envelope{ID: id, MailFrom: "alice@example.com", RcptTo: []string{"bob@example.org"},
		ReceivedAt: testDate, Protocol: "smtp"}
	msg := &fakeMsg{data: plainMail("bob@example.org", "dead path", "hello"), hdr: nats.Header{}, delivered: uint64(attempt), seq: 1}
	env.Encode(msg.hdr)
	return b.w.newDelivery(msg), msg
}

// records returns what is stored for the mail id: its outcome events'
// dispositions and its dead letters' reasons.
func (b *deadPathBundle) records(t *testing.T, id string) (dispositions, deadReasons []string) {
	t.Helper()
	for _, s := range []string{"MAIL_OUTCOMES", "MAIL_DEAD"} {
		stream, err := b.admin.Stream(t.Context(), s)
		if err != nil {
			t.Fatal(err)
		}
		info, err := stream.Info(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
			m, err := stream.GetMsg(t.Context(), seq)
			if err != nil || m.Header.Get(nats.MsgIdHdr) != id {
				continue
			}
			if s == "MAIL_DEAD" {
				deadReasons = append(deadReasons, m.Header.Get(contracts.HeaderDeadReason))
			} else {
				dispositions = append(dispositions, m.Subject[len("mail.outcome."):])
			}
		}
	}
	return dispositions, deadReasons
}

func processedOutcome(id string) *contracts.Outcome {
	return &contracts.Outcome{Schema: contracts.OutcomeSchema, ID: id, Disposition: contracts.Processed,
		Auth: contracts.Auth{DKIM: []contracts.DKIMResult{}}, Flags: []contracts.FlagDecision{}}
}

// TestDeadPathCrashPoints: a failure or crash at any point of the dead
// path, or of the outcome's store, leaves exactly one of {an outcome, a
// dead outcome and its dead letter}: the first outcome stored under the
// mail id decides, and the worker looks it up (as the worker role, whose
// permission is that one lookup) when its own publish is a duplicate.
func TestDeadPathCrashPoints(t *testing.T) {
	b := setupDeadPath(t)
	temp := transient("handler publish: connection refused")
	dead := verdict{act: actDead, cause: temp}
	store := verdict{act: actStore}
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, id string) (calls []string)
		// want
		dispositions []string
		deadLetters  int
		reason       string
	}{
		{
			name: "the dead letter not stored after its outcome: the redelivery, processed, completes the dead path",
			run: func(t *testing.T, id string) []string {
				// The earlier attempt stored the dead outcome and ended.
				first := &contracts.Outcome{Schema: contracts.OutcomeSchema, ID: id, Disposition: contracts.Dead, Reason: "first attempt's reason", Attempt: 3,
					Auth: contracts.Auth{DKIM: []contracts.DKIMResult{}}, Flags: []contracts.FlagDecision{}}
				if _, err := b.w.publishOutcome(t.Context(), first); err != nil {
					t.Fatal(err)
				}
				d, msg := b.delivery(id, 4)
				b.w.settle(t.Context(), d, store, processedOutcome(id))
				return msg.Calls()
			},
			dispositions: []string{"dead"}, deadLetters: 1, reason: "first attempt's reason",
		},
		{
			name: "the dead letter not stored after its outcome: the redelivery, dead again, stores it once",
			run: func(t *testing.T, id string) []string {
				d, _ := b.delivery(id, 3)
				if err := b.w.settleDeadOutcomeOnly(t, d, temp); err != nil {
					t.Fatal(err)
				}
				d, msg := b.delivery(id, 4)
				b.w.settle(t.Context(), d, dead, nil)
				// Its term lost: once more.
				d, msg2 := b.delivery(id, 5)
				b.w.settle(t.Context(), d, dead, nil)
				return append(msg.Calls(), msg2.Calls()...)
			},
			dispositions: []string{"dead"}, deadLetters: 1,
		},
		{
			name: "processed, its ack lost: the redelivery, dead at the limit, gets no dead letter",
			run: func(t *testing.T, id string) []string {
				d, msg := b.delivery(id, 1)
				b.w.settle(t.Context(), d, store, processedOutcome(id))
				d, msg2 := b.delivery(id, 3)
				b.w.settle(t.Context(), d, dead, nil)
				return append(msg.Calls(), msg2.Calls()...)
			},
			dispositions: []string{"processed"},
		},
		{
			name: "an outcome stored whose ack was lost: the retry is a duplicate, acked",
			run: func(t *testing.T, id string) []string {
				data, err := encodeOutcome(processedOutcome(id), b.w.maxOutcome)
				if err != nil {
					t.Fatal(err)
				}
				// Stored; its acknowledgement never reached the worker.
				if _, err := b.admin.PublishMsg(t.Context(), &nats.Msg{Subject: "mail.outcome.processed", Data: data}, jetstream.WithMsgID(id)); err != nil {
					t.Fatal(err)
				}
				d, msg := b.delivery(id, 2)
				b.w.settle(t.Context(), d, store, processedOutcome(id))
				return msg.Calls()
			},
			dispositions: []string{"processed"},
		},
		{
			name: "a dead letter store that fails once: retried, then stored once with its one dead outcome",
			run: func(t *testing.T, id string) []string {
				// The dead-letter stream is full: the store is refused.
				for _, size := range []int{64 << 10, 1 << 10, 64} {
					for {
						if _, err := b.admin.Publish(t.Context(), "mail.dead", make([]byte, size)); err != nil {
							break
						}
					}
				}
				d, msg := b.delivery(id, 3)
				b.w.settle(t.Context(), d, dead, nil)
				if err := b.purgeDead(t); err != nil {
					t.Fatal(err)
				}
				d, msg2 := b.delivery(id, 4)
				b.w.settle(t.Context(), d, store, processedOutcome(id))
				return append(msg.Calls(), msg2.Calls()...)
			},
			dispositions: []string{"dead"}, deadLetters: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := contracts.ContentID("", []string{tc.name}, nil)
			calls := tc.run(t, id)
			disp, reasons := b.records(t, id)
			if !slices.Equal(disp, tc.dispositions) || len(reasons) != tc.deadLetters {
				t.Errorf("stored outcomes %v and %d dead letters (%q), want %v and %d; calls %v",
					disp, len(reasons), reasons, tc.dispositions, tc.deadLetters, calls)
			}
			if tc.reason != "" && (len(reasons) != 1 || reasons[0] != tc.reason) {
				t.Errorf("dead letter reasons %q, want %q", reasons, tc.reason)
			}
			t.Logf("calls %v", calls)
			if len(calls) == 0 || (tc.deadLetters == 1) != (calls[len(calls)-1] == "term") {
				t.Errorf("calls %v: want the last one a term exactly when there is a dead letter", calls)
			}
		})
	}
}

// settleDeadOutcomeOnly stores d's dead outcome as the dead path's first
// step does, and no dead letter: an attempt that crashed in between.
func (w *Worker) settleDeadOutcomeOnly(t *testing.T, d *delivery, cause error) error {
	t.Helper()
	_, err := w.publishOutcome(t.Context(), &contracts.Outcome{Schema: contracts.OutcomeSchema, ID: d.env.ID, Disposition: contracts.Dead,
		Reason: cause.Error(), Attempt: d.attempt, Auth: contracts.Auth{DKIM: []contracts.DKIMResult{}}, Flags: []contracts.FlagDecision{}})
	return err
}

// purgeDead empties the dead-letter stream (the test's admin).
func (b *deadPathBundle) purgeDead(t *testing.T) error {
	t.Helper()
	s, err := b.admin.Stream(t.Context(), "MAIL_DEAD")
	if err != nil {
		return err
	}
	return s.Purge(t.Context())
}
