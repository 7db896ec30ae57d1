package workers

import (
	"context"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"

	"github.com/mailscope/mailscope/auth"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/version"
)

// Evaluation is what Evaluate decided about one mail: everything but the
// handler's work. Computing it has no side effect.
type Evaluation struct {
	// Mail is the parsed mail.
	Mail *Mail
	// Outcome is the outcome as far as evaluation decides it: the
	// envelope, the authentication results and every flag consulted.
	// Disposition is set (rejected, with the rule's reason) when a
	// mail.reject rule matched; otherwise Act completes it.
	Outcome *contracts.Outcome
	// Handler is the handler mail.handler chose ("" when rejected).
	Handler string
	// Shadow is the handler mail.shadow_handler chose to run in dry run
	// beside Handler ("" for none, and when rejected).
	Shadow string
}

// Evaluate parses raw, authenticates it and decides its flags against
// snap. It returns an error of class Malformed for mail that is not RFC
// 5322, Held when mail.pause holds it, DNS when a key lookup did not
// answer (temperror), and Transient for a panic (recovered). It performs
// no side effect: held-mail re-checks and `flags explain` call it alone.
func (p *Pipeline) Evaluate(ctx context.Context, snap *rules.Snapshot, env contracts.Envelope, raw []byte, attempt int) (ev *Evaluation, err error) {
	defer p.recovered("evaluate", env.ID, &err)
	m, facts, early, err := p.prepare(ctx, snap, env, raw)
	if err != nil {
		return nil, err
	}
	if early != nil {
		return nil, errHeld
	}
	out := &contracts.Outcome{
		Schema:     contracts.OutcomeSchema,
		ID:         env.ID,
		MessageID:  m.MessageID,
		Envelope:   env,
		ReceivedAt: env.ReceivedAt,
		Attempt:    attempt,
		Flags:      make([]contracts.FlagDecision, 0, 9),
		Worker:     contracts.WorkerInfo{Name: p.cfg.Name, Version: version.Version, Env: p.cfg.Env},
		TraceID:    traceID(ctx),
	}
	record := func(d rules.Decision) rules.Decision {
		out.Flags = append(out.Flags, decisionOf(d))
		return d
	}
	consult := func(flag string) rules.Decision { return record(snap.Eval(flag, facts)) }
	if out.Auth, err = p.authenticate(ctx, snap, m, facts, record); err != nil {
		return nil, err
	}
	_, span := p.stage(ctx, "flags")
	defer func() {
		if ev != nil && span.IsRecording() {
			span.SetAttributes(attribute.String("mailscope.handler", ev.Handler), attribute.Bool("mailscope.dry_run", out.DryRun),
				attribute.String("mailscope.disposition", string(out.Disposition)), attribute.Int("mailscope.flags.consulted", len(out.Flags)))
		}
		endStage(span, err)
	}()
	if consult(rules.FlagPause).Bool() {
		return nil, errHeld
	}
	ev = &Evaluation{Mail: m, Outcome: out}
	if reason := consult(rules.FlagReject).Value; reason != "" {
		out.Disposition = contracts.Rejected
		out.Reason = reason
		out.ProcessedAt = p.now().UTC()
		return ev, nil
	}
	out.DryRun = consult(rules.FlagDryRun).Bool()
	ev.Handler = consult(rules.FlagHandler).Value
	consult(rules.FlagWebhookEndpoint)
	consult(rules.FlagService)
	if sh := consult(rules.FlagShadowHandler).Value; sh != rules.ShadowNone {
		ev.Shadow = sh
	}
	m.Evaluated = out
	if c, ok := p.handlers[ev.Handler].(Checker); ok {
		if err := c.Check(out); err != nil {
			return nil, refused(err)
		}
	}
	return ev, nil
}

// prepare parses raw and returns the mail, its scope facts known before
// authentication and, when mail.pause holds it on those facts alone, the
// pause decision. mail.pause is looked at first so that held mail needs
// no DNS and a DNS outage can never fail it; unless a pause rule has
// dkim: or trust: terms, whose facts do not exist yet (an exception for a
// verified partner): then it is decided after authentication. Evaluate
// and Explain both start here, so that they decide the pause alike.
func (p *Pipeline) prepare(ctx context.Context, snap *rules.Snapshot, env contracts.Envelope, raw []byte) (*Mail, *rules.Facts, *rules.Decision, error) {
	_, span := p.stage(ctx, "parse", attribute.Int("mailscope.size", len(raw)))
	m, err := ParseMail(env, raw)
	endStage(span, err)
	if err != nil {
		return nil, nil, nil, err
	}
	facts := p.newFacts(m)
	if snap.RuleSet(rules.FlagPause).UsesAuthFacts() {
		return m, facts, nil, nil
	}
	if d := snap.Eval(rules.FlagPause, facts); d.Bool() {
		return m, facts, &d, nil
	}
	return m, facts, nil, nil
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
// need exist. A DKIM temperror is a DNS error: decide retries the mail,
// and once out of attempts holds it until DNS answers, so that no rule
// decides on half-known authentication; once the mail has waited
// Config.DNSHoldMax (ctx says so: dnsContext), the temperror is recorded
// instead, with a note, and the rules decide on what is known. A DMARC temperror is only
// recorded: the policy is information, not a verdict on the mail. record
// receives each flag decision made here.
func (p *Pipeline) authenticate(ctx context.Context, snap *rules.Snapshot, m *Mail, facts *rules.Facts, record func(rules.Decision) rules.Decision) (contracts.Auth, error) {
	var res auth.Result
	var dmarc *contracts.DMARCPolicy
	var notes []string
	skipped := ""
	if record(snap.Eval(rules.FlagDKIMVerify, facts)).Bool() {
		vctx, span := p.stage(ctx, "verify")
		var err error
		res, err = p.verifier.Verify(vctx, m.Raw)
		if err != nil {
			err = transient("dkim: %w", err)
			endStage(span, err)
			return contracts.Auth{}, err
		}
		if res.TempError {
			since, givenUp := dnsGivenUpSince(ctx)
			if !givenUp {
				err = dnsFailure("dkim temperror: %s", tempReasons(res))
				endStage(span, err)
				return contracts.Auth{}, err
			}
			notes = append(notes, fmt.Sprintf("DNS did not answer for the keys of the mail held since %s (the DNS hold bound): decided with dkim=temperror recorded", since.Format(time.RFC3339)))
		}
		dmarc = p.verifier.DMARC(vctx, m.FromDomain)
		if span.IsRecording() {
			span.SetAttributes(attribute.Int("mailscope.dkim.signatures", len(res.Signatures)),
				attribute.Int("mailscope.dkim.pass_domains", len(res.PassDomains)))
		}
		endStage(span, nil)
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
		notes = append(notes, fmt.Sprintf("more than %d signatures; only the first %d verified", len(res.Signatures), len(res.Signatures)))
	}
	a.Note = strings.Join(notes, "; ")
	return a, nil
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
