package auth

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
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
//   - fail: the body hash or the signature did not verify, or its l=
//     body length is larger than the body present (RFC 6376 3.7, 6.1.3);
//   - policy: the signature is valid in form but refused by policy (it
//     has an l= body length tag no larger than the body, which lets
//     anyone append to the body);
//   - permerror: the signature cannot be verified: malformed (a bad l=
//     included), missing or revoked key (NXDOMAIN, no TXT record, empty
//     p=), a key that refuses it (h=, s=, k=, or t=s with an i= domain
//     that is not d= itself: RFC 6376 3.6.1), rsa-sha1, an RSA key under
//     1024 bits, expired (x= in the past, with no clock-skew allowance:
//     see the package documentation), and so on;
//   - temperror: the key could not be fetched now (DNS timeout, SERVFAIL,
//     a failing [KeySource]).
//
// Keys come from Config.KeySource first when there is one, then from the
// resolver. Bare LF line endings verify as CRLF would; raw is never
// modified.
//
// A mail without a DKIM-Signature header field costs a header scan and
// gets the single result "none". A verdict is never an error: Verify fails
// only when ctx ends or the mail cannot be read at all, and then its
// Result is not to be used.
func (v *Verifier) Verify(ctx context.Context, raw []byte) (Result, error) {
	sigs, ended, bodyAt := scanSignatures(raw)
	if len(sigs) == 0 {
		v.r.met.dkimResult(ctx, contracts.ResultNone)
		return Result{Signatures: []contracts.DKIMResult{{Result: contracts.ResultNone}}}, nil
	}
	body := raw[bodyAt:]
	if !ended {
		// A mail of header fields only: give go-msgauth the empty line
		// (and empty body) it needs to find the end of the header.
		end := lineEnd(raw)
		if !bytes.HasSuffix(raw, []byte("\n")) {
			end += end
		}
		raw = slices.Concat(raw, []byte(end))
		body = nil
	}
	var keys keyRecords
	verifs, err := dkim.VerifyWithOptions(&chunkReader{b: raw}, &dkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) {
			txts, err := v.lookupKey(ctx, name)
			if err == nil {
				keys.put(name, txts)
			}
			return txts, err
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
		word, reason = check(tags, word, reason, &keys, body)
		v.r.met.dkimResult(ctx, word)
		res.Signatures = append(res.Signatures, contracts.DKIMResult{
			Domain:           d,
			Selector:         tags["s"],
			Algorithm:        tags["a"],
			Canonicalization: canonicalization(tags),
			Result:           word,
			Reason:           reason,
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

// lookupKey returns the key record of name, "selector._domainkey.domain":
// from the key source when there is one and it has the key, else from
// DNS. A key source failure other than "not found" is a bare *TempError,
// like a DNS failure, so that go-msgauth reports a temperror.
func (v *Verifier) lookupKey(ctx context.Context, name string) ([]string, error) {
	if ks := v.cfg.KeySource; ks != nil {
		kctx, cancel := context.WithTimeout(ctx, v.cfg.Timeout)
		txt, err := ks.LookupKey(kctx, name)
		cancel()
		switch {
		case err == nil:
			return []string{txt}, nil
		case !errors.Is(err, ErrNotFound):
			return nil, &TempError{Name: name, Server: "key source", Err: err}
		}
	}
	return v.r.LookupTXT(ctx, name)
}

// canonicalization returns tag c= of a signature as "header/body", each
// defaulting to "simple" (RFC 6376 3.5); "" without tags.
func canonicalization(tags map[string]string) string {
	if tags == nil {
		return ""
	}
	h, b, _ := strings.Cut(strings.ToLower(tags["c"]), "/")
	if h == "" {
		h = "simple"
	}
	if b == "" {
		b = "simple"
	}
	return h + "/" + b
}

// chunkSize is the most bytes of a mail handed to go-msgauth per Write.
const chunkSize = 256 << 10

// chunkReader reads b like a bytes.Reader, except that WriteTo writes at
// most chunkSize bytes per Write. go-msgauth copies every Write into its
// body canonicalizers once or twice; bytes.Reader.WriteTo, which
// bufio.Reader.WriteTo and io.Copy would use, hands them the whole body
// at once, so a 30 MiB mail would cost 60 MiB more.
type chunkReader struct {
	b   []byte
	off int
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if r.off >= len(r.b) {
		return 0, io.EOF
	}
	n := copy(p, r.b[r.off:])
	r.off += n
	return n, nil
}

func (r *chunkReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for r.off < len(r.b) {
		chunk := r.b[r.off:min(r.off+chunkSize, len(r.b))]
		n, err := w.Write(chunk)
		r.off += n
		total += int64(n)
		if err != nil {
			return total, err
		}
		if n < len(chunk) {
			return total, io.ErrShortWrite
		}
	}
	return total, nil
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
		// "policy" (go-msgauth's own TODO says so too). check turns it
		// into a fail when l= is larger than the body.
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
