// Package loadtest drives a running producer's SMTP and LMTP ports with
// concurrent persistent connections, each sending mail after mail, and
// follows every accepted mail to its outcome event on NATS. It reports
// how many mails were accepted and refused (by reply code), the SMTP
// latencies, the end-to-end latency from the end of DATA to the outcome,
// the throughput, and the accepted mails whose outcome never came, which
// must be none.
//
// A run is bounded: a count or a duration (or both), loopback addresses
// unless AllowRemote, and a drain timeout for the outcomes.
package loadtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"

	"github.com/mailscope/mailscope/contracts"
)

// run is one load test in progress.
type run struct {
	cfg   Config
	token string    // in every Message-ID and recipient of this run
	date  time.Time // Date header of every mail
	start time.Time
	stop  time.Time // sending stops here when cfg.Duration is set

	issued atomic.Int64

	mu          sync.Mutex
	mails       []*mail
	byID        map[string]*mail // by Message-ID, without brackets; synthetic mails only
	byRcpt      map[string]*mail
	sent        int
	accepted    int
	complete    int // accepted with an outcome
	transport   int // errors without an SMTP reply
	firstErr    error
	duplicates  int // outcome events beyond the first for a mail
	foreign     int // outcome events of this run naming no mail of it
	undecodable int
	lastOutcome time.Time
	sendingDone bool
	allIn       chan struct{} // closed once sending is done and every accepted mail has its outcome
	allInClosed bool
}

// Run drives the producer as cfg says and returns the report. It returns
// an error only when the run could not start (bad configuration, NATS
// unreachable) or ctx ended it early, in which case the report covers
// what was done. Whether the system behaved is the report's Err.
func Run(ctx context.Context, cfg Config) (Report, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Report{}, err
	}
	r := &run{
		cfg:    cfg,
		token:  "lt" + strings.ToLower(nuid.Next()[12:]),
		date:   time.Now(),
		byID:   map[string]*mail{},
		byRcpt: map[string]*mail{},
		allIn:  make(chan struct{}),
	}
	var sub *nats.Subscription
	if cfg.NATSURL != "" {
		opts := append([]nats.Option{nats.Name("mailscope-loadtest"), nats.Timeout(cfg.Timeout)}, cfg.NATSOptions...)
		nc, err := nats.Connect(cfg.NATSURL, opts...)
		if err != nil {
			return Report{}, fmt.Errorf("loadtest: connect to NATS at %s: %w", cfg.NATSURL, err)
		}
		defer nc.Close()
		if sub, err = nc.Subscribe(cfg.OutcomePrefix+".>", r.outcome); err != nil {
			return Report{}, fmt.Errorf("loadtest: subscribe to outcomes: %w", err)
		}
		// Outcome events can come fast; never drop one for a pending limit.
		if err := sub.SetPendingLimits(-1, -1); err != nil {
			return Report{}, fmt.Errorf("loadtest: %w", err)
		}
		// The subscription must be in place before the first mail.
		if err := nc.FlushTimeout(cfg.Timeout); err != nil {
			return Report{}, fmt.Errorf("loadtest: subscribe to outcomes: %w", err)
		}
	}

	// Every connection is opened before the clock starts.
	var wg, dialed sync.WaitGroup
	begin := make(chan struct{})
	for i := range cfg.Clients + cfg.LMTPClients {
		cl := &client{r: r, addr: cfg.SMTPAddr}
		if i >= cfg.Clients {
			cl.lmtp, cl.addr = true, cfg.LMTPAddr
		}
		dialed.Add(1)
		wg.Go(func() { cl.loop(ctx, dialed.Done, begin) })
	}
	dialed.Wait()
	r.start = time.Now()
	if cfg.Duration > 0 {
		r.stop = r.start.Add(cfg.Duration)
	}
	close(begin)
	wg.Wait()
	sendEnd := time.Now()

	r.mu.Lock()
	r.sendingDone = true
	r.checkAllInLocked()
	r.mu.Unlock()
	drainStart := time.Now()
	if sub != nil && ctx.Err() == nil {
		t := time.NewTimer(cfg.Drain)
		select {
		case <-r.allIn:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
		// Stop the callbacks before the report reads the table.
		_ = sub.Unsubscribe()
	}
	rep := r.report(sendEnd, time.Since(drainStart), sub != nil)
	return rep, ctx.Err()
}

// next claims the number of the next mail to send and, in an open loop,
// the time its DATA is scheduled for (start + (n-1)/Rate); false when
// the run is over: Count reached, Duration passed, or ctx done.
func (r *run) next(ctx context.Context) (int, time.Time, bool) {
	if !r.more(ctx) {
		return 0, time.Time{}, false
	}
	n := int(r.issued.Add(1))
	if r.cfg.Count > 0 && n > r.cfg.Count {
		return 0, time.Time{}, false
	}
	var sched time.Time
	if r.cfg.Rate > 0 {
		sched = r.start.Add(time.Duration(float64(n-1) / r.cfg.Rate * float64(time.Second)))
		if !r.stop.IsZero() && !sched.Before(r.stop) {
			return 0, time.Time{}, false
		}
	}
	return n, sched, true
}

// more reports whether the run may still send mail, claiming nothing.
func (r *run) more(ctx context.Context) bool {
	return ctx.Err() == nil && (r.stop.IsZero() || time.Now().Before(r.stop)) &&
		(r.cfg.Count == 0 || int(r.issued.Load()) < r.cfg.Count)
}

func (r *run) register(m *mail) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.mails = append(r.mails, m)
	if m.corpus == nil {
		r.byID[m.messageID] = m
	}
	r.byRcpt[m.rcpt] = m
	r.sent++
}

func (r *run) dataStart(m *mail, t time.Time) {
	r.mu.Lock()
	m.dataStart = t
	r.mu.Unlock()
}

func (r *run) dataEnd(m *mail, t time.Time) {
	r.mu.Lock()
	m.dataEnd = t
	r.mu.Unlock()
}

// answered records the end of a transaction: err nil for 250, an
// *smtp.SMTPError for a refusal, anything else for a transport error.
func (r *run) answered(m *mail, t time.Time, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m.answered = t
	if err == nil {
		m.accepted = true
		r.accepted++
		if !m.outcomeAt.IsZero() { // the outcome beat the reply
			r.complete++
		}
		return
	}
	m.failed = true
	if code := replyCode(err); code != 0 {
		m.code = code
		return
	}
	r.transportLocked(err)
}

func (r *run) transportError(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.transportLocked(err)
}

func (r *run) transportLocked(err error) {
	r.transport++
	if r.firstErr == nil {
		r.firstErr = err
	}
}

// outcome takes one outcome event off the subscription.
func (r *run) outcome(msg *nats.Msg) {
	at := time.Now()
	var o outcomeView
	err := json.Unmarshal(msg.Data, &o)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err != nil {
		r.undecodable++
		return
	}
	var m *mail
	if len(o.Envelope.RcptTo) > 0 {
		m = r.byRcpt[o.Envelope.RcptTo[0]]
	}
	if m == nil {
		m = r.byID[o.MessageID]
	}
	if m == nil {
		// Another run's mail, or anyone else's, unless it carries this
		// run's token.
		if strings.Contains(o.MessageID, "."+r.token+"@") || (len(o.Envelope.RcptTo) > 0 && strings.Contains(o.Envelope.RcptTo[0], "@"+r.token+".")) {
			r.foreign++
		}
		return
	}
	if !m.outcomeAt.IsZero() {
		r.duplicates++
		return
	}
	m.outcomeAt = at
	m.disposition = string(o.Disposition)
	m.dkim = contracts.ResultNone
	if len(o.Auth.DKIM) > 0 {
		m.dkim = o.Auth.DKIM[0].Result
	}
	r.lastOutcome = at
	if m.accepted {
		r.complete++
		r.checkAllInLocked()
	}
}

// outcomeView is the part of an outcome event the load test reads: the
// decoder skips the rest (the summary's text) without keeping it, so that
// the instrument's own CPU per mail stays small beside the system's.
type outcomeView struct {
	MessageID   string                `json:"message_id"`
	Disposition contracts.Disposition `json:"disposition"`
	Envelope    struct {
		RcptTo []string `json:"rcpt_to"`
	} `json:"envelope"`
	Auth struct {
		DKIM []struct {
			Result string `json:"result"`
		} `json:"dkim"`
	} `json:"auth"`
}

func (r *run) checkAllInLocked() {
	if r.sendingDone && r.complete == r.accepted && !r.allInClosed {
		close(r.allIn)
		r.allInClosed = true
	}
}

// replyCode returns the SMTP reply code of err, 0 when it has none.
func replyCode(err error) int {
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return se.Code
	}
	return 0
}
