package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Write prints the measurement for people: the corpus, the ceilings,
// each phase with its CPU and its ratios to the ceilings, and the
// verdict.
func (m *Measurement) Write(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "mailscope load test: mode %s, %d cores\n", m.Mode, m.Cores)
	fmt.Fprintf(&b, "cpu          %s\n", m.CPUNote)
	if c := m.Corpus; c != nil {
		fmt.Fprintf(&b, "corpus       %d mails, seed %d, %d signing domains (RSA-%d):", c.Mails, c.Seed, c.Domains, c.RSABits)
		for _, k := range []Kind{KindRSA, KindEd25519, KindDual, KindTampered, KindUnsigned} {
			fmt.Fprintf(&b, " %s %d", k, c.Kinds[k])
		}
		fmt.Fprintf(&b, "; multipart %d\n", c.Multipart)
		fmt.Fprintf(&b, "             sizes min %s  median %s  mean %s  max %s  (%s in all)\n",
			kib(float64(c.SizeMin)), kib(float64(c.SizeMedian)), kib(c.SizeMean), kib(float64(c.SizeMax)), kib(float64(c.Bytes)))
	} else {
		b.WriteString("corpus       none (synthetic mails); no ceilings\n")
	}
	if v := m.Verify; v != nil {
		fmt.Fprintf(&b, "ceiling      bare DKIM verify (go-msgauth VerifyWithOptions, keys in memory, at most %d signatures), %d mails:\n", MaxVerifications, v.Mails)
		fmt.Fprintf(&b, "               1 goroutine: %v CPU/mail, %.0f mails/s;  %d goroutines: %.0f mails/s\n",
			us(v.CPUPerMail), v.PerSec1, v.Goroutines, v.PerSec)
		fmt.Fprintf(&b, "               results %s\n", counts(v.Results))
	}
	if j := m.JetStream; j != nil {
		fmt.Fprintf(&b, "ceiling      JetStream on the same server, %d mails (file store, atomic batches of %d, one after the other):\n", j.Msgs, j.Batch)
		fmt.Fprintf(&b, "               publish %.0f msgs/s;  pull consume + ack %.0f msgs/s\n", j.PublishPerSec, j.ConsumePerSec)
	} else if m.JetStreamError != "" {
		fmt.Fprintf(&b, "ceiling      JetStream not measured: %s\n", m.JetStreamError)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	for _, ph := range []*Phase{m.Closed, m.Open} {
		if ph == nil {
			continue
		}
		if err := ph.write(w); err != nil {
			return err
		}
	}
	b.Reset()
	if m.StopError != "" {
		fmt.Fprintf(&b, "stop         %s\n", m.StopError)
	}
	if err := m.Err(); err != nil {
		fmt.Fprintf(&b, "verdict      FAILED: %v\n", err)
	} else {
		b.WriteString("verdict      ok: no outcome lost or duplicated, every outcome as the corpus says\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (ph *Phase) write(w io.Writer) error {
	if _, err := fmt.Fprintf(w, "%s loop\n", ph.Name); err != nil {
		return err
	}
	if err := ph.Report.Write(w); err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "  cpu/mail    ")
	for _, p := range ph.CPU {
		fmt.Fprintf(&b, " %s %v (%v)", p.Name, us(p.PerMail), p.CPU.Round(time.Millisecond))
	}
	fmt.Fprintf(&b, "\n  cpu in all   %v/mail, %v over %v: %.2f cores\n", us(ph.TotalPerMail), ph.TotalCPU.Round(time.Millisecond), ph.Wall.Round(time.Millisecond), ph.Cores)
	r := ph.Ratios
	var parts []string
	if r.WorkerCPUVsVerify > 0 {
		parts = append(parts, fmt.Sprintf("worker cpu/mail %.1f× bare verify", r.WorkerCPUVsVerify))
	}
	if r.AllCPUVsVerify > 0 {
		parts = append(parts, fmt.Sprintf("all cpu/mail %.1f× bare verify", r.AllCPUVsVerify))
	}
	if r.EndToEndVsVerify > 0 {
		parts = append(parts, fmt.Sprintf("end-to-end mails/s %.3f of bare verify on every core", r.EndToEndVsVerify))
	}
	if r.EndToEndVsPublish > 0 {
		parts = append(parts, fmt.Sprintf("%.3f of JetStream batch publish, %.3f of consume (accepted/s %.3f of publish)",
			r.EndToEndVsPublish, r.EndToEndVsConsume, r.AcceptedVsPublish))
	}
	if len(parts) > 0 {
		fmt.Fprintf(&b, "  ratios       %s\n", strings.Join(parts, ";\n               "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteJSON writes the measurement as indented JSON to the file path.
func (m *Measurement) WriteJSON(path string) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("loadtest: JSON report: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("loadtest: JSON report: %w", err)
	}
	return nil
}

// us rounds d for printing as a CPU time per mail.
func us(d time.Duration) time.Duration {
	if d >= time.Millisecond {
		return d.Round(10 * time.Microsecond)
	}
	return d.Round(100 * time.Nanosecond)
}

func kib(n float64) string {
	if n >= 1<<20 {
		return fmt.Sprintf("%.1f MiB", n/(1<<20))
	}
	return fmt.Sprintf("%.1f KiB", n/1024)
}
