package rules

import (
	"errors"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	long := strings.Repeat("a", MaxRegexLen+1)
	tests := []struct {
		name    string
		flag    string
		def     *Flag // instead of the registry
		text    string
		want    []Rule // Line, ScopeText, Priority, Value; highest priority first
		wantErr []string
	}{
		{name: "empty", flag: FlagHandler, text: ""},
		{name: "comments and blanks", flag: FlagHandler, text: "# a comment\n\n   \n  # indented\r\ndefault 0 quarantine\r\n",
			want: []Rule{{Line: 5, ScopeText: "default", Priority: 0, Value: "quarantine"}}},
		{name: "every scope kind", flag: FlagReject, text: `default 0 no
mail_header:Subject:^x 1 a
rcpt:@example\.com$ 2 b
dkim:Example.COM 3 c
trust:strong 4 d
sender_percent:12.5 5 e
env:staging 6 f
release:v1.2.3 7 g
mail_header:X-Url:https?://x 8 colon in regex
`, want: []Rule{
			{Line: 9, ScopeText: "mail_header:X-Url:https?://x", Priority: 8, Value: "colon in regex"},
			{Line: 8, ScopeText: "release:v1.2.3", Priority: 7, Value: "g"},
			{Line: 7, ScopeText: "env:staging", Priority: 6, Value: "f"},
			{Line: 6, ScopeText: "sender_percent:12.5", Priority: 5, Value: "e"},
			{Line: 5, ScopeText: "trust:strong", Priority: 4, Value: "d"},
			{Line: 4, ScopeText: "dkim:Example.COM", Priority: 3, Value: "c"},
			{Line: 3, ScopeText: `rcpt:@example\.com$`, Priority: 2, Value: "b"},
			{Line: 2, ScopeText: "mail_header:Subject:^x", Priority: 1, Value: "a"},
			{Line: 1, ScopeText: "default", Priority: 0, Value: "no"},
		}},
		{name: "conjunction", flag: FlagPause, text: `rcpt:@beta\.example$&dkim:example.com&trust:weak 10 on`,
			want: []Rule{{Line: 1, ScopeText: `rcpt:@beta\.example$&dkim:example.com&trust:weak`, Priority: 10, Value: "on"}}},
		{name: "value keeps inner spaces and hash", flag: FlagReject, text: "default 1   spam,  go away # really  ",
			want: []Rule{{Line: 1, ScopeText: "default", Priority: 1, Value: "spam,  go away # really"}}},
		{name: "tabs separate fields", flag: FlagReject, text: "default\t3\tx",
			want: []Rule{{Line: 1, ScopeText: "default", Priority: 3, Value: "x"}}},
		{name: "string flag without value", flag: FlagReject, text: "env:prod 3",
			want: []Rule{{Line: 1, ScopeText: "env:prod", Priority: 3, Value: ""}}},
		{name: "bool literals", flag: FlagDryRun, text: "env:a 1 off\nenv:b 2 ON\nenv:c 3 yes\nenv:d 4 0\nenv:e 5 False",
			want: []Rule{
				{Line: 5, ScopeText: "env:e", Priority: 5, Value: "False"},
				{Line: 4, ScopeText: "env:d", Priority: 4, Value: "0"},
				{Line: 3, ScopeText: "env:c", Priority: 3, Value: "yes"},
				{Line: 2, ScopeText: "env:b", Priority: 2, Value: "ON"},
				{Line: 1, ScopeText: "env:a", Priority: 1, Value: "off"},
			}},
		{name: "no flag: values are strings", flag: "", text: "default 1 anything at all",
			want: []Rule{{Line: 1, ScopeText: "default", Priority: 1, Value: "anything at all"}}},

		{name: "bool maybe", flag: FlagPause, text: "default 1 maybe", wantErr: []string{"line 1: value \"maybe\": not a bool"}},
		{name: "bool missing value", flag: FlagPause, text: "default 1", wantErr: []string{"line 1: missing value"}},
		{name: "enum wrong", flag: FlagHandler, text: "default 1 Publish", wantErr: []string{"want one of publish, quarantine, discard"}},
		{name: "only scope", flag: FlagReject, text: "default", wantErr: []string{"want SCOPE PRIORITY VALUE"}},
		{name: "bad priority", flag: FlagReject, text: "default high x", wantErr: []string{`priority "high"`}},
		{name: "negative priority", flag: FlagReject, text: "default -1 x", wantErr: []string{`priority "-1": want a non-negative integer`}},
		{name: "plus priority", flag: FlagReject, text: "default +1 x", wantErr: []string{`priority "+1"`}},
		{name: "huge priority", flag: FlagReject, text: "default 99999999999 x", wantErr: []string{`priority "99999999999": more than`}},
		{name: "duplicate priority", flag: FlagReject, text: "default 5 a\n\nenv:x 5 b", wantErr: []string{"line 3: priority 5 already used on line 1"}},
		{name: "bad regex", flag: FlagReject, text: "rcpt:a( 1 x", wantErr: []string{"line 1: scope term \"rcpt:a(\": error parsing regexp"}},
		{name: "bad header regex", flag: FlagReject, text: "mail_header:Subject:[ 1 x", wantErr: []string{"error parsing regexp"}},
		{name: "regex too long", flag: FlagReject, text: "rcpt:" + long + " 1 x", wantErr: []string{"regex is 1025 bytes, more than 1024"}},
		{name: "header without regex", flag: FlagReject, text: "mail_header:Subject 1 x", wantErr: []string{"want mail_header:NAME:REGEX"}},
		{name: "header empty name", flag: FlagReject, text: "mail_header::x 1 x", wantErr: []string{"bad header name"}},
		{name: "unknown scope kind", flag: FlagReject, text: "sender:x@y 1 x", wantErr: []string{`unknown scope kind "sender"`}},
		{name: "bare word scope", flag: FlagReject, text: "everyone 1 x", wantErr: []string{"want KIND:ARGUMENT or default"}},
		{name: "bad trust", flag: FlagReject, text: "trust:high 1 x", wantErr: []string{"trust level must be strong, weak or none"}},
		{name: "bad percent", flag: FlagReject, text: "sender_percent:12.345 1 x\nsender_percent:101 2 x\nsender_percent:-1 3 x\nsender_percent:1e2 4 x\nsender_percent: 5 x\nsender_percent:5. 6 x",
			wantErr: []string{"line 1:", "line 2:", "line 3:", "line 4:", "line 5:", "line 6:"}},
		{name: "empty term", flag: FlagReject, text: "env:a&&env:b 1 x\nenv:a& 2 x", wantErr: []string{"line 1: scope \"env:a&&env:b\": empty term", "line 2:"}},
		{name: "empty env", flag: FlagReject, text: "env: 1 x", wantErr: []string{"empty env"}},
		{name: "all bad lines reported, good ones do not rescue", flag: FlagPause,
			text: "default 1 on\nbogus:1 2 on\ndefault 3 perhaps", wantErr: []string{"line 2:", "line 3:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rs *RuleSet
			var err error
			if tt.def != nil {
				rs, err = parseFlag(*tt.def, 7, []byte(tt.text))
			} else {
				rs, err = Parse(tt.flag, 7, []byte(tt.text))
			}
			if tt.wantErr != nil {
				var pe *ParseError
				if !errors.As(err, &pe) {
					t.Fatalf("err = %v (%T), want *ParseError", err, err)
				}
				if rs != nil {
					t.Errorf("got rules with an error")
				}
				if len(pe.Lines) != len(tt.wantErr) {
					t.Errorf("got %d line errors, want %d: %v", len(pe.Lines), len(tt.wantErr), err)
				}
				msg := err.Error()
				if !strings.HasPrefix(msg, pe.Flag+" rev 7: line ") {
					t.Errorf("error %q does not start with flag and revision", msg)
				}
				for _, w := range tt.wantErr {
					if !strings.Contains(msg, w) {
						t.Errorf("error %q does not contain %q", msg, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if rs.Revision != 7 {
				t.Errorf("Revision = %d", rs.Revision)
			}
			if len(rs.Rules) != len(tt.want) {
				t.Fatalf("got %d rules, want %d: %+v", len(rs.Rules), len(tt.want), rs.Rules)
			}
			for i, w := range tt.want {
				g := rs.Rules[i]
				if g.Line != w.Line || g.ScopeText != w.ScopeText || g.Priority != w.Priority || g.Value != w.Value {
					t.Errorf("rule %d = {%d %q %d %q}, want {%d %q %d %q}", i,
						g.Line, g.ScopeText, g.Priority, g.Value, w.Line, w.ScopeText, w.Priority, w.Value)
				}
				if len(g.scope.terms) == 0 {
					t.Errorf("rule %d has no compiled terms", i)
				}
			}
		})
	}
}

func TestParseBool(t *testing.T) {
	for _, s := range []string{"true", "TRUE", "on", "On", "yes", "YES", "1"} {
		if v, err := ParseBool(s); err != nil || !v {
			t.Errorf("ParseBool(%q) = %v, %v; want true", s, v, err)
		}
	}
	for _, s := range []string{"false", "off", "OFF", "no", "No", "0"} {
		if v, err := ParseBool(s); err != nil || v {
			t.Errorf("ParseBool(%q) = %v, %v; want false", s, v, err)
		}
	}
	for _, s := range []string{"", "maybe", "enabled", "y", "t", "2", " on", "onn"} {
		if v, err := ParseBool(s); !errors.Is(err, ErrBadBool) || v {
			t.Errorf("ParseBool(%q) = %v, %v; want error", s, v, err)
		}
	}
}

func TestRegistry(t *testing.T) {
	known := Known()
	for i, f := range known {
		if i > 0 && known[i-1].Name >= f.Name {
			t.Errorf("Known not sorted at %q", f.Name)
		}
		if f.Description == "" {
			t.Errorf("%s has no description", f.Name)
		}
		if err := checkValue(f, f.Default, true); err != nil {
			t.Errorf("%s: %v", f.Name, err)
		}
		g, ok := Lookup(f.Name)
		if !ok || g.Name != f.Name || g.Default != f.Default || g.Type != f.Type {
			t.Errorf("Lookup(%q) = %+v, %v", f.Name, g, ok)
		}
	}
	for _, n := range []string{FlagHandler, FlagReject, FlagDKIMVerify, FlagDKIMStrong, FlagPause, FlagDryRun} {
		if _, ok := Lookup(n); !ok {
			t.Errorf("%s not registered", n)
		}
	}
	if _, ok := Lookup("mail.nope"); ok {
		t.Error("Lookup of unknown flag succeeded")
	}
	// Known returns a copy.
	h, _ := Lookup(FlagHandler)
	h.Enum[0] = "changed"
	if h2, _ := Lookup(FlagHandler); h2.Enum[0] != "publish" {
		t.Error("Lookup result aliases the registry")
	}
	if TypeBool.String() != "bool" || TypeEnum.String() != "enum" || Type(99).String() != "Type(99)" {
		t.Error("Type.String")
	}
	// Every registered default is a valid value of its flag.
	for _, f := range Known() {
		if err := checkValue(f, f.Default, true); err != nil {
			t.Errorf("default of %s: %v", f.Name, err)
		}
	}
}

// TestParseUnknownFlag: a key that is not a known flag is refused whatever
// its rules, with cause unknown_flag and the nearest known flag when it
// looks like a typo.
func TestParseUnknownFlag(t *testing.T) {
	for _, tc := range []struct {
		flag, text string
		want       string
		near       bool
	}{
		{"mail.handlr", "default 1 discard", `"mail.handlr" is not a known flag (did you mean mail.handler?)`, true},
		{"Mail.Pause", "default 1 on", `(did you mean mail.pause?)`, true},
		{"mail.future", "default 1 anything", `"mail.future" is not a known flag; known flags: mail.auth.dkim_strong,`, false},
		{"mail.handlr", "bogus", `did you mean mail.handler?`, true}, // refused as unknown before its lines are read
	} {
		rs, err := Parse(tc.flag, 4, []byte(tc.text))
		var pe *ParseError
		if !errors.As(err, &pe) || rs != nil {
			t.Fatalf("%s: %v, %v; want a *ParseError", tc.flag, rs, err)
		}
		if pe.Cause != CauseUnknownFlag || pe.Flag != tc.flag || pe.Revision != 4 || len(pe.Lines) != 1 || pe.Lines[0].Line != 0 {
			t.Errorf("%s: %+v", tc.flag, pe)
		}
		if msg := err.Error(); !strings.HasPrefix(msg, tc.flag+" rev 4: ") || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: error %q, want it to contain %q", tc.flag, msg, tc.want)
		}
		if _, ok := Nearest(tc.flag); ok != tc.near {
			t.Errorf("Nearest(%s) found %v, want %v", tc.flag, ok, tc.near)
		}
	}
	// A known flag's bad lines are of cause parse.
	_, err := Parse(FlagPause, 1, []byte("default 1 maybe"))
	var pe *ParseError
	if !errors.As(err, &pe) || pe.Cause != CauseParse {
		t.Errorf("bad value: %v, want cause parse", err)
	}
}
