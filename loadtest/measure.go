package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"time"

	"github.com/nats-io/nats.go"
)

// MeasureConfig says what one measurement does: the ceilings on the
// corpus, then the system on the same mails in a closed loop and an
// open loop.
type MeasureConfig struct {
	// Corpus is what is sent and what the ceilings are measured on.
	// Nil: Run's synthetic mails (Run.Size, Run.Signer), and no
	// ceilings.
	Corpus *Corpus
	// Run is the template of both phases: its addresses are taken from
	// the started system, its Rate from OpenRate. Run.Clients is the
	// closed loop's connections (default 128).
	Run Config
	// Start starts the system once the verification ceiling is measured
	// (so that nothing else runs during it). Required.
	Start func(ctx context.Context) (*System, error)
	// Mode names how the system runs, for the report: "procs", "dev" or
	// "external".
	Mode string
	// NoOutcomes follows no outcome (a producer without workers): only
	// the SMTP side is measured. Default off.
	NoOutcomes bool

	// NoCeilings skips the ceilings. Default: measured when there is a
	// corpus.
	NoCeilings bool
	// Ceiling says how the ceilings are measured.
	Ceiling CeilingConfig
	// NoClosed and NoOpen skip a phase. Default: both run.
	NoClosed, NoOpen bool
	// OpenRate is the open loop's rate in mails/s. Default half the
	// closed loop's end-to-end mails/s (accepted/s without outcomes);
	// required with NoClosed.
	OpenRate float64
	// OpenClients is the open loop's connections. Default enough to
	// have one free at every scheduled time: twice the rate times the
	// closed loop's p99 transaction latency, at least Run.Clients.
	OpenClients int
	// Progress receives a line as each step begins. Default none.
	Progress io.Writer
}

// MaxOpenClients caps the open loop's default connections.
const MaxOpenClients = 2048

// Measurement is what one measurement found. Its JSON form is the
// --json report; durations are integers of nanoseconds.
type Measurement struct {
	// Mode is "procs", "dev" or "external"; CPUNote says whose CPU the
	// figures are.
	Mode    string `json:"mode"`
	CPUNote string `json:"cpu_note"`
	// Cores is the number of CPUs of the machine.
	Cores int `json:"cores"`
	// Corpus describes the mails; nil for synthetic mails.
	Corpus *CorpusSummary `json:"corpus,omitempty"`
	// Verify and JetStream are the ceilings; nil when not measured.
	Verify    *VerifyCeiling    `json:"verify,omitempty"`
	JetStream *JetStreamCeiling `json:"jetstream,omitempty"`
	// JetStreamError says why the JetStream ceiling is missing, if it
	// failed (say, no right to create a stream on a running system).
	JetStreamError string `json:"jetstream_error,omitempty"`
	// Closed and Open are the phases; nil when skipped.
	Closed *Phase `json:"closed,omitempty"`
	Open   *Phase `json:"open,omitempty"`
	// StopError is what stopping the system returned.
	StopError string `json:"stop_error,omitempty"`
}

// Phase is one phase on the system and its CPU.
type Phase struct {
	// Name is "closed" or "open".
	Name string `json:"name"`
	// Report is the phase's load test report.
	Report Report `json:"report"`
	// Wall is the time the CPU figures cover: from just before the
	// first connection to the last outcome (or the drain's end).
	Wall time.Duration `json:"wall_ns"`
	// CPU is each process's CPU over Wall; the load test itself is
	// "loadtest".
	CPU []ProcessCPU `json:"cpu"`
	// TotalCPU is their sum, TotalPerMail that over the mails accepted;
	// Cores is TotalCPU over Wall.
	TotalCPU     time.Duration `json:"total_cpu_ns"`
	TotalPerMail time.Duration `json:"total_cpu_per_mail_ns"`
	Cores        float64       `json:"cores_used"`
	// Ratios compare the phase with the ceilings.
	Ratios Ratios `json:"ratios"`
}

// ProcessCPU is one process's CPU over a phase.
type ProcessCPU struct {
	Name    string        `json:"name"`
	PID     int           `json:"pid"`
	CPU     time.Duration `json:"cpu_ns"`
	PerMail time.Duration `json:"cpu_per_mail_ns"`
}

// Ratios are a phase's figures over the ceilings; zero when a figure or
// its ceiling is unknown.
type Ratios struct {
	// WorkerCPUVsVerify is the worker's CPU per mail over bare
	// verification's (one goroutine): how many times what verifying
	// alone costs.
	WorkerCPUVsVerify float64 `json:"worker_cpu_vs_verify"`
	// AllCPUVsVerify is every process's CPU per mail over bare
	// verification's.
	AllCPUVsVerify float64 `json:"all_cpu_vs_verify"`
	// EndToEndVsVerify is end-to-end mails/s over bare verification's
	// mails/s on every core.
	EndToEndVsVerify float64 `json:"end_to_end_vs_verify"`
	// EndToEndVsPublish and EndToEndVsConsume are end-to-end mails/s
	// over the JetStream ceilings; AcceptedVsPublish is accepted/s over
	// the batch publish ceiling.
	EndToEndVsPublish float64 `json:"end_to_end_vs_publish"`
	EndToEndVsConsume float64 `json:"end_to_end_vs_consume"`
	AcceptedVsPublish float64 `json:"accepted_vs_publish"`
}

// Measure runs a whole measurement. It returns an error when a step
// could not run; the measurement then holds what was done. Whether the
// system behaved is the Measurement's Err.
func Measure(ctx context.Context, c MeasureConfig) (m *Measurement, err error) {
	m = &Measurement{Mode: c.Mode, Cores: c.Ceiling.withDefaults().Goroutines}
	if c.Start == nil {
		return m, errors.New("loadtest: Measure needs a Start function")
	}
	if c.NoClosed && c.NoOpen {
		return m, errors.New("loadtest: both phases skipped: nothing to measure")
	}
	if c.NoClosed && !c.NoOpen && c.OpenRate <= 0 {
		return m, errors.New("loadtest: the open loop needs a rate when the closed loop is skipped")
	}
	if c.Run.Clients == 0 && c.Run.LMTPClients == 0 {
		c.Run.Clients = 128
	}
	progress := func(format string, a ...any) {
		if c.Progress != nil {
			fmt.Fprintf(c.Progress, format+"\n", a...)
		}
	}
	if c.Corpus != nil {
		s := c.Corpus.Summary()
		m.Corpus = &s
		c.Run.Corpus = c.Corpus
	}
	ceilings := c.Corpus != nil && !c.NoCeilings
	if ceilings {
		progress("ceiling: bare DKIM verification of %d mails", len(c.Corpus.Mails))
		v, err := MeasureVerify(ctx, c.Corpus, c.Ceiling)
		if err != nil {
			return m, err
		}
		m.Verify = &v
	}

	progress("starting the system (%s)", c.Mode)
	sys, err := c.Start(ctx)
	if err != nil {
		return m, err
	}
	defer func() {
		if serr := sys.Close(); serr != nil {
			m.StopError = serr.Error()
		}
	}()
	switch {
	case len(sys.Procs) > 0:
		m.CPUNote = "each process's own CPU (getrusage for the load test, /proc/PID/stat for the children)"
	case c.Mode == "external":
		m.CPUNote = "the load test's own CPU only: the running system's processes are not measured"
	default:
		m.CPUNote = "one process: the system runs inside the load test, so \"loadtest\" is the CPU of server, producer, worker and load test together; no per-role figures"
	}
	c.Run.SMTPAddr, c.Run.LMTPAddr, c.Run.NATSURL = sys.SMTPAddr, sys.LMTPAddr, sys.NATSURL
	c.Run.NATSOptions = append(c.Run.NATSOptions[:len(c.Run.NATSOptions):len(c.Run.NATSOptions)], sys.NATSOptions...)
	if c.NoOutcomes {
		c.Run.NATSURL = ""
	}
	if c.Run.LMTPClients == 0 {
		c.Run.LMTPAddr = ""
	}

	if ceilings && sys.NATSURL != "" {
		progress("ceiling: JetStream batch publish and consume of %d mails", len(c.Corpus.Mails))
		if err := m.jetStream(ctx, sys.NATSURL, c); err != nil {
			if ctx.Err() != nil {
				return m, err
			}
			m.JetStreamError = err.Error()
		}
	}

	if !c.NoClosed {
		progress("closed loop: %d connections", c.Run.Clients+c.Run.LMTPClients)
		if m.Closed, err = m.phase(ctx, "closed", c.Run, sys); err != nil {
			return m, err
		}
	}
	if !c.NoOpen {
		run := c.Run
		run.Rate = c.OpenRate
		if run.Rate <= 0 {
			r := m.Closed.Report
			run.Rate = r.OutcomesPerSec / 2
			if !r.Outcomes {
				run.Rate = r.AcceptedPerSec / 2
			}
		}
		if run.Rate <= 0 {
			return m, errors.New("loadtest: the closed loop gave no rate for the open loop")
		}
		clients := c.OpenClients
		if clients == 0 {
			clients = c.Run.Clients + c.Run.LMTPClients
			if m.Closed != nil {
				need := int(math.Ceil(2 * run.Rate * m.Closed.Report.Transaction.P99.Seconds()))
				clients = min(max(clients, need), MaxOpenClients)
			}
		}
		// The open loop's connections are split like the closed loop's.
		if run.LMTPClients > 0 {
			run.LMTPClients = max(1, clients*run.LMTPClients/(run.Clients+run.LMTPClients))
			run.Clients = clients - run.LMTPClients
		} else {
			run.Clients = clients
		}
		if run.Duration > 0 && c.Run.Count == 0 {
			run.Count = 0 // the duration bounds it
		}
		progress("open loop: %.0f mails/s over %d connections", run.Rate, clients)
		if m.Open, err = m.phase(ctx, "open", run, sys); err != nil {
			return m, err
		}
	}
	return m, nil
}

// jetStream measures the JetStream ceilings on the system's server.
func (m *Measurement) jetStream(ctx context.Context, url string, c MeasureConfig) error {
	opts := append([]nats.Option{nats.Name("mailscope-loadtest-ceiling")}, c.Run.NATSOptions...)
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return err
	}
	defer nc.Close()
	j, err := MeasureJetStream(ctx, nc, c.Corpus, c.Ceiling)
	if err != nil {
		return err
	}
	m.JetStream = &j
	return nil
}

// phase runs one load test and reads every process's CPU around it.
func (m *Measurement) phase(ctx context.Context, name string, run Config, sys *System) (*Phase, error) {
	read := func() ([]time.Duration, error) {
		self, err := SelfCPU()
		if err != nil {
			return nil, err
		}
		out := []time.Duration{self}
		for _, p := range sys.Procs {
			d, err := p.CPU()
			if err != nil {
				return nil, err
			}
			out = append(out, d)
		}
		return out, nil
	}
	before, err := read()
	if err != nil {
		return nil, err
	}
	start := time.Now()
	rep, err := Run(ctx, run)
	wall := time.Since(start)
	if err != nil {
		return nil, err
	}
	after, rerr := read()
	if rerr != nil {
		return nil, rerr
	}
	ph := &Phase{Name: name, Report: rep, Wall: wall}
	mails := max(rep.Accepted, 1)
	for i := range before {
		pc := ProcessCPU{Name: "loadtest", CPU: after[i] - before[i]}
		if i > 0 {
			pc.Name, pc.PID = sys.Procs[i-1].Name, sys.Procs[i-1].PID
		}
		pc.PerMail = pc.CPU / time.Duration(mails)
		ph.CPU = append(ph.CPU, pc)
		ph.TotalCPU += pc.CPU
	}
	ph.TotalPerMail = ph.TotalCPU / time.Duration(mails)
	if wall > 0 {
		ph.Cores = ph.TotalCPU.Seconds() / wall.Seconds()
	}
	ph.Ratios = m.ratios(ph, len(sys.Procs) > 0)
	return ph, nil
}

func (m *Measurement) ratios(ph *Phase, perProcess bool) Ratios {
	var r Ratios
	div := func(a, b float64) float64 {
		if a == 0 || b == 0 {
			return 0
		}
		return a / b
	}
	rep := ph.Report
	if v := m.Verify; v != nil {
		verify := float64(v.CPUPerMail)
		if perProcess {
			for _, p := range ph.CPU {
				if p.Name == "worker" {
					r.WorkerCPUVsVerify = div(float64(p.PerMail), verify)
				}
			}
		}
		r.AllCPUVsVerify = div(float64(ph.TotalPerMail), verify)
		r.EndToEndVsVerify = div(rep.OutcomesPerSec, v.PerSec)
	}
	if j := m.JetStream; j != nil {
		r.EndToEndVsPublish = div(rep.OutcomesPerSec, j.PublishPerSec)
		r.EndToEndVsConsume = div(rep.OutcomesPerSec, j.ConsumePerSec)
		r.AcceptedVsPublish = div(rep.AcceptedPerSec, j.PublishPerSec)
	}
	return r
}

// Err returns what went wrong in the system during the measurement:
// every phase's Report.Err (lost or duplicated outcomes, refusals,
// outcomes not what the corpus says). Nil when the system behaved.
func (m *Measurement) Err() error {
	var errs []error
	for _, ph := range []*Phase{m.Closed, m.Open} {
		if ph == nil {
			continue
		}
		if err := ph.Report.Err(); err != nil {
			errs = append(errs, fmt.Errorf("%s loop: %w", ph.Name, err))
		}
	}
	if m.Verify != nil && m.Corpus != nil {
		want := ExpectedDKIM(m.Corpus.Kinds)
		if !maps.Equal(want, m.Verify.Results) {
			errs = append(errs, fmt.Errorf("bare verification found %v, the corpus says %v", m.Verify.Results, want))
		}
	}
	return errors.Join(errs...)
}

// ExpectedDKIM returns the first-signature DKIM results a corpus of the
// given composition must get, by result.
func ExpectedDKIM(kinds map[Kind]int) map[string]int {
	want := map[string]int{}
	for k, n := range kinds {
		if n > 0 {
			want[k.Want()] += n
		}
	}
	return want
}
