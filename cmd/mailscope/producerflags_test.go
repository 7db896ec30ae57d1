package main

import (
	"flag"
	"testing"

	"github.com/mailscope/mailscope/producer"
)

// TestProducerLimitFlagDefaults: the SMTP limit flags default to the
// producer's own defaults (docs/smtp.md states both), so the binary and
// a Config built in code behave alike.
func TestProducerLimitFlagDefaults(t *testing.T) {
	fs := flag.NewFlagSet("producer", flag.ContinueOnError)
	var got producer.Config
	addProducerFlags(fs, &got)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	want := producer.Config{}.WithDefaults(0)
	for _, c := range []struct {
		flag      string
		got, want any
	}{
		{"max-command-line", got.MaxCommandLine, want.MaxCommandLine},
		{"max-data-line", got.MaxDataLine, want.MaxDataLine},
		{"max-header-bytes", got.MaxHeaderBytes, want.MaxHeaderBytes},
		{"max-header-fields", got.MaxHeaderFields, want.MaxHeaderFields},
		{"max-connections", got.MaxConnections, want.MaxConnections},
		{"max-client-connections", got.MaxClientConnections, want.MaxClientConnections},
		{"command-timeout", got.CommandTimeout, want.CommandTimeout},
		{"data-timeout", got.DataTimeout, want.DataTimeout},
		{"idle-timeout", got.IdleTimeout, want.IdleTimeout},
		{"write-timeout", got.WriteTimeout, want.WriteTimeout},
	} {
		if c.got != c.want {
			t.Errorf("--%s defaults to %v, the producer to %v", c.flag, c.got, c.want)
		}
	}
}
