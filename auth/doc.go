// Package auth is the verify stage of the worker: it checks the DKIM
// signatures of a mail with github.com/emersion/go-msgauth/dkim, looks up
// keys through a [Resolver] the worker owns (configurable servers, a TTL
// cache with negative caching, one in-flight query per name, timeouts),
// and turns the verifications into data: a [Result] per mail, a trust
// level ([Trust]) and an Authentication-Results header
// ([AuthenticationResults]).
//
// A verdict is not an error. A bad or malformed signature is a result
// (fail, permerror); a DNS timeout is a temperror result with
// [Result.TempError] set, so that the worker retries the mail later
// instead of failing it for good.
package auth
