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
	}{
		{"From: a\r\n\r\nbody\r\nDKIM-Signature: no\r\n", nil, true},
		{"DKIM-Signature: v=1; d=a.example;\r\n\ts=x;\r\n b=abc\r\nFrom: a\r\n\r\n",
			[]string{" v=1; d=a.example;\r\n\ts=x;\r\n b=abc\r\n"}, true},
		{"dkim-signature:a=1\nX: y\n continued\nDKIM-Signature : b=2\n folded\n",
			[]string{"a=1\n", " b=2\n folded\n"}, false},
		{" leading continuation\r\nDKIM-Signature: c=3", []string{" c=3"}, false},
		{"DKIM-Signature-Not: x\r\nDKIM-Signature x\r\n\r\n", nil, true},
	} {
		sigs, ended := scanSignatures([]byte(tc.raw))
		if fmt.Sprintf("%q", sigs) != fmt.Sprintf("%q", tc.sigs) || ended != tc.ended {
			t.Errorf("%q:\n got %q, %v\nwant %q, %v", tc.raw, sigs, ended, tc.sigs, tc.ended)
		}
	}
}

func TestParseTags(t *testing.T) {
	got := parseTags(" v=1; a=rsa-\r\n\tsha256; d = Example.com ; d=second.example; s= s1;\r\n c=relaxed/\r\n simple; l=10; b=AAAA\r\n BBBB; garbage; =x")
	want := map[string]string{"a": "rsa-sha256", "d": "Example.com", "s": "s1", "c": "relaxed/simple", "l": "10"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v\nwant %v", got, want)
	}
}
