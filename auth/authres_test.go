package auth

import (
	"testing"

	"github.com/emersion/go-msgauth/authres"
	"github.com/mailscope/mailscope/contracts"
)

func TestAuthenticationResults(t *testing.T) {
	two := Result{Signatures: []contracts.DKIMResult{
		{Domain: "example.com", Selector: "sel", Algorithm: "rsa-sha256", Result: "pass"},
		{Domain: "example.net", Selector: "s2", Algorithm: "ed25519-sha256", Result: "fail", Reason: "dkim: body hash did not verify"},
	}}
	for _, tc := range []struct {
		name, id, skipped string
		res               Result
		want              string
	}{
		{"two", "mx.example.org", "", two,
			"mx.example.org; dkim=pass header.a=rsa-sha256 header.d=example.com header.s=sel; " +
				`dkim=fail reason="dkim: body hash did not verify" header.a=ed25519-sha256 header.d=example.net header.s=s2`},
		{"unsigned", "", "", Result{Signatures: []contracts.DKIMResult{{Result: "none"}}}, "mailscope; dkim=none"},
		{"skipped", "", "mail.dkim.verify is off", two, `mailscope; dkim=none reason="mail.dkim.verify is off"`},
	} {
		got := AuthenticationResults(tc.id, tc.res, tc.skipped)
		if got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
		// It parses back with go-msgauth.
		id, results, err := authres.Parse(got)
		if err != nil {
			t.Errorf("%s: parse: %v", tc.name, err)
			continue
		}
		if want := map[bool]string{true: "mailscope", false: tc.id}[tc.id == ""]; id != want {
			t.Errorf("%s: authserv-id = %q", tc.name, id)
		}
		if d, ok := results[0].(*authres.DKIMResult); ok && tc.name == "two" && (d.Value != authres.ResultPass || d.Domain != "example.com") {
			t.Errorf("%s: parsed %+v", tc.name, d)
		}
	}
}

func TestAuthenticationResultsEndToEnd(t *testing.T) {
	b := setup(t, Config{})
	b.publish(t, "sel", "example.com", "ed")
	res, err := b.v.Verify(t.Context(), b.sign(t, mail("hi\n"), "sel", "example.com", "ed"))
	if err != nil {
		t.Fatal(err)
	}
	got := AuthenticationResults("", res, "")
	if want := "mailscope; dkim=pass header.a=ed25519-sha256 header.d=example.com header.s=sel"; got != want {
		t.Errorf("got %s\nwant %s", got, want)
	}
}
