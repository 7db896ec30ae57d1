package keyserver

import (
	"strings"

	"github.com/miekg/dns"
)

// maxCharString is the longest DNS character-string (RFC 1035 3.3).
const maxCharString = 255

// SetTXT publishes one TXT record for name, replacing any record it had,
// with the given TTL in seconds. The name may end in a dot and is
// case-insensitive, e.g. "sel._domainkey.example.com". Values longer than
// 255 bytes are split into several character-strings of one record, as DNS
// requires; a client joins them back into the value.
func (s *Server) SetTXT(name string, ttl uint32, txt string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records[canonical(name)] = record{ttl: ttl, txt: txt}
}

// Delete removes the record of name; it is then NXDOMAIN.
func (s *Server) Delete(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.records, canonical(name))
}

// SetNegativeTTL sets the SOA minimum (and SOA TTL) sent in negative
// answers, in seconds. Default [DefaultNegativeTTL].
func (s *Server) SetNegativeTTL(ttl uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.negTTL = ttl
}

// Queries returns how many queries arrived for name, over UDP and TCP,
// including those answered with a fault.
func (s *Server) Queries(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[canonical(name)]
}

// canonical returns name lower-cased and fully qualified, the key of the
// server's maps.
func canonical(name string) string {
	return dns.CanonicalName(name)
}

// splitTXT cuts v into character-strings of at most 255 bytes, escaped the
// way miekg/dns expects in TXT.Txt (presentation format).
func splitTXT(v string) []string {
	var parts []string
	for len(v) > maxCharString {
		parts = append(parts, escapeTXT(v[:maxCharString]))
		v = v[maxCharString:]
	}
	return append(parts, escapeTXT(v))
}

// escapeTXT escapes backslashes and double quotes, which miekg/dns would
// otherwise read as escape sequences when packing.
func escapeTXT(s string) string {
	if !strings.ContainsAny(s, `\"`) {
		return s
	}
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}
