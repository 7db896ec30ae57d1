package testkit

import (
	"bytes"
	"crypto"
	"errors"
	"fmt"
	"time"

	"github.com/emersion/go-msgauth/dkim"
)

// DefaultHeaders are the header fields SignOptions signs by default.
var DefaultHeaders = []string{"from", "to", "subject", "date", "message-id"}

// Canonicalizations accepted in SignOptions.
const (
	CanonRelaxed = "relaxed"
	CanonSimple  = "simple"
)

// SignOptions say how Sign signs a mail.
type SignOptions struct {
	// Domain is the signing domain, tag d=. Required.
	Domain string
	// Selector is tag s=. Required.
	Selector string
	// Key is the private key: RSA (rsa-sha256) or ed25519
	// (ed25519-sha256). Required.
	Key crypto.Signer
	// HeaderCanon and BodyCanon are the canonicalizations, "relaxed"
	// (default) or "simple".
	HeaderCanon, BodyCanon string
	// Headers lists the header fields to sign, tag h=. Default
	// [DefaultHeaders]; it must include "from".
	Headers []string
	// Expiration sets tag x= when not zero.
	Expiration time.Time
	// BodyLength sets tag l= to the length of the canonical body. Verifiers
	// built on go-msgauth refuse such signatures as insecure; this option
	// exists to test that.
	BodyLength bool
}

// Sign signs raw and returns it with a DKIM-Signature header field
// prepended. It uses go-msgauth's signer, except with BodyLength, which
// go-msgauth does not support, where it uses a small signer of its own.
func Sign(raw []byte, o SignOptions) ([]byte, error) {
	if o.Key == nil {
		return nil, errors.New("testkit: sign: no key")
	}
	if o.HeaderCanon == "" {
		o.HeaderCanon = CanonRelaxed
	}
	if o.BodyCanon == "" {
		o.BodyCanon = CanonRelaxed
	}
	for _, c := range []string{o.HeaderCanon, o.BodyCanon} {
		if c != CanonRelaxed && c != CanonSimple {
			return nil, fmt.Errorf("testkit: sign: unknown canonicalization %q", c)
		}
	}
	if o.Headers == nil {
		o.Headers = DefaultHeaders
	}
	if o.BodyLength {
		return signOwn(raw, o)
	}
	var out bytes.Buffer
	err := dkim.Sign(&out, bytes.NewReader(raw), &dkim.SignOptions{
		Domain:                 o.Domain,
		Selector:               o.Selector,
		Signer:                 o.Key,
		HeaderCanonicalization: dkim.Canonicalization(o.HeaderCanon),
		BodyCanonicalization:   dkim.Canonicalization(o.BodyCanon),
		HeaderKeys:             o.Headers,
		Expiration:             o.Expiration,
	})
	if err != nil {
		return nil, fmt.Errorf("testkit: sign: %w", err)
	}
	return out.Bytes(), nil
}
