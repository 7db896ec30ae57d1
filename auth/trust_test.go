package auth

import (
	"testing"

	"github.com/mailscope/mailscope/contracts"
)

func TestAligned(t *testing.T) {
	for _, tc := range []struct {
		d, from         string
		relaxed, strict bool
	}{
		{"example.com", "example.com", true, true},
		{"EXAMPLE.com.", "example.COM", true, true},
		{"mail.example.com", "example.com", true, false},
		{"example.com", "news.example.com", true, false},
		{"a.example.com", "b.example.com", true, false},
		{"a.example.com", "A.Example.com", true, true},
		{"example.co.uk", "example.co.uk", true, true},
		{"mail.example.co.uk", "example.co.uk", true, false},
		{"example.co.uk", "other.co.uk", false, false},
		{"co.uk", "example.co.uk", false, false},
		{"example.com", "example.org", false, false},
		{"example.com", "notexample.com", false, false},
		{"", "example.com", false, false},
		{"example.com", "", false, false},
	} {
		if got := AlignRelaxed.Aligned(tc.d, tc.from); got != tc.relaxed {
			t.Errorf("relaxed: Aligned(%q, %q) = %v, want %v", tc.d, tc.from, got, tc.relaxed)
		}
		if got := Alignment("").Aligned(tc.d, tc.from); got != tc.relaxed {
			t.Errorf("zero value: Aligned(%q, %q) = %v, want %v (relaxed)", tc.d, tc.from, got, tc.relaxed)
		}
		if got := AlignStrict.Aligned(tc.d, tc.from); got != tc.strict {
			t.Errorf("strict: Aligned(%q, %q) = %v, want %v", tc.d, tc.from, got, tc.strict)
		}
	}
}

func TestConfigAlignment(t *testing.T) {
	if a := (Config{}).Alignment(); a != AlignRelaxed {
		t.Errorf("default alignment %q, want relaxed", a)
	}
	if a := (Config{StrictAlignment: true}).Alignment(); a != AlignStrict {
		t.Errorf("StrictAlignment: alignment %q, want strict", a)
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
		align  Alignment
		strong func(string) bool
		want   string
	}{
		{"unsigned", []contracts.DKIMResult{{Result: "none"}}, "example.com", AlignRelaxed, always, "none"},
		{"only failures", []contracts.DKIMResult{sig("example.com", "fail"), sig("example.com", "temperror")}, "example.com", AlignRelaxed, always, "none"},
		{"aligned pass, flag on", []contracts.DKIMResult{sig("Mail.Example.com", "pass")}, "example.com", AlignRelaxed, onlyExample, "strong"},
		{"subdomain pass, strict", []contracts.DKIMResult{sig("mail.example.com", "pass")}, "example.com", AlignStrict, always, "weak"},
		{"same domain pass, strict", []contracts.DKIMResult{sig("Example.com", "pass")}, "example.com", AlignStrict, always, "strong"},
		{"aligned pass, flag off", []contracts.DKIMResult{sig("example.com", "pass")}, "example.com", AlignRelaxed, func(string) bool { return false }, "weak"},
		{"aligned pass, nil flag", []contracts.DKIMResult{sig("example.com", "pass")}, "example.com", AlignRelaxed, nil, "weak"},
		{"unaligned pass", []contracts.DKIMResult{sig("mailer.net", "pass")}, "example.com", AlignRelaxed, always, "weak"},
		{"aligned fails, other passes", []contracts.DKIMResult{sig("example.com", "fail"), sig("mailer.net", "pass")}, "example.com", AlignRelaxed, always, "weak"},
		{"second signature strong", []contracts.DKIMResult{sig("mailer.net", "pass"), sig("example.com", "pass")}, "example.com", AlignRelaxed, always, "strong"},
		{"second signature strong, strict", []contracts.DKIMResult{sig("mail.example.com", "pass"), sig("example.com", "pass")}, "example.com", AlignStrict, always, "strong"},
	} {
		if got := Trust(Result{Signatures: tc.sigs}, tc.from, tc.align, tc.strong); got != tc.want {
			t.Errorf("%s: Trust = %q, want %q", tc.name, got, tc.want)
		}
	}
}
