package auth

import "time"

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
	// 5 min), or 60s without an SOA. Temporary failures are not cached.
	CacheSize int
	// AuthServID is the authserv-id of the Authentication-Results header
	// (RFC 8601). Default "mailscope".
	AuthServID string
	// Now returns the current time, for cache expiry. Default time.Now.
	// (go-msgauth checks the x= expiry of signatures against the real
	// clock; this does not change that.)
	Now func() time.Time
}

// Defaults of Config.
const (
	DefaultTimeout       = 2 * time.Second
	DefaultRetries       = 1
	DefaultMaxSignatures = 5
	DefaultCacheSize     = 10000
	DefaultAuthServID    = "mailscope"
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
	if c.AuthServID == "" {
		c.AuthServID = DefaultAuthServID
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}
