package dev

import (
	"fmt"
	"io"
)

// PrintBanner tells where everything listens and what an operator would
// type next.
func (s *System) PrintBanner(w io.Writer) {
	n := s.Config.Worker.Names
	keys := "DNS at " + s.DNSServer
	if n.KeyBucket != "" {
		keys = fmt.Sprintf("KV bucket %q first, then DNS at %s", n.KeyBucket, s.DNSServer)
	}
	fmt.Fprintf(w, "mailscope dev is up\n"+
		"  nats       %s   (embedded nats-server, JetStream data in %s)\n"+
		"  smtp       %s\n"+
		"  lmtp       %s\n"+
		"  dkim keys  %s\n"+
		"  worker     env=%s, rules from KV bucket %q, status in %q\n\n",
		s.URL, s.Config.DataDir, s.SMTPAddr, s.LMTPAddr, keys, s.Config.Worker.Env, n.FlagsBucket, n.StatusBucket)
	fmt.Fprintln(w, "next steps (nats CLI: go install github.com/nats-io/natscli/nats@v0.5.0):")
	for _, l := range [][2]string{
		{fmt.Sprintf("nats -s %s sub '%s.>'", s.URL, n.OutcomePrefix), "watch outcomes"},
		{fmt.Sprintf("nats -s %s kv put %s mail.handler 'rcpt:^review@ 10 quarantine'", s.URL, n.FlagsBucket), "route by rule"},
		{fmt.Sprintf("nats -s %s kv history %s mail.handler", s.URL, n.FlagsBucket), "audit trail"},
		{fmt.Sprintf("nats -s %s kv ls %s", s.URL, n.StatusBucket), "workers and their rules"},
		{fmt.Sprintf("nats -s %s consumer info %s %s", s.URL, n.MailStream, n.Consumer), "queue depth"},
		{fmt.Sprintf("mailscope publish --nats %s --to you@example.org mail.eml", s.URL), "a mail file onto the stream"},
		{fmt.Sprintf("mailscope flags explain --nats %s mail.eml", s.URL), "which rule decides what, for one mail"},
	} {
		fmt.Fprintf(w, "  %-90s # %s\n", l[0], l[1])
	}
	fmt.Fprintln(w)
}
