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

	"github.com/mailscope/mailscope/contracts"
)

// Report is what a run measured. Durations in its JSON form are
// integers of nanoseconds.
type Report struct {
	// Config is the run's effective configuration.
	Config Config `json:"-"`
	// Token is in every envelope recipient of the run (and every
	// Message-ID of a synthetic mail).
	Token string `json:"token"`
	// OpenLoop tells a run at a fixed Rate (mails/s); Clients the
	// connections (SMTP and LMTP).
	OpenLoop bool    `json:"open_loop"`
	Rate     float64 `json:"rate,omitempty"`
	Clients  int     `json:"clients"`

	// Sent counts the transactions begun (MAIL FROM sent).
	Sent int `json:"sent"`
	// Accepted counts the mails answered 250.
	Accepted int `json:"accepted"`
	// Refused counts the mails refused, by reply code.
	Refused map[int]int `json:"refused"`
	// TransportErrors counts dials and transactions that ended without
	// an SMTP reply; FirstError is the first of them.
	TransportErrors int    `json:"transport_errors"`
	FirstError      string `json:"first_error,omitempty"`
	// Elapsed is the sending phase: from the first mail to the last
	// reply.
	Elapsed time.Duration `json:"elapsed_ns"`
	// Late counts open-loop mails whose DATA started more than a
	// millisecond after its scheduled time (no free connection, or a
	// slow MAIL/RCPT); LateMax is the worst. Their lateness is in every
	// latency.
	Late    int           `json:"late"`
	LateMax time.Duration `json:"late_max_ns"`

	// Transaction is the latency of accepted mails from MAIL FROM (in
	// an open loop, from the scheduled time) to the 250 after DATA.
	Transaction Latency `json:"transaction"`
	// Store is the latency of accepted mails from the end of DATA to the
	// 250: what the producer takes to have the mail stored.
	Store Latency `json:"store"`
	// AcceptedPerSec is Accepted over Elapsed.
	AcceptedPerSec float64 `json:"accepted_per_sec"`

	// Outcomes tells whether outcomes were followed (a NATS URL was
	// given); the fields below are zero when not.
	Outcomes bool `json:"outcomes"`
	// EndToEnd is the latency of accepted mails from the DATA command
	// (in an open loop, from its scheduled time) to their outcome event.
	EndToEnd Latency `json:"end_to_end"`
	// Completed counts accepted mails whose outcome arrived.
	Completed int `json:"completed"`
	// OutcomesPerSec is Completed over the time from the first mail to
	// the last outcome: the end-to-end throughput.
	OutcomesPerSec float64 `json:"outcomes_per_sec"`
	// Dispositions and DKIM count the outcomes of accepted mails by
	// disposition and by the result of the first signature.
	Dispositions map[string]int `json:"dispositions"`
	DKIM         map[string]int `json:"dkim"`
	// Missing counts accepted mails without an outcome after the drain
	// (lost outcomes); it must be 0. MissingIDs lists the first few
	// envelope recipients.
	Missing    int      `json:"missing"`
	MissingIDs []string `json:"missing_ids,omitempty"`
	// WrongDisposition counts broken mails (Config.DeadEvery) whose
	// outcome is not "dead".
	WrongDisposition int `json:"wrong_disposition"`
	// Unexpected counts corpus mails whose outcome is not what the
	// corpus says (disposition processed, the DKIM result of its
	// Kind); UnexpectedFirst describes the first few.
	Unexpected      int      `json:"unexpected"`
	UnexpectedFirst []string `json:"unexpected_first,omitempty"`
	// Drained is how long the wait for outstanding outcomes took.
	Drained time.Duration `json:"drained_ns"`
	// OutcomesOfRefused counts outcomes of mails that were not accepted:
	// stored although the client got no 250 (say, a lost reply).
	OutcomesOfRefused int `json:"outcomes_of_refused"`
	// DuplicateOutcomes counts outcome events beyond the first per mail
	// seen on the subscription (a mail processed twice publishes its
	// outcome twice; the stream's dedup keeps one). It must be 0.
	DuplicateOutcomes int `json:"duplicate_outcomes"`
	// Undecodable counts outcome events that were not JSON outcomes;
	// Foreign those carrying this run's token but naming no mail of it.
	Undecodable int `json:"undecodable"`
	Foreign     int `json:"foreign"`
}

// report builds the report; the subscription is stopped.
func (r *run) report(sendEnd time.Time, drained time.Duration, outcomes bool) Report {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep := Report{
		Config:            r.cfg,
		Token:             r.token,
		OpenLoop:          r.cfg.Rate > 0,
		Rate:              r.cfg.Rate,
		Clients:           r.cfg.Clients + r.cfg.LMTPClients,
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
	mails := slices.Clone(r.mails)
	sort.Slice(mails, func(i, j int) bool { return mails[i].n < mails[j].n })
	for _, m := range mails {
		if !m.scheduled.IsZero() && !m.dataStart.IsZero() {
			if late := m.dataStart.Sub(m.scheduled); late > time.Millisecond {
				rep.Late++
				rep.LateMax = max(rep.LateMax, late)
			}
		}
		if !m.accepted {
			if m.code != 0 {
				rep.Refused[m.code]++
			}
			if !m.outcomeAt.IsZero() {
				rep.OutcomesOfRefused++
			}
			continue
		}
		txStart := m.started
		if !m.scheduled.IsZero() {
			txStart = m.scheduled
		}
		txn = append(txn, m.answered.Sub(txStart))
		store = append(store, m.answered.Sub(m.dataEnd))
		if !outcomes {
			continue
		}
		if m.outcomeAt.IsZero() {
			rep.Missing++
			if len(rep.MissingIDs) < 10 {
				rep.MissingIDs = append(rep.MissingIDs, m.rcpt)
			}
			continue
		}
		rep.Completed++
		e2e = append(e2e, m.outcomeAt.Sub(m.latencyStart()))
		rep.Dispositions[m.disposition]++
		if m.broken && m.disposition != "dead" {
			rep.WrongDisposition++
		}
		if m.corpus != nil && (m.disposition != string(contracts.Processed) || m.dkim != m.corpus.Kind.Want()) {
			rep.Unexpected++
			if len(rep.UnexpectedFirst) < 10 {
				rep.UnexpectedFirst = append(rep.UnexpectedFirst, fmt.Sprintf("%s (%s): %s dkim=%s, want processed dkim=%s",
					m.corpus.MessageID, m.corpus.Kind, m.disposition, m.dkim, m.corpus.Kind.Want()))
			}
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
	if rep.DuplicateOutcomes > 0 {
		errs = append(errs, fmt.Errorf("%d duplicate outcome events", rep.DuplicateOutcomes))
	}
	if rep.Unexpected > 0 {
		errs = append(errs, fmt.Errorf("%d outcomes not what the corpus says (first: %s)", rep.Unexpected, strings.Join(rep.UnexpectedFirst, "; ")))
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
	loop := "closed loop"
	if rep.OpenLoop {
		loop = fmt.Sprintf("open loop at %.0f mails/s", rep.Rate)
	}
	fmt.Fprintf(&b, "load test %s, %s: %d SMTP + %d LMTP connections, ", rep.Token, loop, c.Clients, c.LMTPClients)
	switch {
	case c.Corpus != nil:
		fmt.Fprintf(&b, "corpus of %d mails", len(c.Corpus.Mails))
	case c.Signer != nil:
		fmt.Fprintf(&b, "mails of %d bytes, DKIM-signed (d=%s s=%s)", c.Size, c.Signer.Domain, c.Signer.Selector)
	default:
		fmt.Fprintf(&b, "mails of %d bytes", c.Size)
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
	fmt.Fprintf(&b, "  sending      %v, %.0f accepted/s", round(rep.Elapsed), rep.AcceptedPerSec)
	if rep.OpenLoop {
		fmt.Fprintf(&b, "; %d sends late by over 1ms (worst %v)", rep.Late, round(rep.LateMax))
	}
	b.WriteString("\n")
	from := "MAIL FROM"
	if rep.OpenLoop {
		from = "scheduled time"
	}
	fmt.Fprintf(&b, "  transaction  %v   (%s to 250)\n", rep.Transaction, from)
	fmt.Fprintf(&b, "  store        %v   (end of DATA to 250)\n", rep.Store)
	if rep.Outcomes {
		from = "DATA"
		if rep.OpenLoop {
			from = "scheduled DATA"
		}
		fmt.Fprintf(&b, "  end to end   %v   (%s to outcome event)\n", rep.EndToEnd, from)
		fmt.Fprintf(&b, "  outcomes     %d of %d accepted, %.0f/s; lost %d, duplicated %d after a drain of %v\n",
			rep.Completed, rep.Accepted, rep.OutcomesPerSec, rep.Missing, rep.DuplicateOutcomes, round(rep.Drained))
		fmt.Fprintf(&b, "  dispositions %s   dkim %s\n", counts(rep.Dispositions), counts(rep.DKIM))
		if c.Corpus != nil {
			fmt.Fprintf(&b, "  expected     %d outcomes not what the corpus says\n", rep.Unexpected)
			for _, u := range rep.UnexpectedFirst {
				fmt.Fprintf(&b, "               %s\n", u)
			}
		}
		if rep.OutcomesOfRefused+rep.Undecodable+rep.Foreign > 0 {
			fmt.Fprintf(&b, "  also         %d outcomes of mails not accepted, %d undecodable, %d naming no mail of the run\n",
				rep.OutcomesOfRefused, rep.Undecodable, rep.Foreign)
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
