// Package rules is the flag-rule engine: it parses the rules operators keep
// in the NATS KV bucket (one key per flag), holds them as immutable
// snapshots that follow the bucket live (Store), and decides each flag for
// one mail (Snapshot.Eval on Facts).
//
// # Rules
//
// The value of a key is rule lines; blank lines and lines starting with
// '#' are ignored:
//
//	# comments and blank lines are ignored
//	SCOPE PRIORITY VALUE
//
// Fields are split on white space. PRIORITY is a non-negative decimal
// integer, unique within the key. VALUE is the rest of the line, trimmed
// (it may contain spaces and '#'), and must parse as the flag's Type: bool
// flags accept only the literals of ParseBool, so an unknown word is an
// error, never "on". VALUE may be empty, or left out, only for string
// flags: "SCOPE PRIORITY" alone means the empty string, which for
// mail.reject means "do not reject". A key that is not a registered flag
// is refused (cause CauseUnknownFlag) and its rules are never in force.
//
// Rules are tried from the highest priority down; the first whose scope
// matches decides. With no match, the flag's registered default applies.
// A key is all-or-nothing: one bad line rejects the value, and the Store
// keeps the key's last good rules.
//
// # Scopes
//
// A scope is one or more terms joined by '&'; all must match:
//
//	default                   always
//	mail_header:NAME:REGEX    any occurrence of header NAME (any case), unfolded and
//	                          RFC 2047-decoded, contains a match of REGEX
//	rcpt:REGEX                any envelope recipient contains a match of REGEX
//	dkim:DOMAIN               a DKIM signature with d=DOMAIN (any case) verified pass
//	trust:LEVEL               the trust level is LEVEL: strong, weak or none
//	sender_percent:P          the sender is in the first P percent (0..100, at most
//	                          2 decimals) for this flag
//	env:NAME                  the worker's environment is NAME (exact)
//	release:VERSION           the worker's version is VERSION (exact)
//
// REGEX is Go RE2 syntax, unanchored and case-sensitive unless it starts
// with (?i); at most MaxRegexLen bytes. In mail_header, NAME ends at the
// first ':' and REGEX is the rest, so REGEX may contain ':'. Because a
// scope is one field without white space and '&' separates terms, a regex
// writes a space as \s or \x20 and a literal '&' as \x26:
//
//	mail_header:Subject:(?i)^\[beta\]\x20 10 quarantine
//	rcpt:@beta\.example$&dkim:example.com 20 publish
//
// dkim: and trust: terms are false while the facts they need are not known
// yet (Facts.DKIMKnown, Facts.TrustKnown).
//
// sender_percent hashes the flag name and the lower-cased From address
// (FNV-1a 64 of flag + "\x00" + from, mod 10000) and matches when the
// result is below P*100: raising P only ever adds senders, and each flag
// picks its own senders. A mail without From matches only at 100.
//
// # Evaluation
//
// Each term's result is memoized in the mail's Facts; terms with the same
// meaning share one memo slot across all flags of a Snapshot (for
// sender_percent, only within one flag, since the flag salts the hash).
// After the memo exists, Eval does not allocate.
package rules
