//go:build faults

package faults

import (
	"context"
	"crypto"
	"math/rand/v2"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/keyserver"
	"github.com/mailscope/mailscope/testkit"
)

// sendLimit bounds the sending of one mode: a mail not answered 250 by
// then fails the mode. A safety net, never a measurement.
const sendLimit = 3 * time.Minute

// A mode is a kind of fault, injected again and again while its mails
// are sent.
type mode struct {
	name  string
	nodes int // nats-servers: 1, or a cluster of 3 (streams of 3 replicas)
	// gap is the mean number of mails answered between two faults, as a
	// fraction of the mode's mails: a fault comes gap/2 to 3gap/2 mails
	// after the previous one (see schedule).
	gap float64
	// fault injects one fault and returns once the system is whole
	// again (every killed process started again), saying what it did.
	fault func(s *system, tr *traffic, rng *rand.Rand) string
}

var modes = []mode{
	{name: "workers", nodes: 1, gap: 0.1, fault: killWorker},
	{name: "producer", nodes: 1, gap: 0.125, fault: killProducer},
	{name: "server", nodes: 1, gap: 0.2, fault: func(s *system, _ *traffic, rng *rand.Rand) string {
		return restartServer(s, 0, rng)
	}},
	{name: "leader", nodes: 3, gap: 0.25, fault: killLeader},
	{name: "mixed", nodes: 3, gap: 0.1, fault: func(s *system, tr *traffic, rng *rand.Rand) string {
		switch rng.IntN(4) {
		case 0:
			return killWorker(s, tr, rng)
		case 1:
			return killProducer(s, tr, rng)
		case 2:
			return restartServer(s, rng.IntN(len(s.servers)), rng)
		default:
			return killLeader(s, tr, rng)
		}
	}},
}

// killWorker SIGKILLs one of the two workers at once, whatever it is
// doing, and starts it again.
func killWorker(s *system, _ *traffic, rng *rand.Rand) string {
	w := s.workers[rng.IntN(len(s.workers))]
	s.restart(w, syscall.SIGKILL)
	return "SIGKILL " + w.name
}

// killProducer SIGKILLs the producer mid-transaction, as soon as a
// sender has written a mail and waits for DATA's reply, and starts it
// again on the same port.
func killProducer(s *system, tr *traffic, _ *rand.Rand) string {
	select {
	case <-tr.inData: // an old tick
	default:
	}
	mid := "mid-transaction"
	select {
	case <-tr.inData:
	case <-s.t.Context().Done():
	case <-time.After(time.Second): // every sender is between mails (or backing off)
		mid = "between transactions"
	}
	s.restart(s.producer, syscall.SIGKILL)
	return "SIGKILL producer " + mid
}

// restartServer stops nats-server i gracefully (SIGTERM) or kills it
// (SIGKILL), at random, and starts it again on its data directory.
func restartServer(s *system, i int, rng *rand.Rand) string {
	sig, how := syscall.SIGTERM, "SIGTERM"
	if rng.IntN(2) == 0 {
		sig, how = syscall.SIGKILL, "SIGKILL"
	}
	s.restartServer(i, sig)
	return how + " " + s.servers[i].name
}

// killLeader SIGKILLs the cluster node that leads the mail stream.
func killLeader(s *system, _ *traffic, _ *rand.Rand) string {
	return "SIGKILL " + s.killLeader()
}

// TestFaults runs every mode on a system of its own and checks that no
// mail answered 250 is lost and none has two outcomes.
func TestFaults(t *testing.T) {
	key, err := testkit.GenerateKey(testkit.AlgEd25519, 0)
	if err != nil {
		t.Fatal(err)
	}
	txt, err := testkit.TXTRecord(key)
	if err != nil {
		t.Fatal(err)
	}
	dns, err := keyserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dns.Close() })
	dns.SetTXT(testkit.DNSName(selector, signDomain), 3600, txt)
	t.Logf("seed %d (replay with -faults.seed %d)", seed, seed)
	for i, md := range modes {
		t.Run(md.name, func(t *testing.T) {
			runMode(t, md, rand.New(rand.NewPCG(uint64(seed), uint64(i))), dns, key)
		})
	}
}

// runMode sends the mode's mails with concurrent senders while it
// injects faults, then waits for the queues to drain and counts.
func runMode(t *testing.T, md mode, rng *rand.Rand, dns *keyserver.Server, key crypto.Signer) {
	began := time.Now()
	s := startSystem(t, md.nodes, dns)
	mails := makeMails(t, md.name, *mailsFlag, key, rng)
	sched := newSchedule(len(mails), int(md.gap*float64(len(mails))), rng)
	tr := newTraffic(s.smtp, mails, sched)
	ctx, cancel := context.WithTimeout(t.Context(), sendLimit)
	defer cancel()
	var wg sync.WaitGroup
	for range *sendersFlag {
		snd := &sender{tr: tr, rng: rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64()))}
		wg.Go(func() { snd.run(ctx) })
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	// Each fault once its point's mails are answered; the senders never
	// end before the last fault (they wait for it past its point), but a
	// run out of time does.
	faults := 0
	for _, at := range sched.points {
		for n := tr.answered.Load(); n < int64(at); n = tr.answered.Load() {
			select {
			case <-tr.progress:
			case <-done:
				t.Fatalf("the senders ended with %d mails answered, before fault %d at %d", n, faults+1, at)
			}
		}
		began := time.Now()
		what := md.fault(s, tr, rng)
		faults++
		sched.finish()
		t.Logf("fault %d after %d mails answered: %s (whole again after %.1fs)", faults, tr.answered.Load(), what, time.Since(began).Seconds())
	}
	<-done
	s.checkRunning()
	s.waitDrained()
	n := contracts.DefaultNames()
	r := tally(t, md.name, mails, s.readAll(n.OutcomeStream), s.readAll(n.DeadStream))
	r.faults, r.seconds = faults, time.Since(began).Seconds()
	results.Lock()
	results.list = append(results.list, r)
	results.Unlock()
	t.Logf("seed %d; %d dials failed, %d connections lost before the end of DATA\n%s%s",
		seed, tr.dialFailures.Load(), tr.dropped.Load(), tableHeader+"\n", r.row())
	r.check(t)
}
