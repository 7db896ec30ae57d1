package loadtest

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/emersion/go-smtp"
)

// maxDialFailures is how many dials in a row a client may fail before it
// gives up; a client whose connection breaks dials again.
const maxDialFailures = 3

// client is one persistent SMTP or LMTP connection sending mail after
// mail until the run says stop.
type client struct {
	r    *run
	lmtp bool
	addr string
	c    *smtp.Client
}

// loop sends mail after mail. It dials first, then waits for begin to
// close, so that the run's clock starts with every connection open.
func (cl *client) loop(ctx context.Context, dialed func(), begin <-chan struct{}) {
	defer cl.close(true)
	dialFailures := 0
	if err := cl.dial(); err != nil {
		cl.r.transportError(err)
		dialFailures++
	}
	dialed()
	select {
	case <-begin:
	case <-ctx.Done():
		return
	}
	for {
		if cl.c == nil {
			if !cl.r.more(ctx) {
				return
			}
			if err := cl.dial(); err != nil {
				cl.r.transportError(err)
				if dialFailures++; dialFailures >= maxDialFailures {
					return
				}
				continue
			}
			dialFailures = 0
		}
		n, sched, ok := cl.r.next(ctx)
		if !ok {
			return
		}
		m := cl.r.newMail(n, cl.lmtp)
		m.scheduled = sched
		raw, err := cl.r.raw(m)
		if err != nil {
			cl.r.transportError(err)
			return
		}
		cl.send(ctx, m, raw)
	}
}

func (cl *client) dial() error {
	conn, err := net.DialTimeout("tcp", cl.addr, cl.r.cfg.Timeout)
	if err != nil {
		return err
	}
	if cl.lmtp {
		cl.c = smtp.NewClientLMTP(conn)
	} else {
		cl.c = smtp.NewClient(conn)
	}
	cl.c.CommandTimeout, cl.c.SubmissionTimeout = cl.r.cfg.Timeout, cl.r.cfg.Timeout
	if err := cl.c.Hello("loadtest.localhost"); err != nil {
		cl.close(false)
		return err
	}
	return nil
}

// close ends the connection, politely when quit is set.
func (cl *client) close(quit bool) {
	if cl.c == nil {
		return
	}
	if quit {
		_ = cl.c.Quit()
	}
	_ = cl.c.Close()
	cl.c = nil
}

// send runs one transaction: MAIL, RCPT, DATA. A refusal before the end
// of DATA is followed by RSET; a transport error drops the connection,
// and the next mail dials again. In an open loop, DATA waits for the
// mail's scheduled time (MAIL and RCPT go first, when the connection is
// free early).
func (cl *client) send(ctx context.Context, m *mail, raw []byte) {
	m.started = time.Now()
	cl.r.register(m)
	fail := func(err error, midTransaction bool) {
		cl.r.answered(m, time.Now(), err)
		var se *smtp.SMTPError
		if !errors.As(err, &se) {
			cl.close(false)
			return
		}
		if midTransaction && cl.c.Reset() != nil {
			cl.close(false)
		}
	}
	if err := cl.c.Mail(m.from, nil); err != nil {
		fail(err, true)
		return
	}
	if err := cl.c.Rcpt(m.rcpt, nil); err != nil {
		fail(err, true)
		return
	}
	if wait := time.Until(m.scheduled); !m.scheduled.IsZero() && wait > 0 {
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	cl.r.dataStart(m, time.Now())
	w, err := cl.c.Data()
	if err != nil {
		fail(err, true)
		return
	}
	if _, err := w.Write(raw); err != nil {
		fail(err, false)
		return
	}
	cl.r.dataEnd(m, time.Now())
	if cl.lmtp {
		_, err = w.CloseWithLMTPResponse()
		var perRcpt smtp.LMTPDataError
		if errors.As(err, &perRcpt) {
			// One recipient per mail: its reply is the mail's.
			if se := perRcpt[m.rcpt]; se != nil {
				err = se
			} else {
				err = errors.New("loadtest: LMTP refusal names no recipient of the mail")
			}
		}
	} else {
		err = w.Close()
	}
	if err != nil {
		fail(err, false)
		return
	}
	cl.r.answered(m, time.Now(), nil)
}
