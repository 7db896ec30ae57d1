package loadtest_test

import (
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/dev"
	"github.com/mailscope/mailscope/loadtest"
	"github.com/mailscope/mailscope/producer"
	"github.com/mailscope/mailscope/rules"
)

// TestGroupCommitThroughTheSystem runs the whole system with group commit
// on (the default; MinMsgs 2 so that small groups are batches too): mail stored in atomic batches must reach its outcome on every path a
// copy of it is made on: processed, dead-lettered (every 10th mail is not
// a mail), and held by mail.pause then resumed. Checks correctness only.
func TestGroupCommitThroughTheSystem(t *testing.T) {
	sys, err := dev.Start(t.Context(), dev.Config{
		DataDir: t.TempDir(), NATSPort: -1, SMTPAddr: "127.0.0.1:0", LMTPAddr: "127.0.0.1:0",
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
		Producer: producer.Config{Batch: producer.Batching{MinMsgs: 2}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sys.Close)
	kv, err := sys.JS.KeyValue(t.Context(), "mail_flags")
	if err != nil {
		t.Fatal(err)
	}
	// Hold every mail, then lift the pause once all are held.
	if _, err := kv.PutString(t.Context(), rules.FlagPause, "default 0 on\n"); err != nil {
		t.Fatal(err)
	}
	store := sys.Worker.Rules()
	for store.Snapshot().RuleSet(rules.FlagPause) == nil {
		select {
		case <-store.Changed():
		case <-time.After(wait):
			t.Fatal("pause rule not loaded")
		}
	}

	const clients, count, deadEvery = 16, 320, 10
	type result struct {
		rep loadtest.Report
		err error
	}
	done := make(chan result, 1)
	go func() {
		rep, err := loadtest.Run(t.Context(), loadtest.Config{
			SMTPAddr: sys.SMTPAddr, Clients: clients, NATSURL: sys.URL, NATSOptions: loadTestOptions(t, sys),
			Count: count, Size: 2 << 10, DeadEvery: deadEvery, Drain: wait,
		})
		done <- result{rep, err}
	}()
	healthy := count - count/deadEvery
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(wait)
	for sys.Worker.Held() < min(healthy, 256) {
		select {
		case <-tick.C:
		case r := <-done: // the run ended before the mail was all held
			t.Fatalf("load test over with %d mails held: %v (report: %v)", sys.Worker.Held(), r.err, r.rep.Err())
		case <-deadline:
			t.Fatalf("only %d mails held", sys.Worker.Held())
		}
	}
	if err := kv.Delete(t.Context(), rules.FlagPause); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if err := r.rep.Err(); err != nil {
		t.Fatal(err)
	}
	rep := r.rep
	if rep.Accepted != count || rep.Missing != 0 || rep.Dispositions[string(contracts.Processed)] != healthy ||
		rep.Dispositions[string(contracts.Dead)] != count/deadEvery {
		t.Errorf("accepted %d, missing %d, dispositions %v", rep.Accepted, rep.Missing, rep.Dispositions)
	}
	st := sys.Producer.PublishStats()
	if st.Batches == 0 || st.BatchedMails < 2 {
		t.Errorf("no atomic batch stored (%+v): the test did not exercise group commit", st)
	}
	// A batch may fail as a whole on a loaded machine (an attempt of 2s
	// without its answer); its mails are then tried again within the
	// publish timeout (Retries), and every one was accepted, as checked
	// above. A failed batch not retried would be a 451.
	if st.Failed != 0 && st.Retries == 0 {
		t.Errorf("%d batches failed, none retried", st.Failed)
	}
	t.Logf("group commit: %+v", st)
}
