//go:build faults

package faults

import (
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// Timeouts of the sender, an MTA's: past them a reply counts as lost.
// They are far above the producer's publish timeout (5s), after which
// it answers 451.
const (
	dialTimeout    = 5 * time.Second
	commandTimeout = 15 * time.Second
	dataTimeout    = 30 * time.Second
)

// Backoff of a sender before it tries a mail again: backoffBase doubled
// per failure in a row, up to backoffMax, with jitter. An MTA waits
// minutes; the suite keeps the pressure on.
const (
	backoffBase = 10 * time.Millisecond
	backoffMax  = 500 * time.Millisecond
)

// traffic is what the senders of one mode share: the mails to send and
// the signals the fault schedule waits on.
type traffic struct {
	addr  string
	queue chan *mail // in order: mail k is the k-th sent
	sched *schedule
	// answered counts mails answered for good (a 250, or a 5xx); each
	// one also ticks progress (without blocking), which the fault
	// schedule waits on.
	answered atomic.Int64
	progress chan struct{}
	// inData ticks (without blocking) when a sender has written a
	// mail's bytes and waits for DATA's reply: the moment a kill is
	// mid-transaction.
	inData chan struct{}
	// dialFailures and dropped count failed dials and connections lost
	// before the end of DATA (nothing stored: a plain retry).
	dialFailures, dropped atomic.Int64
}

func newTraffic(addr string, mails []*mail, sched *schedule) *traffic {
	tr := &traffic{addr: addr, sched: sched, queue: make(chan *mail, len(mails)), progress: make(chan struct{}, 1), inData: make(chan struct{}, 1)}
	for _, m := range mails {
		tr.queue <- m
	}
	close(tr.queue)
	return tr
}

func tick(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// sender is one SMTP client of the producer that behaves like an MTA: a
// mail whose DATA reply is lost (connection closed, timeout) or is a 4xx
// is sent again, the same bytes to the same envelope, after a short
// backoff, until a 250 or a 5xx. It keeps its connection from mail to
// mail and dials again when it breaks.
type sender struct {
	tr  *traffic
	rng *rand.Rand
	c   *smtp.Client
}

// run sends mails from the queue until it is empty or ctx ends.
func (s *sender) run(ctx context.Context) {
	defer s.close(true)
	for m := range s.tr.queue {
		s.tr.sched.wait(ctx, m.n)
		s.deliver(ctx, m)
	}
}

// deliver tries m until it is answered for good or ctx ends.
func (s *sender) deliver(ctx context.Context, m *mail) {
	for failures := 0; ; failures++ {
		if failures > 0 && !s.backoff(ctx, failures) {
			m.failed = ctx.Err()
			return
		}
		if ctx.Err() != nil {
			m.failed = ctx.Err()
			return
		}
		if s.c == nil {
			if err := s.dial(); err != nil {
				s.tr.dialFailures.Add(1)
				continue
			}
		}
		done, err := s.transaction(m)
		if done {
			if err == nil {
				m.accepted = true
			} else {
				m.failed = err
			}
			s.tr.answered.Add(1)
			tick(s.tr.progress)
			return
		}
	}
}

// transaction runs MAIL, RCPT and DATA once. done says m is answered
// for good: a 250 (err nil) or a 5xx (err the refusal). Otherwise the
// mail is to be sent again: the connection is dropped on a transport
// error, reset after a 4xx.
func (s *sender) transaction(m *mail) (done bool, err error) {
	refused := func(err error) (bool, error) {
		var se *smtp.SMTPError
		if !errors.As(err, &se) {
			s.tr.dropped.Add(1)
			s.close(false)
			return false, nil
		}
		if se.Code >= 500 {
			_ = s.c.Reset()
			return true, err
		}
		m.tempfails++
		if s.c.Reset() != nil {
			s.close(false)
		}
		return false, nil
	}
	if err := s.c.Mail(m.from, nil); err != nil {
		return refused(err)
	}
	if err := s.c.Rcpt(m.rcpt, nil); err != nil {
		return refused(err)
	}
	w, err := s.c.Data()
	if err != nil {
		return refused(err)
	}
	m.sends++
	_, err = w.Write(m.raw)
	tick(s.tr.inData)
	if err == nil {
		err = w.Close()
	}
	var se *smtp.SMTPError
	if err != nil && !errors.As(err, &se) {
		// The mail may have been stored: only a resend can tell.
		m.lostReplies++
		s.close(false)
		return false, nil
	}
	if err != nil {
		return refused(err)
	}
	return true, nil
}

func (s *sender) dial() error {
	conn, err := net.DialTimeout("tcp", s.tr.addr, dialTimeout)
	if err != nil {
		return err
	}
	c := smtp.NewClient(conn)
	c.CommandTimeout, c.SubmissionTimeout = commandTimeout, dataTimeout
	if err := c.Hello("mta.faults.test"); err != nil {
		_ = c.Close()
		return err
	}
	s.c = c
	return nil
}

// close ends the connection, politely when quit is set.
func (s *sender) close(quit bool) {
	if s.c == nil {
		return
	}
	if quit {
		_ = s.c.Quit()
	}
	_ = s.c.Close()
	s.c = nil
}

// backoff waits before the next try of a mail that failed failures
// times in a row; false when ctx ended first.
func (s *sender) backoff(ctx context.Context, failures int) bool {
	d := backoffBase << min(failures-1, 10)
	d = min(d, backoffMax)
	d = d/2 + time.Duration(s.rng.Int64N(int64(d/2)+1))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
