package rules

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// MaxRegexLen is the largest regular expression source, in bytes, that a
// mail_header: or rcpt: term accepts. A longer one is a line error.
const MaxRegexLen = 1024

// Trust levels, as used by trust: terms and Facts.Trust.
const (
	TrustStrong = "strong"
	TrustWeak   = "weak"
	TrustNone   = "none"
)

type termKind uint8

const (
	kindDefault termKind = iota
	kindHeader
	kindRcpt
	kindDKIM
	kindTrust
	kindPercent
	kindEnv
	kindRelease
)

// term is one compiled scope term. Terms are immutable after compilation
// and shared by every Snapshot holding their RuleSet.
type term struct {
	kind termKind
	// key identifies the term's memo slot: terms with equal keys always
	// give equal results for one mail, so they share one slot.
	key  string
	arg  string         // lower-cased header name, dkim domain, trust level, env or release
	re   *regexp.Regexp // mail_header and rcpt
	pct  uint64         // sender_percent threshold in hundredths of a percent, 0..10000
	flag string         // sender_percent: the flag name salting the hash
}

// scope is a conjunction of terms: it matches when every term matches.
type scope struct {
	terms []*term
}

// compileScope compiles the scope field of a rule line of flag.
// text is never empty: it is the first field of a non-empty line.
func compileScope(flag, text string) (scope, error) {
	parts := strings.Split(text, "&")
	sc := scope{terms: make([]*term, 0, len(parts))}
	for _, p := range parts {
		if p == "" {
			return scope{}, fmt.Errorf("scope %q: empty term around '&'", text)
		}
		t, err := compileTerm(flag, p)
		if err != nil {
			return scope{}, err
		}
		sc.terms = append(sc.terms, t)
	}
	return sc, nil
}

func compileTerm(flag, text string) (*term, error) {
	if text == "default" {
		return &term{kind: kindDefault, key: "default"}, nil
	}
	kind, arg, ok := strings.Cut(text, ":")
	if !ok {
		return nil, fmt.Errorf("scope term %q: want KIND:ARGUMENT or default", text)
	}
	switch kind {
	case "mail_header":
		name, src, ok := strings.Cut(arg, ":")
		if !ok {
			return nil, fmt.Errorf("scope term %q: want mail_header:NAME:REGEX", text)
		}
		if !validHeaderName(name) {
			return nil, fmt.Errorf("scope term %q: bad header name %q", text, name)
		}
		re, err := compileRegex(text, src)
		if err != nil {
			return nil, err
		}
		name = strings.ToLower(name)
		return &term{kind: kindHeader, key: "mail_header:" + name + ":" + src, arg: name, re: re}, nil
	case "rcpt":
		re, err := compileRegex(text, arg)
		if err != nil {
			return nil, err
		}
		return &term{kind: kindRcpt, key: text, re: re}, nil
	case "dkim":
		if arg == "" || strings.ContainsAny(arg, ":/@") {
			return nil, fmt.Errorf("scope term %q: want dkim:DOMAIN", text)
		}
		d := strings.ToLower(strings.TrimSuffix(arg, "."))
		return &term{kind: kindDKIM, key: "dkim:" + d, arg: d}, nil
	case "trust":
		switch arg {
		case TrustStrong, TrustWeak, TrustNone:
		default:
			return nil, fmt.Errorf("scope term %q: trust level must be strong, weak or none", text)
		}
		return &term{kind: kindTrust, key: text, arg: arg}, nil
	case "sender_percent":
		p, err := parsePercent(arg)
		if err != nil {
			return nil, fmt.Errorf("scope term %q: %v", text, err)
		}
		// The hash is salted with the flag name, so the same term text in
		// two flags selects different senders: the memo key says so.
		return &term{kind: kindPercent, key: flag + "\x00sender_percent:" + itoa100(p), pct: p, flag: flag}, nil
	case "env", "release":
		if arg == "" {
			return nil, fmt.Errorf("scope term %q: empty %s", text, kind)
		}
		k := kindEnv
		if kind == "release" {
			k = kindRelease
		}
		return &term{kind: k, key: text, arg: arg}, nil
	}
	return nil, fmt.Errorf("scope term %q: unknown scope kind %q", text, kind)
}

func compileRegex(text, src string) (*regexp.Regexp, error) {
	if len(src) > MaxRegexLen {
		return nil, fmt.Errorf("scope term %.40q...: regex is %d bytes, more than %d", text, len(src), MaxRegexLen)
	}
	re, err := regexp.Compile(src)
	if err != nil {
		return nil, fmt.Errorf("scope term %q: %v", text, err)
	}
	return re, nil
}

// validHeaderName reports whether s is an RFC 5322 field name: printable
// US-ASCII except ':' (which cannot occur here).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 33 || s[i] > 126 {
			return false
		}
	}
	return true
}

// parsePercent parses P of sender_percent:P, a number 0..100 with at most
// two decimals, into hundredths of a percent (0..10000).
func parsePercent(s string) (uint64, error) {
	whole, frac, hasDot := strings.Cut(s, ".")
	bad := errors.New("percent must be a number from 0 to 100 with at most 2 decimals")
	if whole == "" || len(whole) > 3 || len(frac) > 2 || (hasDot && frac == "") {
		return 0, bad
	}
	var v uint64
	for _, c := range []byte(whole) {
		if c < '0' || c > '9' {
			return 0, bad
		}
		v = v*10 + uint64(c-'0')
	}
	v *= 100
	scale := uint64(10)
	for _, c := range []byte(frac) {
		if c < '0' || c > '9' {
			return 0, bad
		}
		v += uint64(c-'0') * scale
		scale /= 10
	}
	if v > 10000 {
		return 0, bad
	}
	return v, nil
}

// itoa100 formats hundredths of a percent canonically, e.g. 1250 -> "12.5".
func itoa100(p uint64) string {
	s := fmt.Sprintf("%d.%02d", p/100, p%100)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// match evaluates the term on the facts of one mail. memo reports whether
// the result may be memoized: results that depend on facts not known yet
// (DKIM, trust) are false and not memoized.
func (t *term) match(f *Facts) (result, memo bool) {
	switch t.kind {
	case kindDefault:
		return true, true
	case kindHeader:
		for _, v := range f.Headers[t.arg] {
			if t.re.MatchString(v) {
				return true, true
			}
		}
		return false, true
	case kindRcpt:
		for _, r := range f.Rcpts {
			if t.re.MatchString(r) {
				return true, true
			}
		}
		return false, true
	case kindDKIM:
		if !f.DKIMKnown {
			return false, false
		}
		for _, d := range f.DKIMPass {
			if strings.EqualFold(strings.TrimSuffix(d, "."), t.arg) {
				return true, true
			}
		}
		return false, true
	case kindTrust:
		if !f.TrustKnown {
			return false, false
		}
		return f.Trust == t.arg, true
	case kindPercent:
		return percentMatch(t.flag, f.From, t.pct), true
	case kindEnv:
		return f.Env == t.arg, true
	default: // kindRelease
		return f.Release == t.arg, true
	}
}

// percentMatch reports whether sender from falls in the first pct
// hundredths of a percent of flag's hash space. The hash is FNV-1a 64 of
// flag + "\x00" + lower-cased from, reduced mod 10000, so raising pct only
// ever adds senders. An empty from matches only at 100%.
func percentMatch(flag, from string, pct uint64) bool {
	if pct >= 10000 {
		return true
	}
	if from == "" || pct == 0 {
		return false
	}
	return senderBucket(flag, from) < pct
}

// senderBucket is the 0..9999 bucket of a sender for a flag.
func senderBucket(flag, from string) uint64 {
	const (
		offset64 = 14695981039346656037
		prime64  = 1099511628211
	)
	h := uint64(offset64)
	for i := 0; i < len(flag); i++ {
		h ^= uint64(flag[i])
		h *= prime64
	}
	h *= prime64 // the "\x00" separator: h ^= 0 is a no-op
	for i := 0; i < len(from); i++ {
		c := from[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		h ^= uint64(c)
		h *= prime64
	}
	return h % 10000
}

// UsesDKIM reports whether the rule's scope has a dkim: term.
func (r Rule) UsesDKIM() bool { return r.scope.has(kindDKIM) }

// UsesTrust reports whether the rule's scope has a trust: term.
func (r Rule) UsesTrust() bool { return r.scope.has(kindTrust) }

// UsesAuthFacts reports whether any rule of rs has a dkim: or trust:
// term, whose facts exist only after verification. A nil rs has none.
func (rs *RuleSet) UsesAuthFacts() bool {
	if rs == nil {
		return false
	}
	for _, r := range rs.Rules {
		if r.UsesDKIM() || r.UsesTrust() {
			return true
		}
	}
	return false
}

func (sc scope) has(k termKind) bool {
	for _, t := range sc.terms {
		if t.kind == k {
			return true
		}
	}
	return false
}
