package workers

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"github.com/mailscope/mailscope/auth"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/rules"
)

// Pipeline decides the outcome of one mail: parse, verify, scope,
// evaluate flags, handle. It does no NATS I/O, so it can be run and
// measured on an in-memory mail; Worker wraps it with the queue.
type Pipeline struct {
	cfg      Config
	verifier *auth.Verifier
	handlers map[string]Handler
	now      func() time.Time
}

// NewPipeline returns a Pipeline with the built-in handlers (see
// Handlers). cfg is taken with its defaults applied.
func NewPipeline(cfg Config) *Pipeline {
	cfg = cfg.WithDefaults()
	return &Pipeline{
		cfg:      cfg,
		verifier: auth.NewVerifier(cfg.Auth, auth.NewResolver(cfg.Auth)),
		handlers: Handlers(cfg.TextLimit),
		now:      time.Now,
	}
}

// Process decides one mail against the rule snapshot snap. On success it
// returns the outcome to publish; otherwise an error whose Class says
// what to do with the mail. A panic anywhere inside is recovered and
// returned as a Transient error.
func (p *Pipeline) Process(ctx context.Context, snap *rules.Snapshot, env contracts.Envelope, raw []byte, attempt int) (out *contracts.Outcome, err error) {
	defer func() {
		if r := recover(); r != nil {
			p.cfg.Logger.Error("panic while processing a mail", slog.String("id", env.ID),
				slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
			out = nil
			err = transient("panic while processing: %v", r)
		}
	}()
	m, err := ParseMail(env, raw)
	if err != nil {
		return nil, err
	}
	facts := p.newFacts(m)
	// mail.pause is looked at first, on the facts known before
	// authentication, so that held mail needs no DNS and a DNS outage can
	// never fail it; unless a pause rule has dkim: or trust: terms, whose
	// facts do not exist yet (an exception for a verified partner): then
	// it is decided after verification, below.
	if !snap.RuleSet(rules.FlagPause).UsesAuthFacts() && snap.Eval(rules.FlagPause, facts).Bool() {
		return nil, errHeld
	}
	out = &contracts.Outcome{
		Schema:     contracts.OutcomeSchema,
		ID:         env.ID,
		MessageID:  m.MessageID,
		Envelope:   env,
		ReceivedAt: env.ReceivedAt,
		Attempt:    attempt,
		Flags:      make([]contracts.FlagDecision, 0, 6),
		Worker:     contracts.WorkerInfo{Name: p.cfg.Name, Version: Version, Env: p.cfg.Env},
	}
	record := func(d rules.Decision) rules.Decision {
		out.Flags = append(out.Flags, decisionOf(d))
		return d
	}
	consult := func(flag string) rules.Decision { return record(snap.Eval(flag, facts)) }
	if out.Auth, err = p.authenticate(ctx, snap, m, facts, record, attempt >= p.cfg.MaxAttempts); err != nil {
		return nil, err
	}

	// Decide.
	if consult(rules.FlagPause).Bool() {
		return nil, errHeld
	}
	if reason := consult(rules.FlagReject).Value; reason != "" {
		out.Disposition = contracts.Rejected
		out.Reason = reason
		out.ProcessedAt = p.now().UTC()
		return out, nil
	}
	out.DryRun = consult(rules.FlagDryRun).Bool()
	name := consult(rules.FlagHandler).Value
	h, ok := p.handlers[name]
	if !ok {
		return nil, transient("%v", errNoHandler(name))
	}
	hctx, cancel := context.WithTimeout(ctx, p.cfg.HandlerTimeout)
	defer cancel()
	r, err := h.Handle(hctx, m, out.DryRun)
	if err != nil {
		return nil, transient("handler %s: %w", name, err)
	}
	out.Handler = name
	out.Disposition = r.Disposition
	out.Reason = r.Reason
	out.Summary = r.Summary
	out.ProcessedAt = p.now().UTC()
	return out, nil
}

// newFacts returns the scope facts of m known before authentication.
func (p *Pipeline) newFacts(m *Mail) *rules.Facts {
	return &rules.Facts{
		Headers: headerFacts(m.Header),
		Rcpts:   m.Env.RcptTo,
		From:    m.From,
		Env:     p.cfg.Env,
		Release: p.cfg.Release,
	}
}

// authenticate verifies m's DKIM signatures and looks up the From
// domain's DMARC policy unless mail.dkim.verify is off for it (then no
// lookup at all happens), then sets the dkim: and trust: facts. dkim: and
// trust: scopes are false in the rules consulted before the facts they
// need exist. A DKIM temperror is a Transient error, so the mail is
// retried later; on the last attempt (final) it is a Held error: the mail
// waits with the held mail until DNS answers, so that no rule decides on
// half-known authentication and a DNS outage never fails a mail for good. A DMARC temperror
// is only recorded: the policy is information, not a verdict on the mail.
// record receives each flag decision made here.
func (p *Pipeline) authenticate(ctx context.Context, snap *rules.Snapshot, m *Mail, facts *rules.Facts, record func(rules.Decision) rules.Decision, final bool) (contracts.Auth, error) {
	var res auth.Result
	var dmarc *contracts.DMARCPolicy
	skipped := ""
	if record(snap.Eval(rules.FlagDKIMVerify, facts)).Bool() {
		var err error
		res, err = p.verifier.Verify(ctx, m.Raw)
		if err != nil {
			return contracts.Auth{}, transient("dkim: %w", err)
		}
		if res.TempError {
			if !final {
				return contracts.Auth{}, transient("dkim temperror: %s", tempReasons(res))
			}
			// Out of attempts, still no answer: no rule may decide on
			// half-known authentication, and a DNS outage must not fail
			// the mail. It waits with the held mail until DNS answers.
			return contracts.Auth{}, &classError{Held, fmt.Errorf("dkim temperror on the last attempt, waiting for DNS: %s", tempReasons(res))}
		}
		dmarc = p.verifier.DMARC(ctx, m.FromDomain)
	} else {
		skipped = "verification skipped by rule " + rules.FlagDKIMVerify
		res.Signatures = []contracts.DKIMResult{{Result: contracts.ResultNone, Reason: skipped}}
	}
	facts.DKIMPass = res.PassDomains
	facts.DKIMKnown = true

	// mail.auth.dkim_strong is decided per aligned passing domain, with
	// only that domain as the dkim: fact: a rule trusting one domain must
	// not make another domain's mail strong because the first also signed.
	var strongDec *rules.Decision
	strongFor := func(d string) bool {
		narrow := &rules.Facts{Headers: facts.Headers, Rcpts: facts.Rcpts, From: facts.From,
			DKIMPass: []string{d}, DKIMKnown: true, Env: facts.Env, Release: facts.Release}
		dec := snap.Eval(rules.FlagDKIMStrong, narrow)
		if strongDec == nil || dec.Bool() {
			strongDec = &dec
		}
		return dec.Bool()
	}
	trust := auth.Trust(res, m.FromDomain, p.cfg.Auth.Alignment(), strongFor)
	if strongDec == nil {
		// No aligned pass: decided as for a mail without one, so the
		// record cannot claim "true" while the trust is not strong.
		none := &rules.Facts{Headers: facts.Headers, Rcpts: facts.Rcpts, From: facts.From,
			DKIMKnown: true, Env: facts.Env, Release: facts.Release}
		dec := snap.Eval(rules.FlagDKIMStrong, none)
		strongDec = &dec
	}
	record(*strongDec)
	facts.Trust = trust
	facts.TrustKnown = true
	a := contracts.Auth{
		DKIM:                  res.Signatures,
		Skipped:               skipped,
		Trust:                 trust,
		AuthenticationResults: auth.AuthenticationResults(p.authServID(), res, skipped),
		DMARC:                 dmarc,
	}
	if res.CapHit {
		a.Note = fmt.Sprintf("more than %d signatures; only the first %d verified", len(res.Signatures), len(res.Signatures))
	}
	return a, nil
}

// decisionOf turns a rules decision into its outcome record.
func decisionOf(d rules.Decision) contracts.FlagDecision {
	fd := contracts.FlagDecision{Flag: d.Flag, Value: d.Canonical()}
	if d.Rule != nil {
		fd.Rule = &contracts.RuleRef{Revision: d.Revision, Line: d.Rule.Line, Scope: d.Rule.ScopeText, Priority: d.Rule.Priority}
	}
	return fd
}

func tempReasons(res auth.Result) string {
	var rs []string
	for _, s := range res.Signatures {
		if s.Result == contracts.ResultTempError {
			rs = append(rs, fmt.Sprintf("d=%s s=%s: %s", s.Domain, s.Selector, s.Reason))
		}
	}
	return strings.Join(rs, "; ")
}

func (p *Pipeline) authServID() string {
	if p.cfg.Auth.AuthServID != "" {
		return p.cfg.Auth.AuthServID
	}
	return auth.DefaultAuthServID
}
