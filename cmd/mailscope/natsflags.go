package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/contracts"
)

// natsFlags are the connection and naming flags every NATS client role
// shares.
type natsFlags struct {
	url   string
	creds string
	names contracts.Names
}

func addNATSFlags(fs *flag.FlagSet) *natsFlags {
	n := &natsFlags{}
	def := os.Getenv("NATS_URL")
	if def == "" {
		def = nats.DefaultURL
	}
	fs.StringVar(&n.url, "nats", def, "NATS server URL(s), comma-separated (default from NATS_URL)")
	fs.StringVar(&n.creds, "nats-creds", "", "NATS credentials file")
	addNameFlags(fs, &n.names)
	return n
}

func addNameFlags(fs *flag.FlagSet, names *contracts.Names) {
	d := contracts.DefaultNames()
	fs.StringVar(&names.MailStream, "stream", d.MailStream, "mail stream")
	fs.StringVar(&names.MailSubject, "subject", d.MailSubject, "mail subject")
	fs.StringVar(&names.Consumer, "consumer", d.Consumer, "durable consumer of the workers")
	fs.StringVar(&names.OutcomeStream, "outcome-stream", d.OutcomeStream, "outcome stream")
	fs.StringVar(&names.OutcomePrefix, "outcome-prefix", d.OutcomePrefix, "outcome subject prefix")
	fs.StringVar(&names.DeadStream, "dead-stream", d.DeadStream, "dead-letter stream")
	fs.StringVar(&names.DeadSubject, "dead-subject", d.DeadSubject, "dead-letter subject")
	fs.StringVar(&names.FlagsBucket, "bucket", d.FlagsBucket, "flag-rule KV bucket")
	fs.StringVar(&names.StatusBucket, "status-bucket", d.StatusBucket, "worker status KV bucket")
	fs.StringVar(&names.KeyBucket, "key-bucket", "", "staging only: KV bucket of DKIM keys read before DNS (default none)")
}

func (n *natsFlags) connect(name string) (*nats.Conn, error) {
	// No reconnect buffer: a publish while disconnected fails at once
	// instead of being sent later, so a mail the producer answered 451 for
	// is never stored after all (the MTA retries it).
	opts := []nats.Option{nats.Name(name), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(false), nats.ReconnectBufSize(-1)}
	if n.creds != "" {
		opts = append(opts, nats.UserCredentials(n.creds))
	}
	nc, err := nats.Connect(n.url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", n.url, err)
	}
	return nc, nil
}

// jetstream connects and returns the connection and its JetStream
// context; the caller closes the connection.
func (n *natsFlags) jetstream(name string) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := n.connect(name)
	if err != nil {
		return nil, nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return nc, js, nil
}

// splitList splits a comma-separated flag value, dropping blanks.
func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}
