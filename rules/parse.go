package rules

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Rule is one parsed rule line: SCOPE PRIORITY VALUE.
type Rule struct {
	// Line is the 1-based line of the rule in the key's value.
	Line int
	// ScopeText is the scope as written.
	ScopeText string
	// Priority orders the rules of a flag; the highest is tried first.
	Priority int
	// Value is the rest of the line after the priority, trimmed. It has
	// been validated against the flag's Type.
	Value string

	scope scope
}

// RuleSet is the parsed value of one KV key: the rules of one flag.
// A RuleSet is immutable once returned by Parse.
type RuleSet struct {
	// Flag is the flag name (the KV key).
	Flag string
	// Revision is the KV revision of the key's value.
	Revision uint64
	// Rules are sorted by Priority, highest first.
	Rules []Rule
}

// LineError is the problem with one line of a key's value.
type LineError struct {
	// Line is 1-based.
	Line int
	// Msg says what is wrong.
	Msg string
}

// Error returns "line N: MSG", or MSG alone for line 0 (the key itself).
func (e LineError) Error() string {
	if e.Line == 0 {
		return e.Msg
	}
	return "line " + strconv.Itoa(e.Line) + ": " + e.Msg
}

// ParseError is returned by Parse when a key is refused: any line of its
// value is bad (a key is all-or-nothing: one bad line rejects the whole
// value), or the key is not a known flag.
type ParseError struct {
	// Flag is the flag name (the KV key).
	Flag string
	// Revision is the KV revision of the rejected value.
	Revision uint64
	// Cause is CauseParse for bad lines, CauseUnknownFlag for a key that
	// is not a known flag.
	Cause string
	// Lines lists every bad line, in line order; for CauseUnknownFlag,
	// one entry of line 0 that says so and names the nearest known flag.
	Lines []LineError
}

// Error names the flag, the revision and each bad line, e.g.
// "mail.handler rev 7: line 3: ...; line 5: ...".
func (e *ParseError) Error() string {
	var b strings.Builder
	b.WriteString(e.Flag)
	b.WriteString(" rev ")
	b.WriteString(strconv.FormatUint(e.Revision, 10))
	for i, l := range e.Lines {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(l.Error())
	}
	return b.String()
}

// maxPriority bounds PRIORITY so it fits an int on every platform.
const maxPriority = 1<<31 - 1

// Parse parses the value of the KV key flag at revision. Each non-blank
// line that does not start with '#' (after leading whitespace) is a rule
//
//	SCOPE PRIORITY VALUE
//
// with fields separated by whitespace. VALUE is the rest of the line,
// trimmed; it may contain spaces and '#'. PRIORITY is a non-negative
// decimal integer, unique within the key. VALUE must parse as the flag's
// type (see Type); it may be empty (or left out) only for string flags.
//
// A flag that is not a known one (see Known) is refused whatever its
// rules: the error is a *ParseError of cause CauseUnknownFlag. The empty
// flag name is the exception: its rules' scopes and priorities are
// checked and values taken as strings, for checking rule text before
// knowing its flag.
//
// The error, if any, is a *ParseError listing every bad line; then the
// returned RuleSet is nil.
func Parse(flag string, revision uint64, text []byte) (*RuleSet, error) {
	def, known := lookup(flag)
	switch {
	case flag == "":
		def = Flag{Type: TypeString}
	case !known:
		return nil, &ParseError{Flag: flag, Revision: revision, Cause: CauseUnknownFlag,
			Lines: []LineError{{Msg: unknownFlag(flag)}}}
	}
	return parseFlag(def, revision, text)
}

// parseFlag parses the rules of flag def.
func parseFlag(def Flag, revision uint64, text []byte) (*RuleSet, error) {
	flag := def.Name
	rs := &RuleSet{Flag: flag, Revision: revision}
	var errs []LineError
	seen := make(map[int]int) // priority -> line
	lineNo := 0
	for rest := string(text); rest != ""; {
		var line string
		line, rest, _ = strings.Cut(rest, "\n")
		lineNo++
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		r, err := parseLine(def, line)
		if err != nil {
			errs = append(errs, LineError{Line: lineNo, Msg: err.Error()})
			continue
		}
		r.Line = lineNo
		if prev, dup := seen[r.Priority]; dup {
			errs = append(errs, LineError{Line: lineNo, Msg: fmt.Sprintf("priority %d already used on line %d", r.Priority, prev)})
			continue
		}
		seen[r.Priority] = lineNo
		rs.Rules = append(rs.Rules, r)
	}
	if len(errs) > 0 {
		return nil, &ParseError{Flag: flag, Revision: revision, Cause: CauseParse, Lines: errs}
	}
	slices.SortFunc(rs.Rules, func(a, b Rule) int { return b.Priority - a.Priority })
	return rs, nil
}

// parseLine parses one trimmed, non-comment line.
func parseLine(f Flag, line string) (Rule, error) {
	scopeText, rest := nextField(line)
	prioText, value := nextField(rest)
	if prioText == "" {
		return Rule{}, fmt.Errorf("want SCOPE PRIORITY VALUE, got only %q", scopeText)
	}
	prio, err := parsePriority(prioText)
	if err != nil {
		return Rule{}, err
	}
	sc, err := compileScope(f.Name, scopeText)
	if err != nil {
		return Rule{}, err
	}
	if err := checkValue(f, value, false); err != nil {
		return Rule{}, err
	}
	return Rule{ScopeText: scopeText, Priority: prio, Value: value, scope: sc}, nil
}

// nextField splits s (without leading whitespace) into its first
// whitespace-separated field and the trimmed rest.
func nextField(s string) (field, rest string) {
	i := strings.IndexAny(s, " \t\v\f\r")
	if i < 0 {
		return s, ""
	}
	return s[:i], strings.TrimSpace(s[i:])
}

func parsePriority(s string) (int, error) {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("priority %q: want a non-negative integer", s)
		}
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > maxPriority {
		return 0, fmt.Errorf("priority %q: more than %d", s, maxPriority)
	}
	return int(n), nil
}

// checkValue validates v against f's type. isDefault relaxes nothing but
// names the value in the message.
func checkValue(f Flag, v string, isDefault bool) error {
	what := "value"
	if isDefault {
		what = "default"
	}
	if v == "" && f.Type != TypeString {
		return fmt.Errorf("missing %s: %s flag %s needs one", what, f.Type, f.Name)
	}
	switch f.Type {
	case TypeBool:
		if _, err := ParseBool(v); err != nil {
			return fmt.Errorf("%s %q: %v", what, v, err)
		}
	case TypeEnum:
		if !slices.Contains(f.Enum, v) {
			return fmt.Errorf("%s %q: want one of %s", what, v, strings.Join(f.Enum, ", "))
		}
	}
	return nil
}
