//go:build faults

package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/contracts"
)

// waitDrained waits until every stored mail has been taken to its end:
// the mail stream (a work queue) and the held stream are empty and
// neither consumer has mail pending or awaiting an ack. It reads stream
// state as the observer.
func (s *system) waitDrained() {
	s.t.Helper()
	n := contracts.DefaultNames()
	var state string
	empty := func(stream, consumer string) bool {
		ctx, cancel := context.WithTimeout(s.t.Context(), 2*time.Second)
		defer cancel()
		st, err := s.observer.Stream(ctx, stream)
		if err != nil {
			state += fmt.Sprintf(" %s: %v;", stream, err)
			return false
		}
		si, err := st.Info(ctx)
		if err != nil {
			state += fmt.Sprintf(" %s: %v;", stream, err)
			return false
		}
		c, err := st.Consumer(ctx, consumer)
		if err != nil {
			state += fmt.Sprintf(" %s/%s: %v;", stream, consumer, err)
			return false
		}
		ci, err := c.Info(ctx)
		if err != nil {
			state += fmt.Sprintf(" %s/%s: %v;", stream, consumer, err)
			return false
		}
		state += fmt.Sprintf(" %s: %d messages, consumer %s: %d pending, %d unacknowledged, %d redelivered, %d waiting pulls;",
			stream, si.State.Msgs, consumer, ci.NumPending, ci.NumAckPending, ci.NumRedelivered, ci.NumWaiting)
		// Drained is what the workers' consumer says: nothing pending,
		// nothing unacknowledged. nats-server 2.15.2 can keep an
		// acknowledged message in a work-queue stream across a restart
		// (the stream counts it, the consumer does not): such a mail had
		// its outcome before its ack, and the tally still checks that
		// every accepted mail has one, so a real loss fails there.
		return ci.NumPending == 0 && ci.NumAckPending == 0
	}
	waitState(s.t, "the mail and held streams to drain", func() (bool, string) {
		state = ""
		ok := empty(n.MailStream, n.Consumer) && empty(n.HeldStream, n.HeldConsumer)
		return ok, state
	})
}

// stored is one message read back from a stream.
type stored struct {
	seq     uint64
	subject string
	headers map[string][]string
	data    []byte
}

// readAll reads every message of stream as the operator, up to the last
// sequence the stream has now.
func (s *system) readAll(stream string) []stored {
	s.t.Helper()
	ctx := s.t.Context()
	var last uint64
	waitFor(s.t, "the state of "+stream, func() bool {
		st, err := s.operator.Stream(ctx, stream)
		if err != nil {
			return false
		}
		si, err := st.Info(ctx)
		if err != nil {
			return false
		}
		last = si.State.LastSeq
		return true
	})
	if last == 0 {
		return nil
	}
	cons, err := s.operator.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{})
	if err != nil {
		s.t.Fatalf("read %s: %v", stream, err)
	}
	var out []stored
	deadline := time.Now().Add(waitLimit)
	for seq := uint64(0); seq < last; {
		if time.Now().After(deadline) {
			s.t.Fatalf("read %s: at sequence %d of %d after %v", stream, seq, last, waitLimit)
		}
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			continue
		}
		for m := range batch.Messages() {
			md, err := m.Metadata()
			if err != nil {
				s.t.Fatalf("read %s: %v", stream, err)
			}
			seq = md.Sequence.Stream
			out = append(out, stored{seq: seq, subject: m.Subject(), headers: m.Headers(), data: m.Data()})
		}
	}
	return out
}

// result is what one mode counted.
type result struct {
	mode        string
	mails       int
	accepted    int
	outcomes    int // outcome events of the mode's mail, dead ones included
	dead        int // dead letters
	duplicates  int // logical mails with more than one outcome or dead letter
	dupIDs      int // mail ids with more than one outcome event or dead letter
	lost        int // mails answered 250 with neither
	unaccepted  int // mails never answered 250 (5xx, or the run ended)
	redelivered int // outcome events of a later delivery attempt than the first
	lostReplies int // ends of DATA whose reply never came: resends
	tempfails   int // 4xx replies
	faults      int // faults injected
	seconds     float64
	// problems counts broken promises; the first few are kept to print,
	// with notes (dead letters: a defined end, not a failure).
	problems int
	lines    []string
}

// maxLines is how many problems and notes a result keeps to print.
const maxLines = 20

func (r *result) problem(format string, args ...any) {
	r.problems++
	r.note(format, args...)
}

func (r *result) note(format string, args ...any) {
	if len(r.lines) < maxLines {
		r.lines = append(r.lines, fmt.Sprintf(format, args...))
	}
}

// tally counts the outcome events and dead letters of mails by logical
// mail (its Message-ID and recipient) and by mail id.
func tally(t *testing.T, mode string, mails []*mail, outcomes, dead []stored) *result {
	t.Helper()
	r := &result{mode: mode, mails: len(mails)}
	byMessageID := map[string]*mail{}
	byRcpt := map[string]*mail{}
	for _, m := range mails {
		byMessageID[m.messageID] = m
		byRcpt[m.rcpt] = m
		if m.accepted {
			r.accepted++
		} else {
			r.unaccepted++
			r.problem("%s never answered 250: %v", m.messageID, m.failed)
		}
		r.lostReplies += m.lostReplies
		r.tempfails += m.tempfails
	}
	final := map[*mail]int{}       // outcomes that are not dead, plus dead letters
	deadEvents := map[*mail]int{}  // outcomes of disposition dead
	deadLetters := map[*mail]int{} // dead letters
	perID := map[string]int{}
	for _, o := range outcomes {
		var ev contracts.Outcome
		if err := json.Unmarshal(o.data, &ev); err != nil {
			r.problem("outcome %d is not JSON: %v", o.seq, err)
			continue
		}
		m := byMessageID[ev.MessageID]
		if m == nil {
			r.problem("outcome %d (%s) is of no mail sent: Message-ID %q", o.seq, ev.ID, ev.MessageID)
			continue
		}
		r.outcomes++
		perID["outcome "+ev.ID]++
		if ev.Attempt > 1 {
			r.redelivered++
		}
		if len(ev.Envelope.RcptTo) != 1 || ev.Envelope.RcptTo[0] != m.rcpt || ev.Envelope.MailFrom != m.from {
			r.problem("outcome %s of %s has the envelope %s -> %v, want %s -> %s", ev.ID, m.messageID, ev.Envelope.MailFrom, ev.Envelope.RcptTo, m.from, m.rcpt)
		}
		if ev.Disposition == contracts.Dead {
			deadEvents[m]++
			continue
		}
		final[m]++
		if ev.Disposition != contracts.Processed {
			r.problem("outcome %s of %s: disposition %s (%s)", ev.ID, m.messageID, ev.Disposition, ev.Reason)
		}
		// A mail stored other than byte for byte fails its signature.
		for _, d := range ev.Auth.DKIM {
			if d.Result == contracts.ResultFail || d.Result == contracts.ResultPermError {
				r.problem("outcome %s of %s: DKIM %s (%s): the mail was not stored as sent", ev.ID, m.messageID, d.Result, d.Reason)
			}
		}
	}
	for _, d := range dead {
		rcpts := d.headers[contracts.HeaderRcptTo]
		var m *mail
		if len(rcpts) == 1 {
			m = byRcpt[rcpts[0]]
		}
		if m == nil {
			r.problem("dead letter %d is of no mail sent: recipients %v", d.seq, rcpts)
			continue
		}
		r.dead++
		final[m]++
		deadLetters[m]++
		id := first(d.headers[contracts.HeaderOriginalID])
		perID["dead "+id]++
		reason := first(d.headers[contracts.HeaderDeadReason])
		r.note("dead letter %s of %s: %s", id, m.messageID, reason)
	}
	for _, m := range mails {
		switch n := final[m]; {
		case n > 1:
			r.duplicates++
			r.problem("%s has %d outcomes and dead letters (%d sends: %d replies lost, %d 4xx)", m.messageID, n, m.sends, m.lostReplies, m.tempfails)
		case n == 0 && m.accepted:
			r.lost++
			r.problem("%s was answered 250 and has no outcome and no dead letter (%d sends)", m.messageID, m.sends)
		}
		if deadEvents[m] > deadLetters[m] {
			r.problem("%s has %d dead outcomes and %d dead letters", m.messageID, deadEvents[m], deadLetters[m])
		}
	}
	for id, n := range perID {
		if n > 1 {
			r.dupIDs++
			r.problem("%s stored %d times", id, n)
		}
	}
	return r
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// check fails t for any broken promise of r: a mail answered 250 is
// never lost, no mail has two outcomes (or an outcome and a dead
// letter), no id is stored twice, every mail is answered 250 in the end,
// and every outcome is of a mail sent, with its envelope and its bytes.
func (r *result) check(t *testing.T) {
	t.Helper()
	for _, l := range r.lines {
		t.Log(l)
	}
	if r.problems > 0 {
		t.Errorf("%s: %d problems: %d lost, %d mails with duplicates, %d ids stored twice, %d never accepted (of %d mails; the first problems above)",
			r.mode, r.problems, r.lost, r.duplicates, r.dupIDs, r.unaccepted, r.mails)
	}
}

// tableHeader and row print results as a table.
const tableHeader = "mode       mails accepted outcomes dead dup dup-id lost resends  4xx redeliv faults  secs"

func (r *result) row() string {
	return fmt.Sprintf("%-10s %5d %8d %8d %4d %3d %6d %4d %7d %4d %7d %6d %5.0f",
		r.mode, r.mails, r.accepted, r.outcomes, r.dead, r.duplicates, r.dupIDs, r.lost, r.lostReplies, r.tempfails, r.redelivered, r.faults, r.seconds)
}

// table prints results under the header.
func table(results []*result) string {
	var b strings.Builder
	b.WriteString(tableHeader + "\n")
	for _, r := range results {
		b.WriteString(r.row() + "\n")
	}
	return b.String()
}
