package testkit

import (
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// signOwn signs raw with an l= tag (RFC 6376 3.5) when o.BodyLength is
// set, which go-msgauth's signer cannot write. It implements just enough
// of RFC 6376 for that: sha256, simple and relaxed canonicalization, one
// signature. Options are already defaulted and checked by Sign.
func signOwn(raw []byte, o SignOptions) ([]byte, error) {
	if o.Domain == "" || o.Selector == "" {
		return nil, errors.New("testkit: sign: domain and selector are required")
	}
	hasFrom := false
	for _, h := range o.Headers {
		hasFrom = hasFrom || strings.EqualFold(h, "from")
	}
	if !hasFrom {
		return nil, errors.New("testkit: sign: the From header field must be signed")
	}
	var keyAlg string
	switch o.Key.Public().(type) {
	case *rsa.PublicKey:
		keyAlg = AlgRSA
	case ed25519.PublicKey:
		keyAlg = AlgEd25519
	default:
		return nil, fmt.Errorf("testkit: sign: unsupported key type %T", o.Key.Public())
	}

	msg := crlf(string(raw))
	head, body, ok := strings.Cut(msg, "\r\n\r\n")
	if !ok {
		head, body = strings.TrimSuffix(msg, "\r\n"), ""
	}
	fields := splitFields(head + "\r\n")

	cbody := canonBody(body, o.BodyCanon)
	bh := sha256.Sum256([]byte(cbody))

	tags := []string{
		"v=1",
		"a=" + keyAlg + "-sha256",
		"c=" + o.HeaderCanon + "/" + o.BodyCanon,
		"d=" + o.Domain,
		"s=" + o.Selector,
		"t=" + strconv.FormatInt(time.Now().Unix(), 10),
	}
	if !o.Expiration.IsZero() {
		tags = append(tags, "x="+strconv.FormatInt(o.Expiration.Unix(), 10))
	}
	if o.BodyLength {
		tags = append(tags, "l="+strconv.Itoa(len(cbody)))
	}
	tags = append(tags,
		"h="+strings.Join(o.Headers, ":"),
		"bh="+base64.StdEncoding.EncodeToString(bh[:]),
		"b=",
	)
	sigField := "DKIM-Signature: " + strings.Join(tags, ";\r\n\t")

	h := sha256.New()
	picked := make(map[string]int)
	for _, name := range o.Headers {
		if f := pick(fields, name, picked); f != "" {
			h.Write([]byte(canonHeader(f, o.HeaderCanon)))
		}
	}
	h.Write([]byte(strings.TrimSuffix(canonHeader(sigField+"\r\n", o.HeaderCanon), "\r\n")))
	digest := h.Sum(nil)

	var sig []byte
	var err error
	if keyAlg == AlgEd25519 {
		sig, err = o.Key.Sign(rand.Reader, digest, crypto.Hash(0))
	} else {
		sig, err = o.Key.Sign(rand.Reader, digest, crypto.SHA256)
	}
	if err != nil {
		return nil, fmt.Errorf("testkit: sign: %w", err)
	}
	var out bytes.Buffer
	out.WriteString(sigField + base64.StdEncoding.EncodeToString(sig) + "\r\n")
	out.WriteString(msg)
	return out.Bytes(), nil
}

// splitFields splits a header section (ending in CRLF) into fields, each
// with its continuation lines and final CRLF.
func splitFields(head string) []string {
	var fields []string
	for _, line := range strings.SplitAfter(head, "\r\n") {
		if line == "" {
			continue
		}
		if len(fields) > 0 && (line[0] == ' ' || line[0] == '\t') {
			fields[len(fields)-1] += line
		} else {
			fields = append(fields, line)
		}
	}
	return fields
}

// pick returns the next field named name from the bottom of the header
// (RFC 6376 5.4.2), or "" when there is none left.
func pick(fields []string, name string, picked map[string]int) string {
	name = strings.ToLower(name)
	skip := picked[name]
	for i := len(fields) - 1; i >= 0; i-- {
		k, _, _ := strings.Cut(fields[i], ":")
		if !strings.EqualFold(strings.TrimSpace(k), name) {
			continue
		}
		if skip > 0 {
			skip--
			continue
		}
		picked[name]++
		return fields[i]
	}
	return ""
}

var wsp = regexp.MustCompile(`[ \t]+`)

// canonHeader canonicalizes one header field (RFC 6376 3.4.1, 3.4.2).
func canonHeader(f, canon string) string {
	if canon == CanonSimple {
		return f
	}
	k, v, _ := strings.Cut(f, ":")
	v = strings.ReplaceAll(v, "\r\n", "")
	v = strings.TrimSpace(wsp.ReplaceAllString(v, " "))
	return strings.ToLower(strings.TrimSpace(k)) + ":" + v + "\r\n"
}

// canonBody canonicalizes a body with CRLF line endings (RFC 6376 3.4.3,
// 3.4.4).
func canonBody(body, canon string) string {
	if canon == CanonRelaxed {
		lines := strings.Split(body, "\r\n")
		for i, l := range lines {
			lines[i] = strings.TrimRight(wsp.ReplaceAllString(l, " "), " ")
		}
		body = strings.Join(lines, "\r\n")
	}
	body = strings.TrimRight(body, "\r\n")
	if body == "" {
		if canon == CanonRelaxed {
			return ""
		}
		return "\r\n"
	}
	return body + "\r\n"
}
