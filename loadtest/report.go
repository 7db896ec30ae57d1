package loadtest

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"
)

// Report is what a run measured.
type Report struct {
	// Config is the run's effective configuration.
	Config Config
	// Token is in every Message-ID and recipient of the run.
	Token string

	// Sent counts the transactions begun (MAIL FROM sent).
	Sent int
	// Accepted counts the mails answered 250.
	Accepted int
	// Refused counts the mails refused, by reply code.
	Refused map[int]int
	// TransportErrors counts dials and transactions that ended without
	// an SMTP reply; FirstError is the first of them.
	TransportErrors int
	FirstError      string
	// Elapsed is the sending phase: from the first mail to the last
	// reply.
	Elapsed time.Duration

	// Transaction is the latency of accepted mails from MAIL FROM to the
	// 250 after DATA.
	Transaction Latency
	// Store is the latency of accepted mails from the end of DATA to the
	// 250: what the producer takes to have the mail stored.
	Store Latency
	// AcceptedPerSec is Accepted over Elapsed.
	AcceptedPerSec float64

	// Outcomes tells whether outcomes were followed (a NATS URL was
	// given); the fields below are zero when not.
	Outcomes bool
	// EndToEnd is the latency of accepted mails from the end of DATA to
	// their outcome event.
	EndToEnd Latency
	// Completed counts accepted mails whose outcome arrived.
	Completed int
	// OutcomesPerSec is Completed over the time from the first mail to
	// the last outcome.
	OutcomesPerSec float64
	// Dispositions and DKIM count the outcomes of accepted mails by
	// disposition and by the result of the first signature.
	Dispositions map[string]int
	DKIM         map[string]int
	// Missing counts accepted mails without an outcome after the drain;
	// it must be 0. MissingIDs lists the first few Message-IDs.
	Missing    int
	MissingIDs []string
	// WrongDisposition counts broken mails (Config.DeadEvery) whose
	// outcome is not "dead".
	WrongDisposition int
	// Drained is how long the wait for outstanding outcomes took.
	Drained time.Duration
	// OutcomesOfRefused counts outcomes of mails that were not accepted:
	// stored although the client got no 250 (say, a lost reply).
	OutcomesOfRefused int
	// DuplicateOutcomes counts outcome events beyond the first per mail
	// (a redelivered mail's outcome is published again; the stream keeps
	// one, a core subscription sees both).
	DuplicateOutcomes int
	// Undecodable counts outcome events that were not JSON outcomes;
	// Foreign those carrying this run's token but naming no mail of it.
	Undecodable, Foreign int
}

// Latency summarizes a set of durations.
type Latency struct {
	N                  int
	P50, P95, P99, Max time.Duration
}

// latency returns the nearest-rank percentiles of d, which it sorts.
func latency(d []time.Duration) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	slices.Sort(d)
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(d))+0.999999) - 1
		return d[min(max(i, 0), len(d)-1)]
	}
	return Latency{N: len(d), P50: rank(0.50), P95: rank(0.95), P99: rank(0.99), Max: d[len(d)-1]}
}

func (l Latency) String() string {
	if l.N == 0 {
		return "no samples"
	}
	return fmt.Sprintf("p50 %v  p95 %v  p99 %v  max %v  (n=%d)", round(l.P50), round(l.P95), round(l.P99), round(l.Max), l.N)
}

func round(d time.Duration) time.Duration {
	switch {
	case d >= time.Second:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond)
	default:
		return d.Round(time.Microsecond)
	}
}

// report builds the report; the subscription is stopped.
func (r *run) report(sendEnd time.Time, drained time.Duration, outcomes bool) Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := Report{
		Config:            r.cfg,
		Token:             r.token,
		Sent:              r.sent,
		Accepted:          r.accepted,
		Refused:           map[int]int{},
		TransportErrors:   r.transport,
		Elapsed:           sendEnd.Sub(r.start),
		Outcomes:          outcomes,
		DuplicateOutcomes: r.duplicates,
		Undecodable:       r.undecodable,
		Foreign:           r.foreign,
	}
	if r.firstErr != nil {
		rep.FirstError = r.firstErr.Error()
	}
	var txn, store, e2e []time.Duration
	if outcomes {
		rep.Dispositions, rep.DKIM = map[string]int{}, map[string]int{}
		rep.Drained = drained
	}
	mails := slices.Collect(maps.Values(r.byID))
	sort.Slice(mails, func(i, j int) bool { return mails[i].n < mails[j].n })
	for _, m := range mails {
		if !m.accepted {
			if m.code != 0 {
				rep.Refused[m.code]++
			}
			if !m.outcomeAt.IsZero() {
				rep.OutcomesOfRefused++
			}
			continue
		}
		txn = append(txn, m.answered.Sub(m.started))
		store = append(store, m.answered.Sub(m.dataEnd))
		if !outcomes {
			continue
		}
		if m.outcomeAt.IsZero() {
			rep.Missing++
			if len(rep.MissingIDs) < 10 {
				rep.MissingIDs = append(rep.MissingIDs, m.messageID)
			}
			continue
		}
		rep.Completed++
		e2e = append(e2e, m.outcomeAt.Sub(m.dataEnd))
		rep.Dispositions[m.disposition]++
		if m.broken && m.disposition != "dead" {
			rep.WrongDisposition++
		}
		rep.DKIM[m.dkim]++
	}
	rep.Transaction, rep.Store, rep.EndToEnd = latency(txn), latency(store), latency(e2e)
	if s := rep.Elapsed.Seconds(); s > 0 {
		rep.AcceptedPerSec = float64(rep.Accepted) / s
	}
	if s := r.lastOutcome.Sub(r.start).Seconds(); s > 0 && rep.Completed > 0 {
		rep.OutcomesPerSec = float64(rep.Completed) / s
	}
	return rep
}

// Err returns an error describing everything that went wrong, nil when
// every mail was accepted and, if outcomes were followed, every one has
// exactly its outcome.
func (rep Report) Err() error {
	var errs []error
	if n := rep.Sent - rep.Accepted; n > 0 {
		errs = append(errs, fmt.Errorf("%d of %d mails not accepted (refused %v, transport errors %d)", n, rep.Sent, rep.Refused, rep.TransportErrors))
	} else if rep.TransportErrors > 0 {
		errs = append(errs, fmt.Errorf("%d transport errors, first: %s", rep.TransportErrors, rep.FirstError))
	}
	if rep.Sent == 0 {
		errs = append(errs, errors.New("no mail sent"))
	}
	if rep.Missing > 0 {
		errs = append(errs, fmt.Errorf("%d accepted mails have no outcome after %v (first: %s)", rep.Missing, rep.Config.Drain, strings.Join(rep.MissingIDs, ", ")))
	}
	if rep.WrongDisposition > 0 {
		errs = append(errs, fmt.Errorf("%d broken mails have an outcome other than dead", rep.WrongDisposition))
	}
	if rep.Undecodable > 0 || rep.Foreign > 0 {
		errs = append(errs, fmt.Errorf("%d undecodable outcome events, %d naming no mail of the run", rep.Undecodable, rep.Foreign))
	}
	return errors.Join(errs...)
}

// Write prints the report for people.
func (rep Report) Write(w io.Writer) error {
	c := rep.Config
	var b strings.Builder
	fmt.Fprintf(&b, "load test %s: %d SMTP + %d LMTP clients, mails of %d bytes", rep.Token, c.Clients, c.LMTPClients, c.Size)
	if c.Signer != nil {
		fmt.Fprintf(&b, ", DKIM-signed (d=%s s=%s)", c.Signer.Domain, c.Signer.Selector)
	}
	b.WriteString("\n")
	fmt.Fprintf(&b, "  mails        sent %d  accepted %d  refused %d  transport errors %d\n", rep.Sent, rep.Accepted, sum(rep.Refused), rep.TransportErrors)
	if len(rep.Refused) > 0 {
		codes := slices.Sorted(maps.Keys(rep.Refused))
		b.WriteString("  refused by   ")
		for _, code := range codes {
			fmt.Fprintf(&b, "%d: %d  ", code, rep.Refused[code])
		}
		b.WriteString("\n")
	}
	if rep.FirstError != "" {
		fmt.Fprintf(&b, "  first error  %s\n", rep.FirstError)
	}
	fmt.Fprintf(&b, "  sending      %v, %.0f accepted/s\n", round(rep.Elapsed), rep.AcceptedPerSec)
	fmt.Fprintf(&b, "  transaction  %v   (MAIL FROM to 250)\n", rep.Transaction)
	fmt.Fprintf(&b, "  store        %v   (end of DATA to 250)\n", rep.Store)
	if rep.Outcomes {
		fmt.Fprintf(&b, "  end to end   %v   (end of DATA to outcome event)\n", rep.EndToEnd)
		fmt.Fprintf(&b, "  outcomes     %d of %d accepted, %.0f/s; missing %d after a drain of %v\n",
			rep.Completed, rep.Accepted, rep.OutcomesPerSec, rep.Missing, round(rep.Drained))
		fmt.Fprintf(&b, "  dispositions %s   dkim %s\n", counts(rep.Dispositions), counts(rep.DKIM))
		if rep.OutcomesOfRefused+rep.DuplicateOutcomes+rep.Undecodable+rep.Foreign > 0 {
			fmt.Fprintf(&b, "  also         %d outcomes of mails not accepted, %d duplicate events, %d undecodable, %d naming no mail of the run\n",
				rep.OutcomesOfRefused, rep.DuplicateOutcomes, rep.Undecodable, rep.Foreign)
		}
	} else {
		b.WriteString("  end to end   not measured (no NATS URL)\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func sum(m map[int]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func counts(m map[string]int) string {
	if len(m) == 0 {
		return "-"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}
