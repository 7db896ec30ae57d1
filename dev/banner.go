package dev

import (
	"fmt"
	"io"
)

// PrintBanner tells where everything listens and what an operator would
// type next.
func (s *System) PrintBanner(w io.Writer) {
	n := s.Config.Worker.Names
	fmt.Fprintf(w, `mailscope dev is up
  nats       %s   (embedded nats-server, JetStream data in %s)
  smtp       %s
  lmtp       %s
  dkim keys  DNS at %s
  worker     env=%s, rules from KV bucket %q

next steps (nats CLI: go install github.com/nats-io/natscli/nats@v0.5.0):
  nats -s %s sub '%s.>'                              # watch outcomes
  nats -s %s kv put %s mail.handler 'rcpt:^review@ 10 quarantine'
  nats -s %s kv history %s mail.handler             # audit trail
  nats -s %s stream info %s                               # queue depth
  mailscope publish --nats %s --to you@example.org mail.eml
`, s.URL, s.Config.DataDir, s.SMTPAddr, s.LMTPAddr, s.DNSServer, s.Config.Worker.Env, n.FlagsBucket,
		s.URL, n.OutcomePrefix, s.URL, n.FlagsBucket, s.URL, n.FlagsBucket, s.URL, n.MailStream, s.URL)
}
