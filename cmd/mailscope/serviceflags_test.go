package main

import (
	"strings"
	"testing"
)

// TestServiceFlags: the worker refuses at start, with a usage error
// naming each mistake, a service subject outside the service prefix or
// with wildcards, a name used twice or not a name, a timeout not below
// the handler timeout, and a malformed flag value.
func TestServiceFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--service", "a", "--service", "a", "--service", "b=other.x", "--service", "c=mail.service.*", "--service-timeout", "40s"}, []string{
			"service timeout 40s not below the handler timeout 30s",
			"service a: configured twice",
			`service b: subject "other.x" is not under the service prefix mail.service`,
			`service c: subject "mail.service.*": want a literal subject`,
		}},
		{[]string{"--service-prefix", "ext", "--service", "d=mail.service.d"}, []string{`service d: subject "mail.service.d" is not under the service prefix ext`}},
		{[]string{"--service", "bad name"}, []string{`service name "bad name": only letters`}},
		{[]string{"--service", "=mail.service.x"}, []string{"want NAME or NAME=SUBJECT"}},
		{[]string{"--service", "a", "--service-timeout", "soon"}, []string{`timeout "soon": want a positive duration`}},
		{[]string{"--service", "a", "--service-attachment-limit", "lots"}, []string{`attachment limit "lots": want bytes`}},
	} {
		r := run(t, "", nil, nil, append([]string{"worker", "--nats", "nats://127.0.0.1:1"}, c.args...)...)
		for _, want := range c.want {
			if r.code != 2 || !strings.Contains(r.stderr, want) {
				t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, r.code, r.stderr, want)
			}
		}
	}
}
