package rules

import (
	"mime"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzRules feeds the rule parser any text an operator could put in a
// key, for every registered flag, and evaluates what it accepts against
// facts made of the same input: nothing panics, and a decision is either
// the flag's default (no rule matched) or the value of the rule it names,
// a value of the flag's type.
func FuzzRules(f *testing.F) {
	for _, s := range []string{
		"rcpt:^traced@ 10 quarantine\ndefault 0 publish\n",
		"# comment\n\nmail_header:X-Beta:^yes$ and not dkim:example.com 5 true\n",
		"percent:12.5 1 true\nenv:staging or release:v2.* 2 false\n",
		"trust:strong 3 30s\nfrom:.*@partner\\.example 1 5m\n",
		"rcpt:([ 1 x\n", "default x y\n", "mail_header::x 1 true", "and or not 1 1",
	} {
		f.Add(uint8(0), s, "alice@example.com", "bob@example.org", "x-beta", "yes")
	}
	flags := Known()
	f.Fuzz(func(t *testing.T, which uint8, text, from, rcpt, hname, hvalue string) {
		fl := flags[int(which)%len(flags)]
		rs, err := Parse(fl.Name, 1, []byte(text))
		if err != nil {
			if _, ok := err.(*ParseError); !ok {
				t.Fatalf("Parse error %T %v, want *ParseError", err, err)
			}
			return
		}
		snap := NewSnapshot(map[string]*RuleSet{fl.Name: rs})
		facts := &Facts{Headers: map[string][]string{strings.ToLower(hname): {hvalue}}, Rcpts: []string{rcpt}, From: from,
			DKIMPass: []string{"example.com"}, DKIMKnown: true, Trust: TrustWeak, TrustKnown: true, Env: "staging", Release: "v2.0.0"}
		d := snap.Eval(fl.Name, facts)
		if d.Rule == nil {
			if d.Value != fl.Default {
				t.Fatalf("no rule matched, value %q, want the default %q", d.Value, fl.Default)
			}
			return
		}
		if d.Value != d.Rule.Value {
			t.Fatalf("decided %q by a rule whose value is %q", d.Value, d.Rule.Value)
		}
		if err := checkValue(fl, d.Value, false); err != nil {
			t.Fatalf("decided %q, not a %s value: %v", d.Value, fl.Name, err)
		}
	})
}

// FuzzDecodeWords feeds RFC 2047 decoding any header value: it never
// panics, leaves a value without encoded-words as it is, and decodes a
// UTF-8 string encoded by the standard library back to itself.
func FuzzDecodeWords(f *testing.F) {
	f.Add("=?utf-8?q?J=C3=B6rg?= <j@example.com>", "Jörg")
	f.Add("=?iso-8859-1?b?4Q==?= =?unknown?q?x?= tail", "ça")
	f.Add("=?utf-8?q?broken", "plain")
	f.Add("=?windows-1252?Q?=80?=", "€ and \x00")
	f.Fuzz(func(t *testing.T, raw, text string) {
		got := decodeWords(raw)
		if !strings.Contains(raw, "=?") && got != raw {
			t.Fatalf("decoded %q into %q without an encoded-word", raw, got)
		}
		if !utf8.ValidString(text) {
			return
		}
		for _, enc := range []mime.WordEncoder{mime.QEncoding, mime.BEncoding} {
			w := enc.Encode("utf-8", text)
			if back := decodeWords(w); back != text {
				t.Fatalf("%q encoded as %q decodes to %q", text, w, back)
			}
		}
	})
}
