//go:build faults

package faults

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// startTimeout bounds the wait for a child to print the line that says
// it is ready; a safety net against hangs, never a measurement.
const startTimeout = 90 * time.Second

// proc is one role of the system run as a child process of the binary,
// started again with the same arguments after it is killed. Its
// standard output and standard error go, line by line, to its log,
// which a failed test prints the end of.
type proc struct {
	name  string
	args  []string
	ready string // a line containing it says the child is ready

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed once the current child has been waited for
	log    bytes.Buffer  // every run's output
	starts int
}

func newProc(name, ready string, args ...string) *proc {
	p := &proc{name: name, args: args, ready: ready, exited: make(chan struct{})}
	close(p.exited) // not running yet
	return p
}

// start starts the child and waits for its ready line, which it
// returns.
func (p *proc) start() (string, error) {
	cmd := exec.Command(binary, p.args...)
	cmd.Env = childEnv()
	// A child dies with the suite, however the suite dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	r, w, err := os.Pipe()
	if err != nil {
		return "", err
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return "", fmt.Errorf("start %s: %w", p.name, err)
	}
	w.Close()
	exited := make(chan struct{})
	ready := make(chan string, 1)
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.starts++
	fmt.Fprintf(&p.log, "---- %s start %d (pid %d): %s\n", p.name, p.starts, cmd.Process.Pid, strings.Join(p.args, " "))
	p.mu.Unlock()
	go func() {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		seen := false
		for sc.Scan() {
			line := sc.Text()
			p.mu.Lock()
			p.log.WriteString(line)
			p.log.WriteByte('\n')
			p.mu.Unlock()
			if !seen && strings.Contains(line, p.ready) {
				seen = true
				ready <- line
			}
		}
		r.Close()
		err := cmd.Wait()
		p.mu.Lock()
		fmt.Fprintf(&p.log, "---- %s (pid %d) exited: %v\n", p.name, cmd.Process.Pid, err)
		p.mu.Unlock()
		close(exited)
	}()
	t := time.NewTimer(startTimeout)
	defer t.Stop()
	select {
	case line := <-ready:
		return line, nil
	case <-exited:
		return "", fmt.Errorf("%s exited before it was ready (%q)", p.name, p.ready)
	case <-t.C:
		p.signal(syscall.SIGKILL)
		return "", fmt.Errorf("%s printed no %q within %v", p.name, p.ready, startTimeout)
	}
}

// running reports whether the current child is alive.
func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// signal sends sig to the current child, if alive, and waits for its
// end. A child that outlives a SIGTERM by stopGrace is killed.
func (p *proc) signal(sig syscall.Signal) {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-exited:
		return
	default:
	}
	_ = cmd.Process.Signal(sig)
	if sig == syscall.SIGKILL {
		<-exited
		return
	}
	t := time.NewTimer(stopGrace)
	defer t.Stop()
	select {
	case <-exited:
	case <-t.C:
		_ = cmd.Process.Kill()
		<-exited
	}
}

// stopGrace is how long a child may take to stop after SIGTERM.
const stopGrace = 60 * time.Second

// restart kills the child with sig, waits for its end and starts it
// again.
func (p *proc) restart(sig syscall.Signal) (string, error) {
	p.signal(sig)
	return p.start()
}

// tail returns the last n lines of the child's log.
func (p *proc) tail(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	lines := strings.Split(strings.TrimRight(p.log.String(), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// childEnv is the suite's environment without MAILSCOPE_ variables
// (which would set the children's flags), at log level info (the
// producer's "producer listening" line is its ready signal).
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "MAILSCOPE_") && !strings.HasPrefix(kv, "NATS_") {
			env = append(env, kv)
		}
	}
	return append(env, "MAILSCOPE_LOG_LEVEL=info")
}

// procs are the children of one test, killed when it ends, even when it
// fails; a failed test prints the end of each one's log.
type procs struct {
	mu   sync.Mutex
	list []*proc
}

func newProcs(t *testing.T) *procs {
	ps := &procs{}
	t.Cleanup(func() {
		ps.mu.Lock()
		defer ps.mu.Unlock()
		for _, p := range ps.list {
			p.signal(syscall.SIGKILL)
		}
		if t.Failed() {
			for _, p := range ps.list {
				t.Logf("%s's log, last lines:\n%s", p.name, p.tail(40))
			}
		}
	})
	return ps
}

// add registers p and starts it.
func (ps *procs) add(p *proc) (string, error) {
	ps.mu.Lock()
	ps.list = append(ps.list, p)
	ps.mu.Unlock()
	return p.start()
}
