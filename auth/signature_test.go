package auth

import (
	"fmt"
	"testing"
)

func TestScanSignatures(t *testing.T) {
	for _, tc := range []struct {
		raw   string
		sigs  []string
		ended bool
		body  string // what follows the header section
	}{
		{"From: a\r\n\r\nbody\r\nDKIM-Signature: no\r\n", nil, true, "body\r\nDKIM-Signature: no\r\n"},
		{"DKIM-Signature: v=1; d=a.example;\r\n\ts=x;\r\n b=abc\r\nFrom: a\r\n\r\n",
			[]string{" v=1; d=a.example;\r\n\ts=x;\r\n b=abc\r\n"}, true, ""},
		{"dkim-signature:a=1\nX: y\n continued\nDKIM-Signature : b=2\n folded\n",
			[]string{"a=1\n", " b=2\n folded\n"}, false, ""},
		{" leading continuation\r\nDKIM-Signature: c=3", []string{" c=3"}, false, ""},
		{"DKIM-Signature-Not: x\r\nDKIM-Signature x\r\n\r\n", nil, true, ""},
		{"From: a\n\n\nbody\n", nil, true, "\nbody\n"},
	} {
		sigs, ended, body := scanSignatures([]byte(tc.raw))
		if fmt.Sprintf("%q", sigs) != fmt.Sprintf("%q", tc.sigs) || ended != tc.ended || tc.raw[body:] != tc.body {
			t.Errorf("%q:\n got %q, %v, body %q\nwant %q, %v, body %q", tc.raw, sigs, ended, tc.raw[body:], tc.sigs, tc.ended, tc.body)
		}
	}
}

func TestParseTags(t *testing.T) {
	got := parseTags(" v=1; a=rsa-\r\n\tsha256; d = Example.com ; d=second.example; s= s1;\r\n c=relaxed/\r\n simple; l=10; b=AAAA\r\n BBBB; garbage; =x")
	want := map[string]string{"a": "rsa-sha256", "d": "Example.com", "s": "s1", "c": "relaxed/simple", "l": "10"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
	key := parseTags("v=DKIM1; k=rsa; t = y : s ; h=sha256; p=AB CD", "t", "k")
	if want := map[string]string{"k": "rsa", "t": "y:s"}; fmt.Sprint(key) != fmt.Sprint(want) {
		t.Errorf("key record: got %v\nwant %v", key, want)
	}
}
