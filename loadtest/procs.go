package loadtest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/provision"
)

// System is a running system a measurement drives.
type System struct {
	// NATSURL is the server's client URL; SMTPAddr and LMTPAddr the
	// producer's addresses (LMTPAddr empty when it does not listen).
	NATSURL, SMTPAddr, LMTPAddr string
	// NATSOptions are the options of the load test's own connections to
	// the system's server (the credentials of access.LoadTest, when the
	// load test started the server); added to Config.NATSOptions.
	NATSOptions []nats.Option
	// Procs are the system's processes, whose CPU is measured. Empty
	// when the system runs inside the load test's process (then only the
	// load test's own CPU is known, and it is the whole system's).
	Procs []*Proc
	// Stop stops the system. It may be nil.
	Stop func() error
}

// Close stops the system once.
func (s *System) Close() error {
	if s == nil || s.Stop == nil {
		return nil
	}
	stop := s.Stop
	s.Stop = nil
	return stop()
}

// Proc is one child process of the system.
type Proc struct {
	// Name is the role: "server", "producer" or "worker".
	Name string
	// PID is its process id.
	PID int

	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has been waited for
	err    error         // its exit status, once exited
}

// CPU returns the CPU time the process has used so far.
func (p *Proc) CPU() (time.Duration, error) { return ProcCPU(p.PID) }

// stop sends SIGTERM and waits up to grace for the process to exit,
// then kills it.
func (p *Proc) stop(grace time.Duration) error {
	select {
	case <-p.exited:
		return p.exitErr()
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.exited:
		return p.exitErr()
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("loadtest: %s (pid %d) did not stop within %v of SIGTERM; killed", p.Name, p.PID, grace)
	}
}

func (p *Proc) exitErr() error {
	if p.err != nil {
		return fmt.Errorf("loadtest: %s (pid %d): %w", p.Name, p.PID, p.err)
	}
	return nil
}

// ProcsConfig says how to run the system as separate processes of the
// mailscope binary: "mailscope server", then "mailscope producer" and
// "mailscope worker", as production runs them.
type ProcsConfig struct {
	// Binary is the mailscope binary. Default os.Executable().
	Binary string
	// DataDir is the server's JetStream store (under DataDir/nats).
	// Required.
	DataDir string
	// DNSServer is where the worker looks DKIM keys up (--dns-server).
	// Required.
	DNSServer string
	// GroupCommitOff passes --group-commit=false to the producer: every
	// mail is stored on its own. Default false: the producer
	// group-commits, as it does by default in production (the mail
	// stream always takes atomic batches).
	GroupCommitOff bool
	// LMTP makes the producer listen on LMTP too. Default off.
	LMTP bool
	// NoWorker starts no worker (the producer's side alone). Default off.
	NoWorker bool
	// ProducerArgs and WorkerArgs are passed through to the roles after
	// the flags the load test sets.
	ProducerArgs, WorkerArgs []string
	// Env is added to the environment every child inherits from this
	// process ("NAME=value" each, e.g. the OTEL_* variables). Default
	// none.
	Env []string
	// Stderr receives the children's logs (MAILSCOPE_LOG_LEVEL=warn
	// unless the environment says otherwise). Default os.Stderr.
	Stderr io.Writer
	// ReadyTimeout bounds the wait for each child to be ready. Default
	// 60s.
	ReadyTimeout time.Duration
	// StopGrace is how long a child may take to stop after SIGTERM
	// before it is killed. Default 30s.
	StopGrace time.Duration
}

// StartProcs starts the system as child processes and returns once the
// server answers, the streams are provisioned (from this process) and
// the producer and worker report ready on /readyz. The children get
// SIGTERM when this process dies (Linux: the parent-death signal), so
// none is left behind; System.Close stops them.
func StartProcs(ctx context.Context, c ProcsConfig) (_ *System, err error) {
	if c.Binary == "" {
		if c.Binary, err = os.Executable(); err != nil {
			return nil, fmt.Errorf("loadtest: the mailscope binary: %w", err)
		}
	}
	if c.DataDir == "" || c.DNSServer == "" {
		return nil, errors.New("loadtest: StartProcs needs a data directory and a DNS server")
	}
	if c.Stderr == nil {
		c.Stderr = os.Stderr
	}
	if c.ReadyTimeout == 0 {
		c.ReadyTimeout = time.Minute
	}
	if c.StopGrace == 0 {
		c.StopGrace = 30 * time.Second
	}
	sys := &System{}
	sys.Stop = func() error {
		var errs []error
		for i := len(sys.Procs) - 1; i >= 0; i-- { // worker, producer, server
			errs = append(errs, sys.Procs[i].stop(c.StopGrace))
		}
		return errors.Join(errs...)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, sys.Close())
		}
	}()

	srv, stdout, err := startChild(c, "server", true, "server", "--data-dir", filepath.Join(c.DataDir, "nats"),
		"--credentials-dir", credentialsDir(c.DataDir), "--host", "127.0.0.1", "--port", "-1")
	if err != nil {
		return nil, err
	}
	sys.Procs = append(sys.Procs, srv)
	if sys.NATSURL, err = firstLine(ctx, srv, stdout, c.ReadyTimeout); err != nil {
		return nil, err
	}

	keys, err := access.OpenKeyring(credentialsDir(c.DataDir), append(access.Roles(), access.LoadTest)...)
	if err != nil {
		return nil, err
	}
	if sys.NATSOptions, err = keys.Options(access.LoadTest); err != nil {
		return nil, err
	}
	if err := Provision(ctx, sys.NATSURL, keys, c.ReadyTimeout); err != nil {
		return nil, err
	}

	addrs, err := freeAddrs(4)
	if err != nil {
		return nil, err
	}
	sys.SMTPAddr = addrs[0]
	lmtp := "-"
	if c.LMTP {
		sys.LMTPAddr, lmtp = addrs[1], addrs[1]
	}
	args := []string{"producer", "--nats", sys.NATSURL, "--nats-nkey", keys.SeedFile(access.Producer), "--smtp", sys.SMTPAddr, "--lmtp", lmtp, "--http-addr", addrs[2],
		// Every client of the load test comes from one address, and the
		// open loop may hold more connections than an MTA would.
		"--max-connections", strconv.Itoa(ProducerConnections), "--max-client-connections", strconv.Itoa(ProducerConnections)}
	if c.GroupCommitOff {
		args = append(args, "--group-commit=false")
	}
	prod, _, err := startChild(c, "producer", false, append(args, c.ProducerArgs...)...)
	if err != nil {
		return nil, err
	}
	sys.Procs = append(sys.Procs, prod)
	waits := []struct {
		p    *Proc
		addr string
	}{{prod, addrs[2]}}
	if !c.NoWorker {
		args = []string{"worker", "--nats", sys.NATSURL, "--nats-nkey", keys.SeedFile(access.Worker), "--dns-server", c.DNSServer, "--http-addr", addrs[3]}
		wrk, _, err := startChild(c, "worker", false, append(args, c.WorkerArgs...)...)
		if err != nil {
			return nil, err
		}
		sys.Procs = append(sys.Procs, wrk)
		waits = append(waits, struct {
			p    *Proc
			addr string
		}{wrk, addrs[3]})
	}
	for _, w := range waits {
		if err := waitReady(ctx, w.p, "http://"+w.addr+"/readyz", c.ReadyTimeout); err != nil {
			return nil, err
		}
	}
	return sys, nil
}

// startChild starts the binary with args. With pipe, the child's
// standard output is a pipe returned to the caller, who must read it to
// the end and then Wait; else it goes to c.Stderr like its standard
// error.
func startChild(c ProcsConfig, name string, pipe bool, args ...string) (*Proc, io.Reader, error) {
	cmd := exec.Command(c.Binary, args...)
	cmd.SysProcAttr = childAttr()
	cmd.Env = append(os.Environ(), c.Env...)
	if os.Getenv("MAILSCOPE_LOG_LEVEL") == "" {
		cmd.Env = append(cmd.Env, "MAILSCOPE_LOG_LEVEL=warn")
	}
	cmd.Stderr = c.Stderr
	var out io.Reader
	if pipe {
		pr, err := cmd.StdoutPipe()
		if err != nil {
			return nil, nil, err
		}
		out = pr
	} else {
		cmd.Stdout = c.Stderr
	}
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("loadtest: start %s: %w", name, err)
	}
	p := &Proc{Name: name, PID: cmd.Process.Pid, cmd: cmd, exited: make(chan struct{})}
	if out == nil {
		// With a pipe, the reader waits: Wait closes the pipe, which must
		// be read to the end first.
		go func() { p.err = cmd.Wait(); close(p.exited) }()
	}
	return p, out, nil
}

// firstLine reads the server's URL, the first line of its output, then
// keeps reading (and dropping) the rest so that the server never blocks
// on a full pipe, and waits for the server's exit.
func firstLine(ctx context.Context, p *Proc, stdout io.Reader, timeout time.Duration) (string, error) {
	lines := make(chan string, 1)
	br := bufio.NewReader(stdout)
	go func() {
		line, err := br.ReadString('\n')
		if err == nil {
			lines <- strings.TrimSpace(line)
		} else {
			close(lines)
		}
		_, _ = io.Copy(io.Discard, br)
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case url, ok := <-lines:
		if !ok || !strings.HasPrefix(url, "nats://") {
			return "", fmt.Errorf("loadtest: the server printed no URL (%q); exit: %v", url, p.stop(time.Second))
		}
		return url, nil
	case <-t.C:
		return "", fmt.Errorf("loadtest: the server printed no URL within %v", timeout)
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// waitReady polls url until it answers 200, the process exits, or the
// timeout passes.
func waitReady(ctx context.Context, p *Proc, url string, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	client := &http.Client{Timeout: time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-tick.C:
		case <-p.exited:
			return fmt.Errorf("loadtest: %s exited before it was ready: %v", p.Name, p.exitErr())
		case <-deadline.C:
			return fmt.Errorf("loadtest: %s not ready at %s within %v", p.Name, url, timeout)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// freeAddrs returns n loopback addresses that were free a moment ago,
// all different (the listeners are held until every port is picked).
func freeAddrs(n int) ([]string, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var out []string
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("loadtest: pick a free port: %w", err)
		}
		lns = append(lns, ln)
		out = append(out, ln.Addr().String())
	}
	return out, nil
}

// credentialsDir is where the server the load test starts keeps every
// role's seed ("mailscope server --credentials-dir").
func credentialsDir(dataDir string) string { return filepath.Join(dataDir, "credentials") }

// Provision provisions the server at url (provision.Config defaults) as
// the provisioner of keys, within timeout.
func Provision(ctx context.Context, url string, keys *access.Keyring, timeout time.Duration) error {
	opts, err := keys.Options(access.Provisioner)
	if err != nil {
		return err
	}
	nc, err := nats.Connect(url, append(opts, nats.Name("mailscope-loadtest-provision"))...)
	if err != nil {
		return fmt.Errorf("loadtest: connect to the server at %s: %w", url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err == nil {
		pctx, cancel := context.WithTimeout(ctx, timeout)
		err = provision.Run(pctx, js, provision.Config{})
		cancel()
	}
	if err != nil {
		return fmt.Errorf("loadtest: provision: %w", err)
	}
	return nil
}
