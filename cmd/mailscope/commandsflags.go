package main

import (
	"flag"
	"fmt"
	"strings"

	"github.com/mailscope/mailscope/workers"
)

// addCommandsFlags adds the commands handler's worker flags
// (docs/handlers.md, "The commands handler"): --commands, the known
// command names with their arities; --commands-original-limit, the
// largest mail a reply carries whole; --commands-max, the most commands
// a mail may hold.
func addCommandsFlags(fs *flag.FlagSet, c *workers.CommandsConfig) {
	fs.Func("commands", fmt.Sprintf("NAME[=ARITY],...: the commands mail to the commands handler may use, ARITY N, N-M or N+ arguments (a NAME alone: any); replaces the default %s", specList(workers.DefaultCommands())),
		func(v string) error {
			specs, err := workers.ParseCommandSpecs(v)
			if err != nil {
				return err
			}
			c.Commands = specs
			return nil
		})
	fs.IntVar(&c.OriginalLimit, "commands-original-limit", workers.DefaultOriginalLimit, "largest mail, in bytes, a reply event of the commands handler carries whole; a larger one's header section only, marked truncated; negative: never the original")
	fs.IntVar(&c.MaxCommands, "commands-max", workers.DefaultMaxCommands, "most commands one mail to the commands handler may hold; more are refused with a reply")
}

// specList is specs as --commands takes them.
func specList(specs []workers.CommandSpec) string {
	s := make([]string, len(specs))
	for i, c := range specs {
		s[i] = c.String()
	}
	return strings.Join(s, ",")
}
