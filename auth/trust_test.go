package auth

import (
	"testing"

	"github.com/mailscope/mailscope/contracts"
)

func TestAligned(t *testing.T) {
	for _, tc := range []struct {
		d, from string
		want    bool
	}{
		{"example.com", "example.com", true},
		{"EXAMPLE.com.", "example.COM", true},
		{"mail.example.com", "example.com", true},
		{"example.com", "news.example.com", true},
		{"a.example.com", "b.example.com", true},
		{"example.co.uk", "example.co.uk", true},
		{"mail.example.co.uk", "example.co.uk", true},
		{"example.co.uk", "other.co.uk", false},
		{"co.uk", "example.co.uk", false},
		{"example.com", "example.org", false},
		{"example.com", "notexample.com", false},
		{"", "example.com", false},
		{"example.com", "", false},
	} {
		if got := Aligned(tc.d, tc.from); got != tc.want {
			t.Errorf("Aligned(%q, %q) = %v, want %v", tc.d, tc.from, got, tc.want)
		}
	}
}

func TestTrust(t *testing.T) {
	sig := func(d, result string) contracts.DKIMResult { return contracts.DKIMResult{Domain: d, Result: result} }
	onlyExample := func(d string) bool { return d == "example.com" || d == "mail.example.com" }
	always := func(string) bool { return true }
	for _, tc := range []struct {
		name   string
		sigs   []contracts.DKIMResult
		from   string
		strong func(string) bool
		want   string
	}{
		{"unsigned", []contracts.DKIMResult{{Result: "none"}}, "example.com", always, "none"},
		{"only failures", []contracts.DKIMResult{sig("example.com", "fail"), sig("example.com", "temperror")}, "example.com", always, "none"},
		{"aligned pass, flag on", []contracts.DKIMResult{sig("Mail.Example.com", "pass")}, "example.com", onlyExample, "strong"},
		{"aligned pass, flag off", []contracts.DKIMResult{sig("example.com", "pass")}, "example.com", func(string) bool { return false }, "weak"},
		{"aligned pass, nil flag", []contracts.DKIMResult{sig("example.com", "pass")}, "example.com", nil, "weak"},
		{"unaligned pass", []contracts.DKIMResult{sig("mailer.net", "pass")}, "example.com", always, "weak"},
		{"aligned fails, other passes", []contracts.DKIMResult{sig("example.com", "fail"), sig("mailer.net", "pass")}, "example.com", always, "weak"},
		{"second signature strong", []contracts.DKIMResult{sig("mailer.net", "pass"), sig("example.com", "pass")}, "example.com", always, "strong"},
	} {
		if got := Trust(Result{Signatures: tc.sigs}, tc.from, tc.strong); got != tc.want {
			t.Errorf("%s: Trust = %q, want %q", tc.name, got, tc.want)
		}
	}
}
