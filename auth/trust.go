package auth

import (
	"strings"

	"github.com/mailscope/mailscope/contracts"
	"golang.org/x/net/publicsuffix"
)

// Trust returns the trust level of a mail from its verification result
// (DESIGN.md, "Authentication"):
//
//   - "strong" when a passing signature's d= is [Aligned] with fromDomain
//     and strong(d) is true (the flag mail.auth.dkim_strong, evaluated for
//     this mail; a nil strong is always false);
//   - "weak" when some signature passes otherwise;
//   - "none" when none passes.
func Trust(res Result, fromDomain string, strong func(domain string) bool) string {
	level := contracts.TrustNone
	for _, s := range res.Signatures {
		if s.Result != contracts.ResultPass {
			continue
		}
		if Aligned(s.Domain, fromDomain) && strong != nil && strong(strings.ToLower(s.Domain)) {
			return contracts.TrustStrong
		}
		level = contracts.TrustWeak
	}
	return level
}

// Aligned reports whether the signing domain d is aligned with the From
// domain by relaxed alignment (RFC 7489 3.1.1): equal, or with the same
// organizational domain (public suffix plus one label, by
// golang.org/x/net/publicsuffix). Comparison ignores case and a trailing
// dot. Empty domains never align.
func Aligned(d, fromDomain string) bool {
	d = normalizeDomain(d)
	fromDomain = normalizeDomain(fromDomain)
	if d == "" || fromDomain == "" {
		return false
	}
	if d == fromDomain {
		return true
	}
	od, err := publicsuffix.EffectiveTLDPlusOne(d)
	if err != nil {
		return false
	}
	of, err := publicsuffix.EffectiveTLDPlusOne(fromDomain)
	return err == nil && od == of
}

func normalizeDomain(s string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(s)), ".")
}
