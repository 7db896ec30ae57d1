package workers

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mailscope/mailscope/contracts"
)

// commandLine is one command as parsed from a mail's text.
type commandLine struct {
	line int // from 1
	name string
	args []string
}

// parsedCommands is what a mail's text says: its commands, the lines
// that failed, and whether the commands ended with "done".
type parsedCommands struct {
	commands []commandLine
	failures []contracts.LineFailure
	// failed counts every failed line, also those beyond
	// contracts.ReplyMaxFailures.
	failed int
}

// Bounds of one command line's arguments.
const (
	maxCommandArgs = 32
	maxCommandArg  = 256
)

// parseCommands reads the commands at the start of text, the mail's
// first text/plain part (docs/handlers.md, "Grammar"). Lines end at LF
// (a CR before it is dropped). From the first line on:
//
//   - a blank line (white space only) is skipped;
//   - "done" alone on its line (any case, white space around it) ends
//     the commands;
//   - a line that starts with a space or a tab is a command line: NAME
//     and arguments separated by spaces or tabs, an argument in double
//     quotes may hold white space (\" and \\ escape within);
//   - any other line (text, a quote "> ...", the signature separator
//     "-- ") ends the commands: nothing after it is read.
//
// A command line whose name is not in known (compared lower-cased), or
// whose arguments do not fit the command's arity, bounds or quoting,
// fails; max bounds the commands (a line beyond it fails too).
func parseCommands(text string, known map[string]CommandSpec, max int) parsedCommands {
	var p parsedCommands
	fail := func(n int, line, why string) {
		p.failed++
		if len(p.failures) < contracts.ReplyMaxFailures {
			line = strings.ToValidUTF8(line, "\uFFFD")
			if len(line) > contracts.LineMax {
				line = strings.ToValidUTF8(line[:contracts.LineMax], "")
			}
			p.failures = append(p.failures, contracts.LineFailure{Line: n, Text: line, Error: why})
		}
	}
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		line = strings.TrimSuffix(line, "\r")
		trimmed := strings.TrimSpace(line)
		switch {
		case trimmed == "":
			continue
		case strings.EqualFold(trimmed, "done"):
			return p
		case line[0] != ' ' && line[0] != '\t':
			return p
		}
		fields, err := splitCommandLine(trimmed)
		if err != nil {
			fail(n, trimmed, err.Error())
			continue
		}
		name := strings.ToLower(fields[0])
		spec, ok := known[name]
		switch {
		case !ok:
			fail(n, trimmed, fmt.Sprintf("unknown command %q", cut(fields[0], 32)))
			continue
		case len(fields)-1 < spec.MinArgs || spec.MaxArgs >= 0 && len(fields)-1 > spec.MaxArgs:
			fail(n, trimmed, fmt.Sprintf("%s takes %s, not %d", name, argCount(spec), len(fields)-1))
			continue
		case len(p.commands) == max:
			fail(n, trimmed, fmt.Sprintf("more than %d commands in one mail", max))
			continue
		}
		p.commands = append(p.commands, commandLine{line: n, name: name, args: fields[1:]})
	}
	return p
}

// cut returns s cut at n bytes (a rune cut in half dropped), with "..."
// when it was cut.
func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "..."
}

// argCount says how many arguments spec takes, in words.
func argCount(s CommandSpec) string {
	plural := func(n int) string {
		if n == 1 {
			return "1 argument"
		}
		return fmt.Sprintf("%d arguments", n)
	}
	switch {
	case s.MaxArgs == -1:
		return "at least " + plural(s.MinArgs)
	case s.MinArgs == s.MaxArgs:
		return plural(s.MinArgs)
	}
	return fmt.Sprintf("%d to %s", s.MinArgs, plural(s.MaxArgs))
}

// splitCommandLine splits a command line (trimmed, not empty) into its
// fields: runs of non-white-space, or double-quoted strings. It fails on
// an unterminated quote, a control character, more than maxCommandArgs
// arguments or one longer than maxCommandArg bytes.
func splitCommandLine(s string) ([]string, error) {
	var fields []string
	var cur strings.Builder
	inField, quoted := false, false
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		switch {
		case unicode.IsControl(r) && r != '\t':
			return nil, fmt.Errorf("control character %U", r)
		case quoted && r == '\\' && i < len(s) && (s[i] == '"' || s[i] == '\\'):
			cur.WriteByte(s[i])
			i++
		case quoted && r == '"':
			quoted = false
		case quoted:
			cur.WriteRune(r)
		case r == ' ' || r == '\t':
			if inField {
				fields = append(fields, cur.String())
				cur.Reset()
				inField = false
			}
		case r == '"' && !inField:
			inField, quoted = true, true
		default:
			inField = true
			cur.WriteRune(r)
		}
	}
	if quoted {
		return nil, fmt.Errorf("unterminated quote")
	}
	if inField {
		fields = append(fields, cur.String())
	}
	if len(fields)-1 > maxCommandArgs {
		return nil, fmt.Errorf("more than %d arguments", maxCommandArgs)
	}
	for _, f := range fields[1:] {
		if len(f) > maxCommandArg {
			return nil, fmt.Errorf("an argument longer than %d bytes", maxCommandArg)
		}
	}
	return fields, nil
}

// commandTarget returns the target of a mail to rcpt: its local part,
// which must be 1 to 64 bytes of letters, digits, '.', '-', '_' and '+'.
func commandTarget(rcpt string) (string, error) {
	at := strings.LastIndexByte(rcpt, '@')
	local := rcpt
	if at >= 0 {
		local = rcpt[:at]
	}
	if local == "" || len(local) > 64 {
		return local, fmt.Errorf("recipient %q: the local part names no target (want 1 to 64 bytes)", rcpt)
	}
	for _, r := range local {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' || r == '_' || r == '+') {
			return local, fmt.Errorf("recipient %q: the local part is not a valid target (only letters, digits, '.', '-', '_' and '+')", rcpt)
		}
	}
	return local, nil
}
