package auth

import (
	"strings"

	"github.com/emersion/go-msgauth/authres"
	"github.com/mailscope/mailscope/contracts"
)

// AuthenticationResults formats the value of an Authentication-Results
// header field (RFC 8601) for res, with go-msgauth/authres. authservID
// defaults to [DefaultAuthServID] when empty.
//
// Each signature becomes a "dkim=" result with header.d, header.s and
// header.a (RFC 8601 2.7.1) and a reason unless it passed; unsigned mail
// gives "dkim=none". When skipped is not empty verification did not run,
// and the result is "dkim=none" with skipped as the reason.
func AuthenticationResults(authservID string, res Result, skipped string) string {
	if authservID == "" {
		authservID = DefaultAuthServID
	}
	var results []authres.Result
	if skipped != "" {
		results = append(results, &authres.DKIMResult{Value: authres.ResultNone, Reason: skipped})
	}
	for _, s := range res.Signatures {
		if skipped != "" {
			break
		}
		if s.Result == contracts.ResultNone {
			results = append(results, &authres.DKIMResult{Value: authres.ResultNone, Reason: s.Reason})
			continue
		}
		// authres.DKIMResult has no fields for header.s and header.a; a
		// GenericResult of method "dkim" writes the same syntax with them.
		params := map[string]string{
			"header.d": s.Domain,
			"header.s": s.Selector,
			"header.a": s.Algorithm,
		}
		if s.Result != contracts.ResultPass {
			params["reason"] = s.Reason
		}
		results = append(results, &authres.GenericResult{
			Method: "dkim",
			Value:  authres.ResultValue(s.Result),
			Params: params,
		})
	}
	// authres.Format leaves a space after a result without parameters.
	return strings.TrimRight(authres.Format(authservID, results), " ")
}
