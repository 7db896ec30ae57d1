package workers

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// CommandsHandler is the value of mail.handler that chooses the commands
// handler, the email-command interpreter (docs/handlers.md, "The
// commands handler").
const CommandsHandler = "commands"

// CommandsConfig configures the commands handler.
type CommandsConfig struct {
	// Commands are the command names a mail may use, each with the
	// number of arguments it takes. Default DefaultCommands.
	Commands []CommandSpec
	// OriginalLimit is the largest raw mail a reply event carries whole,
	// in bytes; a larger one is carried as its header section only (cut
	// at this limit) and marked truncated. Default 64 KiB; negative:
	// the original is never carried.
	OriginalLimit int
	// MaxCommands is the most commands one mail may hold; a mail with
	// more is refused with a reply. Default 50.
	MaxCommands int
}

// CommandSpec is one known command: its name and how many arguments it
// takes, from MinArgs to MaxArgs (MaxArgs -1: no upper bound).
type CommandSpec struct {
	// Name is the command's name: a lower-case letter, then lower-case
	// letters, digits, '-' or '_', at most 32 bytes, so that it is a safe
	// subject token and metric label.
	Name string
	// MinArgs and MaxArgs bound the arguments; MaxArgs -1 is unbounded.
	MinArgs, MaxArgs int
}

// DefaultCommands are the commands known unless configured: Launchpad's
// bug commands, by name and arity.
//
//	status STATUS           importance IMPORTANCE   assignee PERSON
//	tag TAG...              untag TAG...            subscribe [PERSON]
//	unsubscribe [PERSON]    duplicate ID            summary TEXT...
//	affects TARGET          milestone NAME
func DefaultCommands() []CommandSpec {
	return []CommandSpec{
		{"status", 1, 1}, {"importance", 1, 1}, {"assignee", 1, 1},
		{"tag", 1, -1}, {"untag", 1, -1}, {"subscribe", 0, 1},
		{"unsubscribe", 0, 1}, {"duplicate", 1, 1}, {"summary", 1, -1},
		{"affects", 1, 1}, {"milestone", 1, 1},
	}
}

// Defaults of CommandsConfig.
const (
	DefaultOriginalLimit = 64 << 10
	DefaultMaxCommands   = 50
)

func (c CommandsConfig) withDefaults() CommandsConfig {
	if len(c.Commands) == 0 {
		c.Commands = DefaultCommands()
	}
	if c.OriginalLimit == 0 {
		c.OriginalLimit = DefaultOriginalLimit
	}
	if c.MaxCommands <= 0 {
		c.MaxCommands = DefaultMaxCommands
	}
	return c
}

// Validate checks every command: a valid name, given once, and
// 0 <= MinArgs <= MaxArgs (or MaxArgs -1).
func (c CommandsConfig) Validate() error {
	seen := map[string]bool{}
	var errs []error
	for _, s := range c.Commands {
		if err := validCommandName(s.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[s.Name] {
			errs = append(errs, fmt.Errorf("command %s: configured twice", s.Name))
		}
		seen[s.Name] = true
		if s.MinArgs < 0 || s.MaxArgs < -1 || s.MaxArgs != -1 && s.MaxArgs < s.MinArgs {
			errs = append(errs, fmt.Errorf("command %s: arguments %s: want MIN, MIN-MAX or MIN+ with 0 <= MIN <= MAX", s.Name, s.arity()))
		}
	}
	return errors.Join(errs...)
}

func validCommandName(n string) error {
	if n == "" || len(n) > 32 {
		return fmt.Errorf("command name %q: want 1 to 32 bytes", n)
	}
	for i, r := range n {
		if !(r >= 'a' && r <= 'z' || i > 0 && (r >= '0' && r <= '9' || r == '-' || r == '_')) {
			return fmt.Errorf("command name %q: want a lower-case letter, then lower-case letters, digits, '-' or '_'", n)
		}
	}
	return nil
}

// ParseCommandSpecs parses a comma-separated list of NAME or NAME=ARITY,
// ARITY being N (exactly N arguments), N-M (N to M) or N+ (N or more); a
// NAME alone takes any number (0+). The worker's --commands flag takes
// this form, e.g. "status=1,tag=1+,subscribe=0-1".
func ParseCommandSpecs(s string) ([]CommandSpec, error) {
	var out []CommandSpec
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, arity, hasArity := strings.Cut(item, "=")
		spec := CommandSpec{Name: name, MinArgs: 0, MaxArgs: -1}
		if hasArity {
			var err error
			if spec.MinArgs, spec.MaxArgs, err = parseArity(arity); err != nil {
				return nil, fmt.Errorf("command %s: %w", name, err)
			}
		}
		out = append(out, spec)
	}
	if len(out) == 0 {
		return nil, errors.New("no command names")
	}
	return out, CommandsConfig{Commands: out}.Validate()
}

func parseArity(a string) (lo, hi int, err error) {
	bad := fmt.Errorf("arguments %q: want N, N-M or N+", a)
	if n, ok := strings.CutSuffix(a, "+"); ok {
		lo, err := strconv.Atoi(n)
		if err != nil {
			return 0, 0, bad
		}
		return lo, -1, nil
	}
	l, h, ok := strings.Cut(a, "-")
	if lo, err = strconv.Atoi(l); err != nil {
		return 0, 0, bad
	}
	hi = lo
	if ok {
		if hi, err = strconv.Atoi(h); err != nil {
			return 0, 0, bad
		}
	}
	return lo, hi, nil
}

// String returns the spec as ParseCommandSpecs reads it: NAME=ARITY.
func (s CommandSpec) String() string { return s.Name + "=" + s.arity() }

// arity is the spec's argument count as ParseCommandSpecs reads it.
func (s CommandSpec) arity() string {
	switch {
	case s.MaxArgs == -1:
		return strconv.Itoa(s.MinArgs) + "+"
	case s.MinArgs == s.MaxArgs:
		return strconv.Itoa(s.MinArgs)
	}
	return strconv.Itoa(s.MinArgs) + "-" + strconv.Itoa(s.MaxArgs)
}
