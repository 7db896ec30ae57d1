package auth

import (
	"strings"

	"github.com/mailscope/mailscope/contracts"
	"golang.org/x/net/publicsuffix"
)

// Alignment is how a signing domain (d=) must match the From domain to be
// aligned with it (RFC 7489 3.1.1). The zero value is relaxed.
type Alignment string

// Alignment modes. [Config.StrictAlignment] chooses between them.
const (
	// AlignRelaxed: equal, or with the same organizational domain (public
	// suffix plus one label, by golang.org/x/net/publicsuffix), so
	// mail.example.com aligns with example.com and news.example.com.
	AlignRelaxed Alignment = "relaxed"
	// AlignStrict: equal.
	AlignStrict Alignment = "strict"
)

// Trust returns the trust level of a mail from its verification result
// (docs/architecture.md, "Authentication"):
//
//   - "strong" when a passing signature's d= is aligned with fromDomain
//     (by mode a; see [Alignment.Aligned]) and strong(d) is true (the
//     flag mail.auth.dkim_strong, evaluated for this mail; a nil strong
//     is always false);
//   - "weak" when some signature passes otherwise;
//   - "none" when none passes.
func Trust(res Result, fromDomain string, a Alignment, strong func(domain string) bool) string {
	level := contracts.TrustNone
	for _, s := range res.Signatures {
		if s.Result != contracts.ResultPass {
			continue
		}
		if a.Aligned(s.Domain, fromDomain) && strong != nil && strong(strings.ToLower(s.Domain)) {
			return contracts.TrustStrong
		}
		level = contracts.TrustWeak
	}
	return level
}

// Aligned reports whether the signing domain d is aligned with the From
// domain by mode a (relaxed when a is empty). Comparison ignores case and a
// trailing dot. Empty domains never align; neither does a d= that is a
// public suffix itself (co.uk), even in relaxed mode.
func (a Alignment) Aligned(d, fromDomain string) bool {
	d = normalizeDomain(d)
	fromDomain = normalizeDomain(fromDomain)
	if d == "" || fromDomain == "" {
		return false
	}
	if d == fromDomain {
		return true
	}
	if a == AlignStrict {
		return false
	}
	od, err := publicsuffix.EffectiveTLDPlusOne(d)
	if err != nil {
		return false
	}
	of, err := publicsuffix.EffectiveTLDPlusOne(fromDomain)
	return err == nil && od == of
}

// orgDomain returns the organizational domain of d (RFC 7489 3.2), or ""
// when d is a public suffix or not a domain.
func orgDomain(d string) string {
	od, err := publicsuffix.EffectiveTLDPlusOne(normalizeDomain(d))
	if err != nil {
		return ""
	}
	return od
}

func normalizeDomain(s string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
}
