package testkit

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
)

// DefaultRSABits is the RSA key size GenerateKey uses when bits is 0.
const DefaultRSABits = 2048

// Key algorithms accepted by GenerateKey.
const (
	AlgRSA     = "rsa"
	AlgEd25519 = "ed25519"
)

// GenerateKey generates a signing key. alg is "rsa" or "ed25519". For RSA,
// bits is the modulus size (default [DefaultRSABits] when 0); it is
// ignored for ed25519.
func GenerateKey(alg string, bits int) (crypto.Signer, error) {
	switch alg {
	case AlgRSA:
		if bits == 0 {
			bits = DefaultRSABits
		}
		k, err := rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			return nil, fmt.Errorf("testkit: generate rsa key: %w", err)
		}
		return k, nil
	case AlgEd25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, fmt.Errorf("testkit: generate ed25519 key: %w", err)
		}
		return k, nil
	}
	return nil, fmt.Errorf("testkit: unknown key algorithm %q (want rsa or ed25519)", alg)
}

// MarshalPrivateKey encodes k as a PEM block "PRIVATE KEY" (PKCS #8).
func MarshalPrivateKey(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("testkit: marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// ParsePrivateKey decodes the first PEM block of pemBytes: "PRIVATE KEY"
// (PKCS #8, RSA or ed25519) or "RSA PRIVATE KEY" (PKCS #1).
func ParsePrivateKey(pemBytes []byte) (crypto.Signer, error) {
	b, _ := pem.Decode(pemBytes)
	if b == nil {
		return nil, errors.New("testkit: no PEM block found")
	}
	var (
		k   any
		err error
	)
	switch b.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(b.Bytes)
	case "RSA PRIVATE KEY":
		k, err = x509.ParsePKCS1PrivateKey(b.Bytes)
	default:
		return nil, fmt.Errorf("testkit: unexpected PEM block %q", b.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("testkit: parse private key: %w", err)
	}
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("testkit: unsupported private key type %T", k)
}
