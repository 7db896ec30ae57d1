package auth

import (
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// TTL bounds of cached answers.
const (
	minTTL         = time.Second
	maxTTL         = time.Hour
	maxNegativeTTL = 5 * time.Minute
	defNegativeTTL = 60 * time.Second
)

// parseAnswer turns a DNS response for the TXT records of name into a
// cache entry expiring by its TTL. A response code other than NOERROR and
// NXDOMAIN is an error: the caller asks the next server.
func parseAnswer(name string, resp *dns.Msg, now time.Time) (*entry, error) {
	e := &entry{name: name}
	switch resp.Rcode {
	case dns.RcodeSuccess:
		ttl := maxTTL
		for _, rr := range resp.Answer {
			if t, ok := rr.(*dns.TXT); ok {
				e.txts = append(e.txts, joinTXT(t.Txt))
			}
			// Every record of the chain (CNAMEs too) bounds the TTL.
			ttl = min(ttl, time.Duration(rr.Header().Ttl)*time.Second)
		}
		if len(e.txts) > 0 {
			e.expires = now.Add(max(ttl, minTTL))
			return e, nil
		}
		e.err = fmt.Errorf("auth: lookup %s: %w (no data)", name, ErrNotFound)
	case dns.RcodeNameError:
		e.err = fmt.Errorf("auth: lookup %s: %w (NXDOMAIN)", name, ErrNotFound)
	default:
		return nil, fmt.Errorf("server answered %s", dns.RcodeToString[resp.Rcode])
	}
	e.expires = now.Add(negativeTTL(resp))
	return e, nil
}

// negativeTTL is how long a negative answer may be cached (RFC 2308 5):
// the smaller of the SOA's TTL and minimum, at most 5 minutes, or 60s when
// the answer carries no SOA.
func negativeTTL(resp *dns.Msg) time.Duration {
	for _, rr := range resp.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			ttl := time.Duration(min(soa.Hdr.Ttl, soa.Minttl)) * time.Second
			return min(max(ttl, minTTL), maxNegativeTTL)
		}
	}
	return defNegativeTTL
}

// joinTXT joins the character-strings of one TXT record into the record's
// value, undoing the presentation-format escapes (\" \\ \DDD) miekg/dns
// puts in TXT.Txt.
func joinTXT(parts []string) string {
	s := strings.Join(parts, "")
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
			b.WriteByte((s[i+1]-'0')*100 + (s[i+2]-'0')*10 + (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i+1])
		i++
	}
	return b.String()
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }
