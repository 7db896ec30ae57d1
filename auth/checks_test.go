package auth

import (
	"strings"
	"testing"

	"github.com/mailscope/mailscope/contracts"
)

// TestCheck covers the branches of check the corpus does not reach: it
// is given go-msgauth's word and the key records, and must leave alone
// what it does not judge.
func TestCheck(t *testing.T) {
	var keys keyRecords
	keys.put("ts._domainkey.a.example", []string{"v=DKIM1; t = y : S ; p=AAAA"})
	keys.put("two._domainkey.a.example", []string{"v=DKIM1; t=s; p=AAAA", "v=DKIM1; p=BBBB"})
	keys.put("plain._domainkey.a.example", []string{"v=DKIM1; p=AAAA"})
	body := []byte("Hello.\r\n") // 8 octets canonicalized either way
	sig := func(kv ...string) map[string]string {
		m := map[string]string{"d": "a.example", "c": "relaxed/relaxed"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	const pass, fail, policy, perm, temp = contracts.ResultPass, contracts.ResultFail, contracts.ResultPolicy,
		contracts.ResultPermError, contracts.ResultTempError
	for _, tc := range []struct {
		name      string
		tags      map[string]string
		word      string
		want, why string
	}{
		{"t=s, flag in upper case, subdomain i=", sig("s", "ts", "i", "@sub.a.example"), pass, perm, "t=s"},
		{"t=s, same domain in other case", sig("s", "TS", "i", "x@A.Example"), pass, pass, ""},
		{"t=s over a fail", sig("s", "ts", "i", "@sub.a.example"), fail, perm, "t=s"},
		{"t=s, i= without @", sig("s", "ts", "i", "sub.a.example"), pass, perm, "t=s"},
		{"t=s over a temperror is not judged", sig("s", "ts", "i", "@sub.a.example"), temp, temp, "go-msgauth"},
		{"two records are no key", sig("s", "two", "i", "@sub.a.example"), pass, pass, ""},
		{"no t=s", sig("s", "plain", "i", "@sub.a.example"), pass, pass, ""},
		{"l= equal to the body", sig("s", "plain", "l", "8"), policy, policy, "go-msgauth"},
		{"l= one over, simple body", sig("s", "plain", "l", "9", "c", "simple/simple"), policy, fail, "larger than the body"},
		{"l= with leading zeros", sig("s", "plain", "l", "0008"), policy, policy, "go-msgauth"},
		{"l= of 76 digits", sig("s", "plain", "l", strings.Repeat("9", 76)), policy, fail, "larger than the body"},
		{"l= of 77 digits", sig("s", "plain", "l", strings.Repeat("9", 77)), policy, perm, "malformed body length"},
		{"l= empty", sig("s", "plain", "l", ""), policy, perm, "malformed body length"},
		{"l= negative over a temperror", sig("s", "plain", "l", "-1"), temp, perm, "malformed body length"},
		{"l= malformed under a permerror keeps its reason", sig("s", "plain", "l", "x"), perm, perm, "go-msgauth"},
		{"t=s before l=", sig("s", "ts", "i", "@sub.a.example", "l", "99"), policy, perm, "t=s"},
	} {
		word, why := check(tc.tags, tc.word, "go-msgauth", &keys, body)
		if word != tc.want || !strings.Contains(why, tc.why) {
			t.Errorf("%s: %s %q, want %s with %q", tc.name, word, why, tc.want, tc.why)
		}
	}
	if w, r := check(nil, fail, "go-msgauth", &keys, body); w != fail || r != "go-msgauth" {
		t.Errorf("without tags: %s %q, want go-msgauth's", w, r)
	}
}
