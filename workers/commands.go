package workers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/contracts"
)

// commands is the commands handler (docs/handlers.md, "The commands
// handler"): it reads email commands from a strongly authenticated mail
// and publishes one command event per command, all of them or none; a
// mail whose commands cannot all be carried out gets a reply event
// instead, saying what failed and why.
type commands struct {
	known     map[string]CommandSpec
	cfg       CommandsConfig
	names     contracts.Names
	textLimit int
	// js publishes the events; set by New (a Pipeline alone has no
	// connection: its commands handler can only dry-run).
	js  jetstream.JetStream
	met commandsMetrics
}

// newCommands returns the commands handler on cfg (defaults applied).
func newCommands(cfg Config) *commands {
	h := &commands{known: map[string]CommandSpec{}, cfg: cfg.Commands, names: cfg.Names, textLimit: cfg.TextLimit, met: newCommandsMetrics()}
	for _, s := range cfg.Commands.Commands {
		h.known[s.Name] = s
	}
	return h
}

// maxReasonCommands bounds the commands an outcome's reason lists.
const maxReasonCommands = 10

// Handle interprets m's commands. A strongly authenticated mail whose
// command lines all parse has every command published (with dryRun:
// none) and is processed, with the summary; any other is rejected, with
// a reply event published (with dryRun: none) unless the mail has the
// null sender or is itself automatic. A publish that fails is Transient:
// the mail is retried, and the events already stored are not stored
// again (their Nats-Msg-Ids are the mail's).
func (h *commands) Handle(ctx context.Context, m *Mail, dryRun bool) (HandlerResult, error) {
	out := m.Evaluated // set by Evaluate, which Act always follows
	summary := Summarize(ctx, m, h.textLimit)
	rcpt := m.Env.RcptTo[0] // a decoded envelope has a recipient
	target, targetErr := commandTarget(rcpt)
	var p parsedCommands
	reason, result := "", commandsPublished
	switch {
	case out.Auth.Trust != contracts.TrustStrong:
		result = commandsNotStrong
		reason = fmt.Sprintf("not strongly authenticated (trust %s): commands need a DKIM signature aligned with the From domain that mail.auth.dkim_strong trusts", out.Auth.Trust)
	case targetErr != nil:
		result, reason = commandsBadTarget, targetErr.Error()
	default:
		text := ""
		for _, tp := range summary.TextParts {
			if tp.ContentType == "text/plain" {
				text = tp.Text
				break
			}
		}
		p = parseCommands(text, h.known, h.cfg.MaxCommands)
		switch {
		case p.failed > 0:
			result, reason = commandsBadLines, plural(p.failed, "command line")+" failed; no command was carried out"
		case len(p.commands) == 0:
			result, reason = commandsNoCommands, "no commands: a command line starts with a space or a tab, before any other text"
		}
	}
	h.met.mail(ctx, result, dryRun)
	if reason != "" {
		return HandlerResult{}, h.refuse(ctx, m, out, summary.Subject, target, reason, p, dryRun)
	}

	events := make([]*nats.Msg, len(p.commands))
	said := make([]string, 0, min(len(p.commands), maxReasonCommands))
	for i, c := range p.commands {
		ev := contracts.Command{
			Schema: contracts.CommandSchema, ID: out.ID, MessageID: out.MessageID,
			Target: target, Recipient: rcpt, Command: c.name, Args: c.args,
			Position: i + 1, Count: len(p.commands), Line: c.line,
			Sender: m.From, MailFrom: m.Env.MailFrom, Trust: out.Auth.Trust,
			ReceivedAt: out.ReceivedAt, Worker: out.Worker, TraceID: out.TraceID,
		}
		events[i] = h.message(ctx, h.names.CommandSubject(c.name), contracts.CommandMsgID(out.ID, i+1), ev)
		if i < maxReasonCommands {
			said = append(said, cut(strings.Join(append([]string{c.name}, c.args...), " "), 100))
		}
	}
	list := strings.Join(said, "; ")
	if len(p.commands) > maxReasonCommands {
		list += fmt.Sprintf("; and %d more", len(p.commands)-maxReasonCommands)
	}
	if dryRun {
		return HandlerResult{Disposition: contracts.Processed, Summary: summary,
			Reason: fmt.Sprintf("dry run: would publish %s for target %s: %s; nothing published", plural(len(events), "command event"), target, list)}, nil
	}
	for _, ev := range events {
		if err := h.publish(ctx, ev, commandEvent); err != nil {
			return HandlerResult{}, err
		}
	}
	return HandlerResult{Disposition: contracts.Processed, Summary: summary,
		Reason: fmt.Sprintf("published %s for target %s: %s", plural(len(events), "command event"), target, list)}, nil
}

// refuse publishes the reply to a mail whose commands are not carried
// out (none under dryRun) and returns its Reject, or the publish's
// Transient error.
func (h *commands) refuse(ctx context.Context, m *Mail, out *contracts.Outcome, subject, target, reason string, p parsedCommands, dryRun bool) error {
	why := "commands refused: " + reason
	for _, f := range p.failures[:min(len(p.failures), 3)] {
		why += fmt.Sprintf("; line %d: %s", f.Line, f.Error)
	}
	if len(p.failures) > 3 {
		why += fmt.Sprintf("; and %d more", p.failed-3)
	}
	if noReply := noReplyReason(m); noReply != "" {
		return Reject(why + "; no reply: " + noReply)
	}
	r := contracts.Reply{
		Schema: contracts.ReplySchema, ID: out.ID, To: m.Env.MailFrom, From: m.From,
		InReplyTo: out.MessageID, Subject: subject, Target: target, Trust: out.Auth.Trust,
		Reason: reason, Failures: p.failures, FailuresTruncated: p.failed > len(p.failures),
		OriginalSize: len(m.Raw), ReceivedAt: out.ReceivedAt, Worker: out.Worker, TraceID: out.TraceID,
	}
	if r.Failures == nil {
		r.Failures = []contracts.LineFailure{}
	}
	r.Original, r.Truncated = original(m, h.cfg.OriginalLimit)
	if dryRun {
		return Reject(fmt.Sprintf("dry run: %s; would publish a reply to %s; nothing published", why, r.To))
	}
	if err := h.publish(ctx, h.message(ctx, h.names.ReplySubject, contracts.ReplyMsgID(out.ID), r), replyEvent); err != nil {
		return err
	}
	return Reject(fmt.Sprintf("%s; reply to %s published on %s", why, r.To, h.names.ReplySubject))
}

// noReplyReason says why m must get no reply (RFC 3834: never answer
// the null sender or an automatic mail), or "".
func noReplyReason(m *Mail) string {
	if m.Env.MailFrom == "" {
		return "the null sender"
	}
	if v := strings.TrimSpace(m.Header.Get("Auto-Submitted")); v != "" && !strings.EqualFold(v, "no") {
		return "an automatic mail (Auto-Submitted: " + v + ")"
	}
	return ""
}

// original returns what of m a reply carries within limit: the whole
// raw mail, or (truncated) its header section (as ParseMail read it)
// cut at the last whole line within limit; nothing for a negative
// limit.
func original(m *Mail, limit int) ([]byte, bool) {
	switch {
	case limit < 0:
		return nil, true
	case len(m.Raw) <= limit:
		return m.Raw, false
	}
	head := m.Raw[:m.bodyAt]
	if len(head) > limit {
		head = head[:limit]
		if i := bytes.LastIndexByte(head, '\n'); i >= 0 {
			head = head[:i+1]
		}
	}
	return head, true
}

// message is v as a JSON event on subject, with the Nats-Msg-Id id and
// the mail's trace context.
func (h *commands) message(ctx context.Context, subject, id string, v any) *nats.Msg {
	data, _ := json.Marshal(v) // plain data: strings, numbers, bytes
	msg := nats.NewMsg(subject)
	msg.Data = data
	msg.Header.Set(nats.MsgIdHdr, id)
	contracts.InjectTrace(ctx, msg.Header)
	return msg
}

// publish stores msg, an event of kind, on the command stream; a
// failure is Transient.
func (h *commands) publish(ctx context.Context, msg *nats.Msg, kind string) error {
	if h.js == nil {
		return transient("publish %s: the commands handler has no NATS connection", msg.Subject)
	}
	ack, err := h.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(h.names.CommandStream))
	if err != nil {
		return transient("publish %s (%s): %v", msg.Subject, msg.Header.Get(nats.MsgIdHdr), err)
	}
	if !ack.Duplicate {
		h.met.stored(ctx, kind)
	}
	return nil
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}
