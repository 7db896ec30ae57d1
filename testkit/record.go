package testkit

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"fmt"
)

// TXTRecord returns the DKIM key record (RFC 6376 3.6.1) that publishes
// the public half of k: "v=DKIM1; k=rsa; p=..." with the
// SubjectPublicKeyInfo DER for RSA, or "v=DKIM1; k=ed25519; p=..." with
// the raw 32-byte key for ed25519 (RFC 8463).
func TXTRecord(k crypto.Signer) (string, error) {
	var alg string
	var p []byte
	switch pub := k.Public().(type) {
	case *rsa.PublicKey:
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			return "", fmt.Errorf("testkit: marshal public key: %w", err)
		}
		alg, p = AlgRSA, der
	case ed25519.PublicKey:
		alg, p = AlgEd25519, pub
	default:
		return "", fmt.Errorf("testkit: unsupported public key type %T", pub)
	}
	return "v=DKIM1; k=" + alg + "; p=" + base64.StdEncoding.EncodeToString(p), nil
}

// DNSName returns the name of the key record of selector in domain:
// selector + "._domainkey." + domain.
func DNSName(selector, domain string) string {
	return selector + "._domainkey." + domain
}
