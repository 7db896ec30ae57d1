package workers

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/contracts"
)

// delivery is one input message in a worker's hands: from the mail
// consumer or the held consumer.
type delivery struct {
	msg jetstream.Msg
	// env is the decoded envelope, or what could be read of a broken one
	// (envErr says why).
	env    contracts.Envelope
	envErr error
	// claim is the reference of a claimed mail (the message data is
	// empty; the mail is this object), nil for any other. It is read from
	// the headers even when the envelope is broken, so that the object
	// is adopted and kept with the dead letter.
	claim *contracts.Claim
	// attempt counts deliveries from 1, the attempts used before a hold
	// included.
	attempt int
	// numDelivered is the consumer's delivery count of the message (0
	// when unknown).
	numDelivered uint64
	// hold is why and since when the mail has been held, if it was.
	hold  holdInfo
	start time.Time
	// base is the worker's logger; log, made from it on first use, names
	// the mail and the attempt. Only failures log, so most mails never
	// pay for it.
	base, log *slog.Logger
}

// logger returns the delivery's logger. Not safe for concurrent use, as
// the delivery itself.
func (d *delivery) logger() *slog.Logger {
	if d.log == nil {
		d.log = d.base.With(slog.String("id", d.env.ID), slog.Int("attempt", d.attempt))
	}
	return d.log
}

// newDelivery decodes msg's envelope and counts its attempt.
func (w *Worker) newDelivery(msg jetstream.Msg) *delivery {
	d := &delivery{msg: msg, attempt: 1, start: time.Now(), base: w.log}
	if md, err := msg.Metadata(); err == nil {
		d.attempt, d.numDelivered = int(md.NumDelivered), md.NumDelivered
	}
	d.attempt += priorAttempts(msg.Headers())
	d.hold = holdInfoOf(msg.Headers())
	env, err := contracts.DecodeEnvelope(msg.Headers())
	if err != nil {
		d.envErr = malformed("%v", err)
		env = partialEnvelope(msg)
	}
	d.env = env
	if c, ok, _ := contracts.DecodeClaim(msg.Headers()); ok {
		d.claim = &c
	}
	return d
}

// handle takes one mail of the mail consumer to its end: decide whether
// to process it, evaluate and act, decide again, settle. Processing is
// not cut short when runCtx ends.
func (w *Worker) handle(runCtx context.Context, msg jetstream.Msg) {
	ctx := context.WithoutCancel(runCtx)
	d := w.newDelivery(msg)
	ctx, span := w.startProcess(ctx, d, "process", w.cfg.Names.Consumer)
	w.met.delivered(ctx, d)
	// Slow processing (DNS retries, a slow handler) must not outlive
	// AckWait, or the server would hand the mail to a second worker.
	stopProgress := w.keepInProgress(msg)
	defer stopProgress()
	// A claimed mail's object is adopted before anything else, so that
	// it is kept whatever becomes of the mail (claim.go). A NATS failure
	// to adopt is retried even for a broken envelope, which would
	// otherwise be dead-lettered with an object the orphan collector may
	// take.
	err := d.envErr
	if aerr := w.adopt(ctx, d); aerr != nil && (err == nil || ClassOf(aerr) != Malformed) {
		err = aerr
	}
	v := w.policy.decide(event{step: stepDelivered, err: err, attempt: d.attempt})
	var out *contracts.Outcome
	if v.act == actProcess {
		defer w.claimSlot(d)() // held until settled: the mail is in memory until then
		raw, err := w.mailBytes(ctx, d)
		if err == nil {
			out, err = w.pipe.Process(w.dnsContext(ctx, d), w.store.Snapshot(), d.env, raw, d.attempt)
		}
		v = w.policy.decide(event{step: stepProcessed, err: err, attempt: d.attempt})
	}
	sctx, sspan := w.tracer.Start(ctx, "settle")
	w.settle(sctx, d, v, out)
	sspan.End()
	endProcess(span, v, out)
	w.met.processed(ctx, d, v)
}

// keepInProgress tells the server every progressEvery that msg is still
// being worked on, until the returned function is called; once it has
// returned, no more progress is sent. One timer a mail, no goroutine.
func (w *Worker) keepInProgress(msg jetstream.Msg) func() {
	var mu sync.Mutex
	stopped := false
	mu.Lock()
	defer mu.Unlock()
	var t *time.Timer
	t = time.AfterFunc(w.progressEvery, func() {
		mu.Lock()
		defer mu.Unlock()
		if stopped {
			return
		}
		if err := msg.InProgress(); err != nil {
			w.log.Warn("in-progress failed", slog.Any("err", err))
		}
		t.Reset(w.progressEvery)
	})
	return func() {
		mu.Lock()
		defer mu.Unlock()
		stopped = true
		t.Stop()
	}
}

// partialEnvelope keeps what can be read of a broken envelope, and an id
// for the dead letter: the mail's (of a held or resumed copy, the
// original's, as DecodeEnvelope reads it), or the stream sequence.
func partialEnvelope(msg jetstream.Msg) contracts.Envelope {
	h := msg.Headers()
	env := contracts.Envelope{
		ID:       contracts.MailID(h),
		MailFrom: h.Get(contracts.HeaderMailFrom),
		RcptTo:   h.Values(contracts.HeaderRcptTo),
		Protocol: h.Get(contracts.HeaderProtocol),
	}
	if env.ID == "" {
		if md, err := msg.Metadata(); err == nil {
			env.ID = "seq-" + strconv.FormatUint(md.Sequence.Stream, 10)
		}
	}
	return env
}
