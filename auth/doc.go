// Package auth is the verify stage of the worker: it checks the DKIM
// signatures of a mail with github.com/emersion/go-msgauth/dkim, looks up
// keys through a [Resolver] the worker owns (configurable servers, a TTL
// cache with negative caching that also keeps failed lookups for a few
// seconds, one in-flight query per name, timeouts),
// and turns the verifications into data: a [Result] per mail, a trust
// level ([Trust]), the From domain's DMARC policy ([Verifier.DMARC]) and
// an Authentication-Results header ([AuthenticationResults]).
//
// A verdict is not an error. A bad or malformed signature is a result
// (fail, permerror); a DNS timeout is a temperror result with
// [Result.TempError] set, so that the worker retries the mail later
// instead of failing it for good.
//
// # Decisions
//
// Expiry and clock skew. A signature whose x= time has passed is a
// permerror with the reason "signature has expired": RFC 6376 6.1.1 lets a
// verifier return PERMFAIL (signature expired), and the signature is not
// checked further (no key lookup, no hash), so "fail", which RFC 8601
// reserves for signatures that were tested and did not verify, would
// claim more than was done. The clock-skew allowance for x= is zero.
// go-msgauth compares x= with the real clock before it looks the key up
// and offers no option to shift that clock, so a signature expired by one
// second cannot be told apart from a forged one without verifying it by
// other code; a second DKIM implementation for a few seconds of skew is
// not worth its risk. Signers set x= days after t=, so a few minutes of
// skew matter only to mail already at the edge of its lifetime. (t= is
// not checked against the clock at all, so a signer whose clock runs
// ahead is accepted.)
//
// Body length (l=). A signature with an l= tag no larger than the body
// is refused with the result "policy" (RFC 8601 2.7.1: valid in form but
// unacceptable by local policy): l= lets anyone append unsigned text to a
// signed body (RFC 6376 8.2). An l= larger than the canonicalized body
// present is a "fail" (RFC 6376 3.7, 6.1.3: the body the signer hashed is
// not all there), and an l= that is not 1 to 76 digits a "permerror".
// go-msgauth refuses every l= before hashing, so Verify counts the
// canonicalized body itself (one pass, no copy) to tell these apart.
//
// Key flags (t=). A key record with the flag t=s refuses a signature whose
// i= domain is not d= itself, a subdomain included (RFC 6376 3.6.1):
// "permerror", the word go-msgauth gives the key's other refusals (h=,
// s=, k=). go-msgauth reads t= but does not apply it, so Verify keeps the
// key records it fetched for a mail and checks the flag after go-msgauth.
// The flag t=y (testing) changes no result.
//
// Differential corpus. testdata/differential holds mails signed by dkimpy,
// a second implementation, with their DNS zone, one per clause of RFC 6376
// checked (key tags, i=, l=, canonicalization, repeated and absent header
// fields); its gen.py made them. One case is a known deviation: go-msgauth
// compares i= with d= case-sensitively, so an i= domain written in other
// letter case than d= is a permerror ("domain mismatch") although RFC 6376
// accepts it.
//
// Bare LF. A mail stored with bare LF line endings (published straight to
// the stream rather than received over SMTP, whose client side sends
// CRLF) is verified as if its lines ended in CRLF, as RFC 5322 mail on the
// wire would: go-msgauth reads header lines with net/textproto and ends
// each with CRLF, and its body canonicalizers turn a lone LF into CRLF.
// The stored mail is never changed.
//
// Large mail. The body reaches go-msgauth in chunks of 256 KiB, so the
// copies its canonicalizers make of each chunk stay small: verifying a
// mail takes little memory beyond the mail itself.
package auth
