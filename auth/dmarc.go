package auth

import (
	"context"
	"errors"
	"net"

	"github.com/emersion/go-msgauth/dmarc"
	"github.com/mailscope/mailscope/contracts"
)

// DMARC looks up the DMARC policy (RFC 7489) of fromDomain through the
// verifier's resolver, and returns it as data: the _dmarc record of the
// domain itself or, when it has none, of its organizational domain (RFC
// 7489 6.6.3), with p=, sp=, pct= and adkim=. It records the policy and
// does not enforce it. A failed lookup is a status, never an error: a DNS
// timeout or SERVFAIL is "temperror" (the mail is not held back for it),
// a record that does not parse "permerror", no record "none". DMARC
// returns nil when fromDomain is empty.
func (v *Verifier) DMARC(ctx context.Context, fromDomain string) *contracts.DMARCPolicy {
	d := normalizeDomain(fromDomain)
	if d == "" {
		return nil
	}
	p := &contracts.DMARCPolicy{Domain: d, Status: contracts.DMARCNone}
	opts := &dmarc.LookupOptions{LookupTXT: func(name string) ([]string, error) {
		txts, err := v.r.LookupTXT(ctx, name)
		if errors.Is(err, ErrNotFound) {
			// go-msgauth recognizes "no policy" by this error type only.
			return nil, &net.DNSError{Err: err.Error(), Name: name, IsNotFound: true}
		}
		return txts, err // a *TempError is a temporary net.Error: temperror
	}}
	at := d
	rec, err := dmarc.LookupWithOptions(at, opts)
	if errors.Is(err, dmarc.ErrNoPolicy) {
		if od := orgDomain(d); od != "" && od != d {
			at = od
			rec, err = dmarc.LookupWithOptions(at, opts)
		}
	}
	switch {
	case errors.Is(err, dmarc.ErrNoPolicy):
		return p
	case dmarc.IsTempFail(err):
		p.Status, p.Reason = contracts.DMARCTempError, err.Error()
		return p
	case err != nil:
		p.Status, p.Reason, p.RecordDomain = contracts.DMARCPermError, err.Error(), at
		return p
	}
	p.Status = contracts.DMARCFound
	p.RecordDomain = at
	p.Policy = string(rec.Policy)
	p.SubdomainPolicy = string(rec.SubdomainPolicy)
	p.EffectivePolicy = p.Policy
	if at != d && p.SubdomainPolicy != "" {
		p.EffectivePolicy = p.SubdomainPolicy
	}
	pct := 100
	if rec.Percent != nil {
		pct = *rec.Percent
	}
	p.Percent = &pct
	p.DKIMAlignment = string(rec.DKIMAlignment)
	return p
}
