package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/mailscope/mailscope/contracts"
)

// Verifier verifies the DKIM signatures of mails. It is safe for
// concurrent use.
type Verifier struct {
	cfg Config
	r   *Resolver
}

// NewVerifier returns a verifier configured by cfg (see [Config] for the
// defaults; it uses MaxSignatures) that looks keys up with r. A nil r is
// replaced by NewResolver(cfg).
func NewVerifier(cfg Config, r *Resolver) *Verifier {
	cfg = cfg.withDefaults()
	if r == nil {
		r = NewResolver(cfg)
	}
	return &Verifier{cfg: cfg, r: r}
}

// Result is the outcome of verifying one mail.
type Result struct {
	// Signatures has one entry per DKIM-Signature header field verified,
	// in header order (top first); exactly one entry with result "none"
	// for unsigned mail.
	Signatures []contracts.DKIMResult
	// CapHit is true when the mail has more signatures than
	// Config.MaxSignatures; only the first MaxSignatures were verified.
	CapHit bool
	// TempError is true when some signature got temperror (a DNS timeout,
	// say): the mail should be retried later rather than judged.
	TempError bool
	// PassDomains lists the lower-cased d= of the passing signatures,
	// each once, in header order.
	PassDomains []string
}

// Verify verifies the DKIM signatures of the raw mail. Each signature gets
// a result in RFC 8601 words:
//
//   - pass: the signature verified;
//   - fail: the body hash or the signature did not verify;
//   - policy: the signature is valid in form but refused by policy (it
//     has an l= body length tag, which lets anyone append to the body);
//   - permerror: the signature cannot be verified: malformed, missing key
//     (NXDOMAIN or no TXT record), rsa-sha1, an RSA key under 1024 bits,
//     expired (x=), and so on;
//   - temperror: the key could not be fetched now (DNS timeout, SERVFAIL).
//
// A mail without a DKIM-Signature header field costs a header scan and
// gets the single result "none". A verdict is never an error: Verify fails
// only when ctx ends or the mail cannot be read at all, and then its
// Result is not to be used.
func (v *Verifier) Verify(ctx context.Context, raw []byte) (Result, error) {
	sigs, ended := scanSignatures(raw)
	if len(sigs) == 0 {
		return Result{Signatures: []contracts.DKIMResult{{Result: contracts.ResultNone}}}, nil
	}
	if !ended {
		// A mail of header fields only: give go-msgauth the empty line
		// (and empty body) it needs to find the end of the header.
		end := lineEnd(raw)
		if !bytes.HasSuffix(raw, []byte("\n")) {
			end += end
		}
		raw = slices.Concat(raw, []byte(end))
	}
	verifs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			return v.r.LookupTXT(ctx, name)
		},
		MaxVerifications: v.cfg.MaxSignatures,
	})
	capHit := errors.Is(err, dkim.ErrTooManySignatures)
	if err != nil && !capHit {
		return Result{}, fmt.Errorf("auth: verify: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return Result{}, fmt.Errorf("auth: verify: %w", err)
	}

	res := Result{CapHit: capHit}
	for i, vf := range verifs {
		var tags map[string]string
		if len(verifs) == min(len(sigs), v.cfg.MaxSignatures) {
			tags = parseTags(sigs[i])
		}
		d := vf.Domain
		if d == "" {
			d = tags["d"]
		}
		word, reason := classify(vf.Err, tags)
		res.Signatures = append(res.Signatures, contracts.DKIMResult{
			Domain:    d,
			Selector:  tags["s"],
			Algorithm: tags["a"],
			Result:    word,
			Reason:    reason,
		})
		switch word {
		case contracts.ResultTempError:
			res.TempError = true
		case contracts.ResultPass:
			if d := strings.ToLower(d); !slices.Contains(res.PassDomains, d) {
				res.PassDomains = append(res.PassDomains, d)
			}
		}
	}
	return res, nil
}

// classify maps go-msgauth's verification error of a signature with the
// given tags to an RFC 8601 result word and a reason.
func classify(err error, tags map[string]string) (word, reason string) {
	if err == nil {
		return contracts.ResultPass, ""
	}
	switch {
	case dkim.IsTempFail(err):
		word = contracts.ResultTempError
	case dkim.IsPermFail(err):
		word = contracts.ResultPermError
	default:
		// go-msgauth checks l= before hashing anything, and reports it
		// as a failure; RFC 8601 calls a refused-by-policy signature
		// "policy" (go-msgauth's own TODO says so too).
		word = contracts.ResultFail
		if _, ok := tags["l"]; ok {
			word = contracts.ResultPolicy
		}
	}
	return word, err.Error()
}

// lineEnd returns the line ending raw uses: "\r\n" unless its first line
// ends in a bare "\n".
func lineEnd(raw []byte) string {
	i := bytes.IndexByte(raw, '\n')
	if i < 0 {
		return "\r\n"
	}
	if i > 0 && raw[i-1] == '\r' {
		return "\r\n"
	}
	return "\n"
}
