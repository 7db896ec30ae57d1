package rules

import "testing"

func TestUsesAuthFacts(t *testing.T) {
	for _, c := range []struct {
		text         string
		dkim, trust  bool
		setUsesFacts bool
	}{
		{"default 0 on\n", false, false, false},
		{"rcpt:^a@ 1 on\n", false, false, false},
		{"dkim:example.com 1 off\ndefault 0 on\n", true, false, true},
		{"rcpt:^a@&trust:weak 1 on\n", false, true, true},
		{`mail_header:Subject:dkim:\x26trust: 1 on` + "\n", false, false, false},
	} {
		rs, err := Parse(FlagPause, 1, []byte(c.text))
		if err != nil {
			t.Fatalf("%q: %v", c.text, err)
		}
		if got := rs.UsesAuthFacts(); got != c.setUsesFacts {
			t.Errorf("%q: UsesAuthFacts %v, want %v", c.text, got, c.setUsesFacts)
		}
		if r := rs.Rules[0]; r.UsesDKIM() != c.dkim || r.UsesTrust() != c.trust {
			t.Errorf("%q: UsesDKIM %v UsesTrust %v", c.text, r.UsesDKIM(), r.UsesTrust())
		}
	}
	var none *RuleSet
	if none.UsesAuthFacts() {
		t.Error("nil RuleSet uses auth facts")
	}
}

func TestDecisionCanonical(t *testing.T) {
	for _, c := range []struct{ flag, value, want string }{
		{FlagPause, "on", "true"},
		{FlagPause, "No", "false"},
		{FlagPause, "1", "true"},
		{FlagHandler, "quarantine", "quarantine"},
		{"mail.unknown", "on", "on"},
	} {
		if got := (Decision{Flag: c.flag, Value: c.value}).Canonical(); got != c.want {
			t.Errorf("%s=%q: Canonical %q, want %q", c.flag, c.value, got, c.want)
		}
	}
}
