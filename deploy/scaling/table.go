package scaling

import (
	"fmt"
	"strings"
)

// Table renders every step'th second of r as a Markdown table, then a
// summary line.
func (r Result) Table(every int) string {
	if every <= 0 {
		every = 30
	}
	var b strings.Builder
	b.WriteString("|      t | mail/s in | pods | ready | working | acked/s |       lag |   backlog |\n")
	b.WriteString("|-------:|----------:|-----:|------:|--------:|--------:|----------:|----------:|\n")
	for _, s := range r.Steps {
		if s.T%every != 0 {
			continue
		}
		working := 0.0
		if r.Params.Rate > 0 {
			working = s.Processed / r.Params.Rate
		}
		fmt.Fprintf(&b, "| %5ds | %9.0f | %4d | %5d | %7.1f | %7.0f | %9.0f | %9.0f |\n",
			s.T, s.Arrivals, s.Replicas, s.Ready, working, s.Processed, s.Lag, s.Backlog)
	}
	b.WriteString(r.Summary())
	b.WriteString("\n")
	return b.String()
}

// Summary is one line: the parameters that matter and the figures.
func (r Result) Summary() string {
	p := r.Params
	drain, recovery := "never", "never"
	if r.DrainSeconds >= 0 {
		drain = fmt.Sprintf("%d s", r.DrainSeconds)
	}
	if r.RecoverySeconds >= 0 {
		recovery = fmt.Sprintf("%d s", r.RecoverySeconds)
	}
	return fmt.Sprintf("lagThreshold %d, MaxAckPending %d (useful workers %d), rate %.0f/s, in-flight %d: "+
		"peak pods %d at %d s, peak working %.1f, peak backlog %.0f at %d s (longest wait %d s), backlog gone %s after the burst's start, %s after its end (t = %d s), %d pod-seconds",
		p.LagThreshold, p.MaxAckPending, r.UsefulWorkers, p.Rate, p.InFlight(),
		r.PeakReplicas, r.PeakReplicasAt, r.PeakEffective, r.PeakBacklog, r.PeakBacklogAt, r.PeakWait, recovery, drain, r.BurstEnd, r.PodSeconds)
}

// SideBySide renders every step'th second up to until of several results
// of the same traffic as one Markdown table: pods, workers' worth working
// and backlog of each, headed by its MaxAckPending.
func SideBySide(every, until int, rs ...Result) string {
	if every <= 0 {
		every = 30
	}
	var b strings.Builder
	b.WriteString("|      t | mail/s in |")
	sep := "|-------:|----------:|"
	for _, r := range rs {
		fmt.Fprintf(&b, " pods | working | backlog (MAP %d) |", r.Params.MaxAckPending)
		sep += "-----:|--------:|" + strings.Repeat("-", len(fmt.Sprint(r.Params.MaxAckPending))+15) + ":|"
	}
	b.WriteString("\n" + sep + "\n")
	if len(rs) == 0 {
		return b.String()
	}
	for i, s := range rs[0].Steps {
		if s.T%every != 0 || s.T > until {
			continue
		}
		fmt.Fprintf(&b, "| %5ds | %9.0f |", s.T, s.Arrivals)
		for _, r := range rs {
			if i >= len(r.Steps) {
				b.WriteString("      |         |                 |")
				continue
			}
			x := r.Steps[i]
			w := len(fmt.Sprint(r.Params.MaxAckPending)) + 15
			fmt.Fprintf(&b, " %4d | %7.1f | %*.0f |", x.Replicas, x.Processed/r.Params.Rate, w, x.Backlog)
		}
		b.WriteString("\n")
	}
	return b.String()
}
