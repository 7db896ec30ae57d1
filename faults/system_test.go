//go:build faults

package faults

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/keyserver"
	"github.com/mailscope/mailscope/systest"
)

// ackWait is the consumers' AckWait: a mail a killed worker held comes
// back after it. Shorter than the default (30s) to keep the suite's
// drains short; long beside a mail's processing (milliseconds).
const ackWait = "5s"

// system is the whole system as processes of the binary: one
// nats-server or a cluster of three, the producer and two workers, and
// the DNS server the workers look DKIM keys up in (in the suite's
// process, so that it outlives every fault).
type system struct {
	t       *testing.T
	procs   *procs
	keys    *access.Keyring
	servers []*proc
	urls    string // every server's client URL, comma-separated
	// smtp is the producer's SMTP address, the same after every restart.
	smtp     string
	producer *proc
	workers  []*proc
	// observer and operator are the suite's own connections, as those
	// roles: stream state, and outcomes and dead letters.
	observer, operator jetstream.JetStream
}

// clusterName is the cluster's name in the cluster modes.
const clusterName = "faults"

// startSystem starts the system with nodes servers (1, or 3 for a
// cluster whose streams have 3 replicas), provisions it and waits until
// the producer listens and both workers take mail.
func startSystem(t *testing.T, nodes int, dns *keyserver.Server) *system {
	t.Helper()
	dir := t.TempDir()
	s := &system{t: t, procs: newProcs(t)}
	var err error
	// Every node reads the same seeds: made here, before any starts.
	if s.keys, err = access.OpenKeyring(filepath.Join(dir, "credentials"), append(access.Roles(), access.LoadTest)...); err != nil {
		t.Fatal(err)
	}
	ports := systest.FreePorts(t, 2*nodes+1)
	var urls, routes []string
	for i := range nodes {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", ports[i]))
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", ports[nodes+i]))
	}
	s.urls = strings.Join(urls, ",")
	s.smtp = "127.0.0.1:" + strconv.Itoa(ports[2*nodes])
	for i := range nodes {
		args := []string{"server", "--host", "127.0.0.1", "--port", strconv.Itoa(ports[i]),
			"--credentials-dir", s.keys.Dir()}
		name := "server"
		if nodes > 1 {
			name = fmt.Sprintf("n%d", i+1)
			args = append(args, "--name", name, "--cluster-name", clusterName,
				"--cluster", fmt.Sprintf("127.0.0.1:%d", ports[nodes+i]), "--routes", strings.Join(routes, ","))
		}
		args = append(args, "--data-dir", filepath.Join(dir, name))
		s.servers = append(s.servers, newProc(name, "nats://", args...))
	}
	// The nodes of a cluster wait for each other: start them all, then
	// wait for each.
	errs := make(chan error, nodes)
	for _, p := range s.servers {
		go func() { _, err := s.procs.add(p); errs <- err }()
	}
	for range nodes {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	s.observer = s.connect(access.Observer)
	s.operator = s.connect(access.Operator)
	s.waitJetStream()
	s.provision(nodes)

	s.producer = newProc("producer", "producer listening", "producer", "--nats", s.urls,
		"--nats-nkey", s.keys.SeedFile(access.Producer), "--smtp", s.smtp, "--lmtp", "-")
	if _, err := s.procs.add(s.producer); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		w := newProc(fmt.Sprintf("worker%d", i+1), "worker taking mail", "worker", "--nats", s.urls,
			"--nats-nkey", s.keys.SeedFile(access.Worker), "--dns-server", dns.Addr(), "--name", fmt.Sprintf("w%d", i+1))
		if _, err := s.procs.add(w); err != nil {
			t.Fatal(err)
		}
		s.workers = append(s.workers, w)
	}
	return s
}

// connect connects the suite as role r to every server, reconnecting
// for ever: the suite's view outlives the faults.
func (s *system) connect(r access.Role) jetstream.JetStream {
	s.t.Helper()
	opts, err := s.keys.Options(r)
	if err != nil {
		s.t.Fatal(err)
	}
	nc, err := nats.Connect(s.urls, append(opts, nats.Name("faults-"+string(r)), nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond))...)
	if err != nil {
		s.t.Fatalf("connect as %s: %v", r, err)
	}
	s.t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		s.t.Fatal(err)
	}
	return js
}

// waitJetStream waits until JetStream answers: at once on one server, in
// a cluster once the nodes have elected their meta leader.
func (s *system) waitJetStream() {
	s.t.Helper()
	waitFor(s.t, "JetStream to answer", func() bool {
		_, err := s.observer.AccountInfo(s.t.Context())
		return err == nil
	})
}

// provision runs mailscope provision with --replicas nodes. In a young
// cluster the first streams may be refused while the nodes settle: it
// is run again then, a few times.
func (s *system) provision(replicas int) {
	s.t.Helper()
	var err error
	for range 5 {
		p := newProc("provision", "provisioned:", "provision", "--nats", s.urls,
			"--nats-nkey", s.keys.SeedFile(access.Provisioner), "--replicas", strconv.Itoa(replicas), "--ack-wait", ackWait)
		if _, err = s.procs.add(p); err == nil {
			return
		}
		s.t.Logf("provision: %v\n%s", err, p.tail(5))
	}
	s.t.Fatalf("provision: %v", err)
}

// restartServer stops server i with sig and starts it again on the same
// port and data directory; in a cluster it then waits until the mail
// stream has a leader and every replica is current again, so that the
// next fault never finds two nodes down.
func (s *system) restartServer(i int, sig syscall.Signal) {
	s.t.Helper()
	if _, err := s.servers[i].restart(sig); err != nil {
		s.t.Fatal(err)
	}
	if len(s.servers) > 1 {
		s.waitReplicas()
	}
}

// waitReplicas waits until the cluster is whole again: every stream
// (the buckets' included) and every durable consumer has a leader and
// its followers online and current. A start-up right after a node came
// back (a worker's, which looks its consumers up) then finds leaders.
func (s *system) waitReplicas() {
	s.t.Helper()
	var missing string
	current := func(what string, c *jetstream.ClusterInfo) bool {
		if c == nil || c.Leader == "" || len(c.Replicas) != len(s.servers)-1 {
			missing = what + ": no leader or followers missing"
			return false
		}
		for _, r := range c.Replicas {
			if !r.Current || r.Offline {
				missing = what + ": follower " + r.Name + " not current"
				return false
			}
		}
		return true
	}
	waitState(s.t, "every stream and consumer's leader and current followers", func() (bool, string) {
		ok := s.clusterWhole(current)
		return ok, missing
	})
}

// clusterWhole reports whether every stream and durable consumer passes
// current.
func (s *system) clusterWhole(current func(string, *jetstream.ClusterInfo) bool) bool {
	ctx, cancel := context.WithTimeout(s.t.Context(), 2*time.Second)
	defer cancel()
	streams := s.observer.ListStreams(ctx)
	for si := range streams.Info() {
		if !current("stream "+si.Config.Name, si.Cluster) {
			return false
		}
		st, err := s.observer.Stream(ctx, si.Config.Name)
		if err != nil {
			return false
		}
		consumers := st.ListConsumers(ctx)
		for ci := range consumers.Info() {
			if ci.Config.Durable != "" && !current("consumer "+si.Config.Name+"/"+ci.Name, ci.Cluster) {
				return false
			}
		}
		if consumers.Err() != nil {
			return false
		}
	}
	return streams.Err() == nil
}

// mailStreamInfo returns the mail stream's info, nil when it cannot be
// read now.
func (s *system) mailStreamInfo() *jetstream.StreamInfo {
	// Short: a request that finds no leader is not answered, and the
	// next one may find the new leader.
	ctx, cancel := context.WithTimeout(s.t.Context(), time.Second)
	defer cancel()
	st, err := s.observer.Stream(ctx, contracts.DefaultNames().MailStream)
	if err != nil {
		return nil
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil
	}
	return info
}

// killLeader SIGKILLs the node that leads the mail stream, waits until
// another node leads it, and starts the killed node again. It says which
// node it killed and which one took over.
func (s *system) killLeader() string {
	s.t.Helper()
	var leader string
	waitFor(s.t, "the mail stream's leader", func() bool {
		info := s.mailStreamInfo()
		if info != nil && info.Cluster != nil {
			leader = info.Cluster.Leader
		}
		return leader != ""
	})
	i := s.serverIndex(leader)
	killed := time.Now()
	s.servers[i].signal(syscall.SIGKILL)
	var next string
	waitFor(s.t, "a new leader of the mail stream", func() bool {
		if info := s.mailStreamInfo(); info != nil && info.Cluster != nil && info.Cluster.Leader != leader {
			next = info.Cluster.Leader
		}
		return next != ""
	})
	elected := time.Since(killed)
	s.restartServer(i, syscall.SIGKILL)
	return fmt.Sprintf("%s, the mail stream's leader (%s seen leading %.1fs later)", leader, next, elected.Seconds())
}

// serverIndex returns the index of the node named name.
func (s *system) serverIndex(name string) int {
	s.t.Helper()
	for i, p := range s.servers {
		if p.name == name {
			return i
		}
	}
	s.t.Fatalf("the mail stream's leader %q is none of the nodes", name)
	return -1
}

// checkRunning fails the test for every process of the system that
// ended of its own accord: every fault starts again what it killed.
func (s *system) checkRunning() {
	s.t.Helper()
	for _, p := range append(append([]*proc{s.producer}, s.servers...), s.workers...) {
		if !p.running() {
			s.t.Errorf("%s ended on its own:\n%s", p.name, p.tail(20))
		}
	}
}

// restart kills p with sig and starts it again.
func (s *system) restart(p *proc, sig syscall.Signal) {
	s.t.Helper()
	if _, err := p.restart(sig); err != nil {
		s.t.Fatal(err)
	}
}

// waitFor waits until cond holds, looking every 10ms, and fails the test
// after waitLimit: a safety net, never a measurement.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	waitState(t, what, func() (bool, string) { return cond(), "" })
}

// waitState is waitFor with a condition that also says what it last
// saw, which the failure reports.
func waitState(t *testing.T, what string, cond func() (bool, string)) {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		ok, state := cond()
		if ok {
			return
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			t.Fatalf("timed out after %v waiting for %s; last seen: %s", waitLimit, what, state)
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		}
	}
}

// waitLimit bounds each wait of the suite.
const waitLimit = 2 * time.Minute
