package main

import (
	"strings"
	"testing"
)

// TestCommandsFlags: the worker refuses at start, with a usage error, a
// --commands list with a bad name, a name given twice or an arity that
// does not parse.
func TestCommandsFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--commands", "Status=1"}, `command name "Status": want a lower-case letter`},
		{[]string{"--commands", "tag,tag=1+"}, "command tag: configured twice"},
		{[]string{"--commands", "tag=one"}, `command tag: arguments "one": want N, N-M or N+`},
		{[]string{"--commands", "tag=3-1"}, "command tag: arguments 3-1"},
		{[]string{"--commands", ","}, "no command names"},
	} {
		r := run(t, "", nil, nil, append([]string{"worker", "--nats", "nats://127.0.0.1:1"}, c.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, r.code, r.stderr, c.want)
		}
	}
}
