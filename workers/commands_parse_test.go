package workers

import (
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mailscope/mailscope/contracts"
)

func knownCommands() map[string]CommandSpec {
	k := map[string]CommandSpec{}
	for _, s := range DefaultCommands() {
		k[s.Name] = s
	}
	return k
}

// TestParseCommandsGrammar pins the grammar of docs/handlers.md: which
// lines are commands, what ends them, how arguments split.
func TestParseCommandsGrammar(t *testing.T) {
	for _, c := range []struct {
		name, text string
		want       []string // "line:name arg|arg"
		failed     int
	}{
		{"indented lines, done", " status fixed\n tag a b\ndone\n status x\n", []string{"1:status(fixed)", "2:tag(a|b)"}, 0},
		{"CRLF, tabs, blank lines, case", "\r\n\tSTATUS Fixed\r\n\r\n  \t tag   a\t b \r\n", []string{"2:status(Fixed)", "4:tag(a|b)"}, 0},
		{"text ends them", " status fixed\nThanks!\n tag a\n", []string{"1:status(fixed)"}, 0},
		{"text first: none", "Hello,\n status fixed\n", nil, 0},
		{"a quote ends them", " status fixed\n> tag a\n", []string{"1:status(fixed)"}, 0},
		{"the signature ends them", " status fixed\n-- \n tag a\n", []string{"1:status(fixed)"}, 0},
		{"done indented, any case", " status fixed\n  DONE \n tag a\n", []string{"1:status(fixed)"}, 0},
		{"quotes", ` summary "two words" and\ "more"` + "\n" + ` tag "a \"b\" \\ c"` + "\n", []string{`1:summary(two words|and\|more)`, `2:tag(a "b" \ c)`}, 0},
		{"empty quoted argument", ` subscribe ""` + "\n", []string{"1:subscribe()"}, 0},
		{"every bad line counted", " frob\n status\n status a b\n tag \"x\n", nil, 4},
		{"empty", "", nil, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := parseCommands(c.text, knownCommands(), 50)
			var got []string
			for _, cl := range p.commands {
				got = append(got, strconv.Itoa(cl.line)+":"+cl.name+"("+strings.Join(cl.args, "|")+")")
			}
			if strings.Join(got, ",") != strings.Join(c.want, ",") || p.failed != c.failed {
				t.Errorf("commands %q failed %d (%+v), want %q failed %d", got, p.failed, p.failures, c.want, c.failed)
			}
		})
	}
}

// TestParseCommandsBounds: past the command limit every further line
// fails; failures are kept up to ReplyMaxFailures, each text cut at
// LineMax bytes, and all of them counted.
func TestParseCommandsBounds(t *testing.T) {
	p := parseCommands(strings.Repeat(" status fixed\n", 3), knownCommands(), 2)
	if len(p.commands) != 2 || p.failed != 1 || p.failures[0].Error != "more than 2 commands in one mail" {
		t.Errorf("commands %d failures %+v", len(p.commands), p.failures)
	}
	p = parseCommands(strings.Repeat(" frob "+strings.Repeat("é", 200)+"\n", 150), knownCommands(), 50)
	if p.failed != 150 || len(p.failures) != contracts.ReplyMaxFailures {
		t.Fatalf("failed %d kept %d", p.failed, len(p.failures))
	}
	for _, f := range p.failures {
		if len(f.Text) > contracts.LineMax || !utf8.ValidString(f.Text) {
			t.Fatalf("failure text of %d bytes, valid %v", len(f.Text), utf8.ValidString(f.Text))
		}
	}
}

// FuzzParseCommands: any text parses without panic; every command is
// known, within its arity and the argument bounds, on an increasing
// line; every failure's text is valid UTF-8 within LineMax.
func FuzzParseCommands(f *testing.F) {
	for _, s := range []string{" status fixed\n tag a \"b c\"\ndone\n", "\t\"\n", " tag \"\\\"", "x\n status y", " status \xff"} {
		f.Add(s)
	}
	known := knownCommands()
	f.Fuzz(func(t *testing.T, text string) {
		p := parseCommands(text, known, 5)
		last := 0
		for _, c := range p.commands {
			s, ok := known[c.name]
			if !ok || len(c.args) < s.MinArgs || s.MaxArgs >= 0 && len(c.args) > s.MaxArgs || len(c.args) > maxCommandArgs || c.line <= last {
				t.Fatalf("command %+v (spec %+v, ok %v) after line %d", c, s, ok, last)
			}
			for _, a := range c.args {
				if len(a) > maxCommandArg {
					t.Fatalf("argument of %d bytes", len(a))
				}
			}
			last = c.line
		}
		if len(p.commands) > 5 || p.failed < len(p.failures) {
			t.Fatalf("%d commands, failed %d kept %d", len(p.commands), p.failed, len(p.failures))
		}
		for _, fl := range p.failures {
			if len(fl.Text) > contracts.LineMax || !utf8.ValidString(fl.Text) || fl.Error == "" {
				t.Fatalf("failure %+v", fl)
			}
		}
	})
}
