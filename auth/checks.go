package auth

import (
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/mailscope/mailscope/contracts"
)

// keyRecords keeps the key records fetched while verifying one mail, by
// lower-cased name, so that checks go-msgauth does not make can read the
// key a signature was judged with. It is safe for concurrent use
// (go-msgauth verifies several signatures in parallel).
type keyRecords struct {
	mu sync.Mutex
	m  map[string]string
}

// put records the answer for name when it is one record, the only
// answer go-msgauth accepts as a key.
func (k *keyRecords) put(name string, txts []string) {
	if len(txts) != 1 {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.m == nil {
		k.m = make(map[string]string)
	}
	k.m[strings.ToLower(name)] = txts[0]
}

// get returns the key record of selector s of domain d, as go-msgauth
// names it.
func (k *keyRecords) get(s, d string) (string, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	rec, ok := k.m[strings.ToLower(s+"._domainkey."+d)]
	return rec, ok
}

// check applies to one signature, given its tags, the result word and
// reason classify gave it, the key records fetched and the mail's body,
// the checks of RFC 6376 that go-msgauth v0.7.0 does not make, and
// returns the word and reason that stand:
//
//   - l= must be 1 to 76 digits (RFC 6376 3.5); otherwise the signature
//     is malformed: permerror, whatever go-msgauth found, since tags are
//     judged before the key is fetched (6.1.1).
//   - A key record whose t= flags include "s" forbids an i= domain other
//     than d= itself, a subdomain included (3.6.1): permerror, the word
//     go-msgauth gives the other refusals of a key record (h= without the
//     signature's hash, s= without "email", a k= of another algorithm).
//     Key checks come before the hashes (6.1.2), so this stands over a
//     pass, a fail or a policy.
//   - An l= larger than the canonicalized body fails (3.7, 6.1.3): the
//     signer hashed a body that is not all there. An l= no larger than
//     the body keeps "policy".
//
// Only pass, fail and policy come from a signature whose key was fetched
// and accepted; other words are returned as they are.
func check(tags map[string]string, word, reason string, keys *keyRecords, body []byte) (string, string) {
	if tags == nil {
		return word, reason
	}
	l, hasL := tags["l"]
	if hasL && !isBodyLength(l) {
		if word == contracts.ResultPermError {
			return word, reason
		}
		return contracts.ResultPermError, fmt.Sprintf("dkim: malformed body length tag l=%q", l)
	}
	switch word {
	case contracts.ResultPass, contracts.ResultFail, contracts.ResultPolicy:
	default:
		return word, reason
	}
	d := tags["d"]
	if rec, ok := keys.get(tags["s"], d); ok && keyFlag(rec, "s") {
		if i, ok := tags["i"]; ok {
			if id := identityDomain(i); !strings.EqualFold(id, d) {
				return contracts.ResultPermError, fmt.Sprintf("dkim: the key's t=s flag forbids i= domain %s, which is not d=%s", id, d)
			}
		}
	}
	if word == contracts.ResultPolicy && hasL {
		_, bodyCanon, _ := strings.Cut(canonicalization(tags), "/")
		n := canonicalBodyLength(body, bodyCanon == "relaxed")
		if longerThan(l, n) {
			return contracts.ResultFail, fmt.Sprintf("dkim: body length tag l=%s is larger than the body (%d octets canonicalized)", l, n)
		}
	}
	return word, reason
}

// isBodyLength reports whether l is a valid l= value: 1 to 76 decimal
// digits (RFC 6376 3.5).
func isBodyLength(l string) bool {
	if l == "" || len(l) > 76 {
		return false
	}
	for _, c := range l {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// longerThan reports whether the valid l= value l is larger than n.
func longerThan(l string, n int64) bool {
	l = strings.TrimLeft(l, "0")
	if len(l) > 18 { // more than any body in memory
		return true
	}
	v, _ := strconv.ParseInt("0"+l, 10, 64)
	return v > n
}

// keyFlag reports whether the t= flags of key record rec include flag
// (compared case-insensitively, as ABNF literals are).
func keyFlag(rec, flag string) bool {
	t, ok := parseTags(rec, "t")["t"]
	if !ok {
		return false
	}
	for f := range strings.SplitSeq(t, ":") {
		if strings.EqualFold(f, flag) {
			return true
		}
	}
	return false
}

// identityDomain returns the domain of an i= value: what follows its last
// "@", or all of it without one.
func identityDomain(i string) string {
	if at := strings.LastIndexByte(i, '@'); at >= 0 {
		return i[at+1:]
	}
	return i
}
