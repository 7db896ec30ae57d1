package dev

import (
	"fmt"
	"io"

	"github.com/mailscope/mailscope/access"
)

// PrintBanner tells where everything listens and what an operator would
// type next.
func (s *System) PrintBanner(w io.Writer) {
	n := s.Config.Worker.Names
	keys := "DNS at " + s.DNSServer
	if n.KeyBucket != "" {
		keys = fmt.Sprintf("KV bucket %q first, then DNS at %s", n.KeyBucket, s.DNSServer)
	}
	monitor := s.NATS.MonitorURL()
	if monitor == "" {
		monitor = "off"
	} else {
		monitor += "/jsz?acc=" + access.Account + "&consumers=true   (what KEDA reads)"
	}
	fmt.Fprintf(w, "mailscope dev is up\n"+
		"  nats       %s   (embedded nats-server, JetStream data in %s)\n"+
		"  monitor    %s\n"+
		"  roles      NKey seeds in %s (no anonymous clients)\n"+
		"  smtp       %s\n"+
		"  lmtp       %s\n"+
		"  dkim keys  %s\n"+
		"  worker     env=%s, rules from KV bucket %q, status in %q\n\n",
		s.URL, s.Config.DataDir, monitor, s.Credentials.Dir(), s.SMTPAddr, s.LMTPAddr, keys, s.Config.Worker.Env, n.FlagsBucket, n.StatusBucket)
	fmt.Fprintln(w, "next steps (nats CLI: go install github.com/nats-io/natscli/nats@v0.5.0):")
	seed := s.Credentials.SeedFile
	for _, l := range [][2]string{
		{"nats context select " + NATSContextName, "act as the operator (the context mailscope dev wrote)"},
		{fmt.Sprintf("nats sub '%s.>'", n.OutcomePrefix), "watch outcomes"},
		{fmt.Sprintf("nats kv put %s mail.handler 'rcpt:^review@ 10 quarantine'", n.FlagsBucket), "route by rule"},
		{fmt.Sprintf("nats kv history %s mail.handler", n.FlagsBucket), "audit trail"},
		{fmt.Sprintf("nats kv ls %s", n.StatusBucket), "workers and their rules"},
		{fmt.Sprintf("nats consumer info %s %s", n.MailStream, n.Consumer), "queue depth"},
		{fmt.Sprintf("mailscope publish --nats %s --nats-nkey %s --to you@example.org mail.eml", s.URL, seed(access.Producer)), "a mail file onto the stream, as the producer"},
		{fmt.Sprintf("mailscope flags explain --nats %s --nats-nkey %s mail.eml", s.URL, seed(access.Operator)), "which rule decides what, for one mail"},
	} {
		fmt.Fprintf(w, "  %-90s # %s\n", l[0], l[1])
	}
	for _, svc := range s.Config.Worker.Service.Services {
		subject := svc.Subject
		if subject == "" {
			subject = n.ServiceSubject(svc.Name)
		}
		fmt.Fprintf(w, "  %-90s # %s\n", fmt.Sprintf("go run ./examples/service --server %s --nkey %s --subject %s", s.URL, seed(access.Service), subject),
			fmt.Sprintf("the example external service as %q (mail.handler service, mail.service %s)", svc.Name, svc.Name))
	}
	fmt.Fprintln(w)
}
