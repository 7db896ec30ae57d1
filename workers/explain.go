package workers

import (
	"context"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/rules"
)

// Explanation shows how a worker sees one mail: its scope facts and, for
// every flag, the value and the rule that decided it. It has no side
// effect; `mailscope flags explain` prints it.
type Explanation struct {
	// From is the lower-cased From address; FromDomain its domain.
	From, FromDomain string
	// Rcpts are the envelope recipients.
	Rcpts []string
	// Headers are the header facts mail_header: scopes match, by
	// lower-case name, unfolded and RFC 2047-decoded.
	Headers map[string][]string
	// Auth is the authentication result (verification ran unless
	// mail.dkim.verify is off for this mail).
	Auth contracts.Auth
	// Env and Release are the worker facts env: and release: match.
	Env, Release string
	// Flags has every registered flag (a key that is not one is never in
	// force), sorted by name, each evaluated with all facts known.
	Flags []contracts.FlagDecision
}

// Explain evaluates every flag for one mail against snap, with no side
// effect, as Evaluate does. It fails like Evaluate for malformed mail and
// DNS temperrors (class DNS).
func (p *Pipeline) Explain(ctx context.Context, snap *rules.Snapshot, env contracts.Envelope, raw []byte) (_ *Explanation, err error) {
	defer p.recovered("explain", env.ID, &err)
	m, facts, early, err := p.prepare(ctx, snap, env, raw)
	if err != nil {
		return nil, err
	}
	// Flags are decided in the phases the worker uses (see prepare):
	// mail.pause first if it holds the mail before authentication, then
	// mail.dkim.verify and mail.auth.dkim_strong while authenticating,
	// every other flag with all facts known.
	decided := map[string]contracts.FlagDecision{}
	record := func(d rules.Decision) rules.Decision {
		if _, ok := decided[d.Flag]; !ok {
			decided[d.Flag] = decisionOf(d)
		}
		return d
	}
	if early != nil {
		record(*early)
	}
	a, err := p.authenticate(ctx, snap, m, facts, record)
	if err != nil {
		return nil, err
	}
	e := &Explanation{
		From: m.From, FromDomain: m.FromDomain, Rcpts: env.RcptTo, Headers: facts.Headers,
		Auth: a, Env: p.cfg.Env, Release: p.cfg.Release,
	}
	for _, f := range rules.Known() { // sorted by name
		d, ok := decided[f.Name]
		if !ok {
			d = decisionOf(snap.Eval(f.Name, facts))
		}
		e.Flags = append(e.Flags, d)
	}
	return e, nil
}
