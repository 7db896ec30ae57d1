package rules

// ScopeKind documents one kind of scope term.
type ScopeKind struct {
	// Syntax is how the term is written, e.g. "rcpt:REGEX".
	Syntax string
	// Matches says when the term matches.
	Matches string
}

// ScopeKinds lists every scope kind the parser accepts, in the order the
// documentation gives them. Terms join with '&' (all must match).
func ScopeKinds() []ScopeKind {
	return []ScopeKind{
		{"default", "always"},
		{"mail_header:NAME:REGEX", "any occurrence of header NAME (any case), unfolded and RFC 2047-decoded, contains a match of REGEX"},
		{"rcpt:REGEX", "any envelope recipient contains a match of REGEX"},
		{"dkim:DOMAIN", "a DKIM signature with d=DOMAIN verified pass"},
		{"trust:LEVEL", "the mail's trust level is LEVEL: strong, weak or none"},
		{"sender_percent:P", "the From address is in the first P percent (0..100) for this flag; raising P only adds senders"},
		{"env:NAME", "the worker's environment is NAME"},
		{"release:VERSION", "the worker's version is VERSION"},
	}
}
