package auth

import (
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
)

// Config configures a [Resolver] and a [Verifier]. The zero value is
// usable: every field has a default.
type Config struct {
	// DNSServers are the "host:port" addresses of the DNS servers to ask,
	// in order: the next is tried when one times out (after Retries) or
	// answers SERVFAIL, REFUSED or another error code. Default empty: use
	// the system resolver (net.DefaultResolver), whose answers are cached
	// for [SystemTTL] because it does not report TTLs.
	DNSServers []string
	// Timeout bounds one query to one server. Default 2s.
	Timeout time.Duration
	// Retries is how often a query to one server is repeated after it
	// timed out, before the next server is tried. Default 1; negative
	// means no retry.
	Retries int
	// MaxSignatures is the most DKIM signatures verified per mail; the
	// rest are ignored and [Result.CapHit] is set. Default 5.
	MaxSignatures int
	// CacheSize is the most names the resolver caches; the least recently
	// used is evicted first. Default 10000; negative disables the cache.
	// Answers are cached for their TTL, clamped to [1s, 1h]; negative
	// answers (NXDOMAIN, no TXT record) for the SOA minimum (at most
	// 5 min), or 60s without an SOA. Temporary failures are cached for
	// FailureTTL.
	CacheSize int
	// FailureTTL is how long a lookup that failed for the time being (every
	// server timed out or answered SERVFAIL, REFUSED or another error code)
	// is remembered, in the same cache as answers: within it, lookups of
	// the name return the same *[TempError] without asking again, so a dead
	// or refusing server costs one query (and one timeout) per name per
	// FailureTTL rather than one per mail (RFC 2308 7). The mail is still a
	// temperror and retried. Default 5s ([DefaultFailureTTL]); at most 5
	// minutes ([MaxFailureTTL], RFC 2308 7.1), longer values are lowered to
	// it; negative disables failure caching (every lookup asks again).
	// A cancelled lookup is never cached.
	FailureTTL time.Duration
	// AuthServID is the authserv-id of the Authentication-Results header
	// (RFC 8601). Default "mailscope".
	AuthServID string
	// StrictAlignment makes a signing domain (d=) align with the From
	// domain only when the two are equal (RFC 7489 3.1.1, "strict").
	// Default false: relaxed alignment, where domains with the same
	// organizational domain align (mail.example.com with example.com),
	// the organizational domain being the public suffix plus one label
	// by golang.org/x/net/publicsuffix. Alignment decides whether a
	// passing signature can make a mail's trust "strong" (see [Trust]).
	StrictAlignment bool
	// KeySource, when not nil, is asked for each DKIM key record before
	// DNS; a key it does not have is looked up in DNS as usual. It is a
	// staging aid (see [KVKeys]), not for production. Default nil: keys
	// come from DNS only.
	KeySource KeySource
	// Now returns the current time, for cache expiry. Default time.Now.
	// It does not move the clock that x= expiry is checked against: see
	// "Expiry and clock skew" in the package documentation.
	Now func() time.Time
	// TracerProvider makes the span of each key lookup that misses the
	// cache. Default the global provider (otel.GetTracerProvider()).
	TracerProvider trace.TracerProvider
}

// Alignment returns the alignment mode c asks for.
func (c Config) Alignment() Alignment {
	if c.StrictAlignment {
		return AlignStrict
	}
	return AlignRelaxed
}

// Defaults of Config.
const (
	DefaultTimeout       = 2 * time.Second
	DefaultRetries       = 1
	DefaultMaxSignatures = 5
	DefaultCacheSize     = 10000
	DefaultAuthServID    = "mailscope"
	DefaultFailureTTL    = 5 * time.Second
	// MaxFailureTTL bounds Config.FailureTTL: RFC 2308 7 forbids caching a
	// server failure or a dead server for longer than five minutes.
	MaxFailureTTL = 5 * time.Minute
)

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Retries == 0 {
		c.Retries = DefaultRetries
	} else if c.Retries < 0 {
		c.Retries = 0
	}
	if c.MaxSignatures <= 0 {
		c.MaxSignatures = DefaultMaxSignatures
	}
	if c.CacheSize == 0 {
		c.CacheSize = DefaultCacheSize
	}
	switch {
	case c.FailureTTL == 0:
		c.FailureTTL = DefaultFailureTTL
	case c.FailureTTL > MaxFailureTTL:
		c.FailureTTL = MaxFailureTTL
	}
	if c.AuthServID == "" {
		c.AuthServID = DefaultAuthServID
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.TracerProvider == nil {
		c.TracerProvider = otel.GetTracerProvider()
	}
	return c
}
