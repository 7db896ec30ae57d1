package main

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/contracts"
)

// natsFlags are the connection and naming flags every NATS client role
// shares.
type natsFlags struct {
	url, creds, nkey, inbox string
	names                   contracts.Names
}

func addNATSFlags(fs *flag.FlagSet) *natsFlags {
	n := &natsFlags{}
	def := os.Getenv("NATS_URL")
	if def == "" {
		def = nats.DefaultURL
	}
	fs.StringVar(&n.url, "nats", def, "NATS server URL(s), comma-separated (default from NATS_URL)")
	fs.StringVar(&n.creds, "nats-creds", "", "NATS credentials file (JWT and seed), for servers with decentralized auth")
	fs.StringVar(&n.nkey, "nats-nkey", os.Getenv("NATS_NKEY"), "NKey seed file of this command's role (default from NATS_NKEY; deploy/k8s mounts it)")
	fs.StringVar(&n.inbox, "nats-inbox-prefix", "", "inbox prefix (default _INBOX_ROLE, the only inboxes the role's user may subscribe to)")
	addNameFlags(fs, &n.names)
	return n
}

func addNameFlags(fs *flag.FlagSet, names *contracts.Names) {
	d := contracts.DefaultNames()
	fs.StringVar(&names.MailStream, "stream", d.MailStream, "mail stream")
	fs.StringVar(&names.MailSubject, "subject", d.MailSubject, "mail subject")
	fs.StringVar(&names.ResumeSubject, "resume-subject", d.ResumeSubject, "subject on the mail stream of held mail put back by workers")
	fs.StringVar(&names.Consumer, "consumer", d.Consumer, "durable consumer of the workers")
	fs.StringVar(&names.OutcomeStream, "outcome-stream", d.OutcomeStream, "outcome stream")
	fs.StringVar(&names.OutcomePrefix, "outcome-prefix", d.OutcomePrefix, "outcome subject prefix")
	fs.StringVar(&names.DeadStream, "dead-stream", d.DeadStream, "dead-letter stream")
	fs.StringVar(&names.DeadSubject, "dead-subject", d.DeadSubject, "dead-letter subject")
	fs.StringVar(&names.FlagsBucket, "bucket", d.FlagsBucket, "flag-rule KV bucket")
	fs.StringVar(&names.StatusBucket, "status-bucket", d.StatusBucket, "worker status KV bucket")
	fs.StringVar(&names.KeyBucket, "key-bucket", "", "staging only: KV bucket of DKIM keys read before DNS (default none)")
	fs.StringVar(&names.ClaimBucket, "claim-bucket", d.ClaimBucket, "Object Store bucket of mail above the producer's claim threshold")
	fs.StringVar(&names.ServicePrefix, "service-prefix", d.ServicePrefix, "subject prefix of requests to external services (the service handler's; every --service subject is under it)")
	fs.StringVar(&names.CommandStream, "command-stream", d.CommandStream, "stream of the commands handler's command and reply events")
	fs.StringVar(&names.CommandPrefix, "command-prefix", d.CommandPrefix, "subject prefix of command events (PREFIX.NAME)")
	fs.StringVar(&names.ReplySubject, "reply-subject", d.ReplySubject, "subject of the commands handler's reply events")
}

// connect connects as role r: named "mailscope-ROLE", with the role's
// inbox prefix and the credentials given, reconnecting every 100ms plus
// up to 100ms of jitter (access.ReconnectOptions).
func (n *natsFlags) connect(r access.Role) (*nats.Conn, error) {
	inbox := n.inbox
	if inbox == "" {
		inbox = r.InboxPrefix()
	}
	// Reconnect every 100ms plus jitter, for ever, with no reconnect
	// buffer (access.ReconnectOptions says why).
	opts := append(access.ReconnectOptions(), nats.Name("mailscope-"+string(r)), nats.RetryOnFailedConnect(false),
		nats.CustomInboxPrefix(inbox))
	if n.creds != "" {
		opts = append(opts, nats.UserCredentials(n.creds))
	}
	if n.nkey != "" {
		opt, err := nats.NkeyOptionFromSeed(n.nkey)
		if err != nil {
			return nil, fmt.Errorf("--nats-nkey %s: %w", n.nkey, err)
		}
		opts = append(opts, opt)
	}
	nc, err := nats.Connect(n.url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s as %s: %w", n.url, r, err)
	}
	return nc, nil
}

// jetstream connects and returns the connection and its JetStream
// context; the caller closes the connection.
func (n *natsFlags) jetstream(r access.Role) (*nats.Conn, jetstream.JetStream, error) {
	nc, err := n.connect(r)
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
