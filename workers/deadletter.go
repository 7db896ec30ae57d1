package workers

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/contracts"
)

// deadLetter stores the raw mail with the reason, then its outcome
// (disposition dead).
func (w *Worker) deadLetter(ctx context.Context, d *delivery, cause error) error {
	h := nats.Header{}
	copyHeaders(h, d.msg.Headers())
	reason := headerSafe(cause.Error())
	h.Set(contracts.HeaderDeadReason, reason)
	h.Set(contracts.HeaderDeadClass, ClassOf(cause).String())
	h.Set(contracts.HeaderAttempts, strconv.Itoa(d.attempt))
	h.Set(contracts.HeaderOriginalID, d.env.ID)
	h.Set(contracts.HeaderMsgID, d.env.ID)
	dctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	if _, err := w.js.PublishMsg(dctx, &nats.Msg{Subject: w.cfg.Names.DeadSubject, Header: h, Data: d.msg.Data()}, jetstream.WithMsgID(d.env.ID)); err != nil {
		return err
	}
	messageID := ""
	if m, err := ParseMail(d.env, d.msg.Data()); err == nil {
		messageID = m.MessageID
	}
	_, err := w.publishOutcome(ctx, &contracts.Outcome{
		Schema:      contracts.OutcomeSchema,
		ID:          d.env.ID,
		MessageID:   messageID,
		Envelope:    d.env,
		ReceivedAt:  d.env.ReceivedAt,
		ProcessedAt: time.Now().UTC(),
		Disposition: contracts.Dead,
		Reason:      reason,
		Attempt:     d.attempt,
		Auth:        contracts.Auth{DKIM: []contracts.DKIMResult{}, Trust: contracts.TrustNone},
		Flags:       []contracts.FlagDecision{},
		Worker:      contracts.WorkerInfo{Name: w.cfg.Name, Version: Version, Env: w.cfg.Env},
	})
	return err
}

// headerSafe makes s fit a NATS header value: one line, at most 1 KiB.
func headerSafe(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 1024 {
		s = s[:1024]
	}
	return s
}
