// Command service is an example external service for mailscope's
// service handler (docs/handlers.md, "External services"), written only
// against the documented contract: it imports no mailscope package, just
// nats.go and its micro framework, so any language with a NATS client
// could do the same.
//
// It takes requests of schema mailscope.service.v1 on one subject and
// decides each mail by its subject line: a subject matching --quarantine
// is accepted as quarantined, one matching --accept is accepted
// (processed), any other is rejected with the reason. Accepting is its
// side effect: it prints "ticket ID: SUBJECT" on standard output, once
// per mail id however often a mail is asked again (the id is the
// idempotency key). With dry_run it decides the same and prints
// "dry run ID: would ..." instead: a service must decide but do nothing.
//
// Usage (the service role's seed; `mailscope dev` writes it):
//
//	go run ./examples/service --nkey /tmp/mailscope-dev/credentials/service.nk \
//	    --subject mail.service.tickets --accept '(?i)ticket|support'
//
// `nats micro ls` (as the operator) lists it as mailscope-example.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"regexp"
	"sync"
	"syscall"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// request is the part of a mailscope.service.v1 request this service
// reads; the contract says to ignore the rest.
type request struct {
	Schema  string `json:"schema"`
	ID      string `json:"id"`
	DryRun  bool   `json:"dry_run"`
	Summary *struct {
		Subject string `json:"subject"`
	} `json:"summary"`
}

// reply is a mailscope.service.reply.v1 reply.
type reply struct {
	Schema      string `json:"schema"`
	Decision    string `json:"decision"`
	Reason      string `json:"reason,omitempty"`
	Disposition string `json:"disposition,omitempty"`
}

func main() {
	if err := run(os.Args[1:], os.Stdout, make(chan os.Signal, 1)); err != nil {
		log.Fatal(err)
	}
}

// run serves until a signal arrives on stop (SIGINT and SIGTERM are
// sent there), writing its side effects to out.
func run(args []string, out io.Writer, stop chan os.Signal) error {
	fs := flag.NewFlagSet("service", flag.ContinueOnError)
	server := fs.String("server", "nats://127.0.0.1:4222", "NATS server URL")
	nkey := fs.String("nkey", "", "NKey seed file of the service role (required)")
	inbox := fs.String("inbox-prefix", "_INBOX_service", "inbox prefix of the service role")
	subject := fs.String("subject", "mail.service.tickets", "subject to take requests on (the worker's --service NAME=SUBJECT)")
	name := fs.String("name", "mailscope-example", "micro service name, as `nats micro ls` shows it")
	accept := fs.String("accept", ".", "accept mail whose subject line matches this regular expression")
	quarantine := fs.String("quarantine", "$^", "accept as quarantined mail whose subject line matches this regular expression (checked first)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *nkey == "" {
		return errors.New("--nkey is required")
	}
	acceptRE, err := regexp.Compile(*accept)
	if err != nil {
		return fmt.Errorf("--accept: %w", err)
	}
	quarantineRE, err := regexp.Compile(*quarantine)
	if err != nil {
		return fmt.Errorf("--quarantine: %w", err)
	}
	opt, err := nats.NkeyOptionFromSeed(*nkey)
	if err != nil {
		return err
	}
	nc, err := nats.Connect(*server, opt, nats.CustomInboxPrefix(*inbox), nats.Name(*name))
	if err != nil {
		return err
	}
	defer nc.Drain()

	d := &decider{accept: acceptRE, quarantine: quarantineRE, out: out, done: map[string]bool{}}
	svc, err := micro.AddService(nc, micro.Config{
		Name:        *name,
		Version:     "1.0.0",
		Description: "decides mail by its subject line (mailscope.service.v1)",
	})
	if err != nil {
		return err
	}
	defer svc.Stop()
	if err := svc.AddEndpoint("decide", micro.HandlerFunc(d.handle), micro.WithEndpointSubject(*subject),
		micro.WithEndpointMetadata(map[string]string{"schema": "mailscope.service.v1"})); err != nil {
		return err
	}
	if err := nc.Flush(); err != nil {
		return err
	}
	log.Printf("service %s listening on %s", *name, *subject)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
	return nil
}

// decider decides mail and performs the side effect of accepting it.
type decider struct {
	accept, quarantine *regexp.Regexp
	out                io.Writer
	mu                 sync.Mutex
	done               map[string]bool // mail ids accepted: the side effect happened
}

func (d *decider) handle(r micro.Request) {
	var req request
	if err := json.Unmarshal(r.Data(), &req); err != nil || req.ID == "" {
		// No retry can make this request readable: a 4xx rejects the mail.
		r.Error("400", "not a mailscope.service.v1 request", nil)
		return
	}
	if req.Schema != "mailscope.service.v1" {
		// A version this service does not know: 5xx, retried (and kept
		// as a dead letter) until a service that knows it answers.
		r.Error("500", "unsupported schema "+req.Schema, nil)
		return
	}
	subject := ""
	if req.Summary != nil {
		subject = req.Summary.Subject
	}
	rep := reply{Schema: "mailscope.service.reply.v1", Decision: "accept"}
	switch {
	case d.quarantine.MatchString(subject):
		rep.Disposition, rep.Reason = "quarantined", "subject matches the quarantine pattern"
	case d.accept.MatchString(subject):
		rep.Disposition, rep.Reason = "processed", "ticket opened"
	default:
		rep = reply{Schema: rep.Schema, Decision: "reject", Reason: fmt.Sprintf("subject %q does not match %s", subject, d.accept)}
	}
	if rep.Decision == "accept" {
		d.act(req, rep, subject)
	}
	if err := r.RespondJSON(rep); err != nil {
		log.Printf("mail %s: reply: %v", req.ID, err)
	}
}

// act performs the side effect of accepting, once per mail id, and
// never in a dry run.
func (d *decider) act(req request, rep reply, subject string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case req.DryRun:
		fmt.Fprintf(d.out, "dry run %s: would accept as %s: %s\n", req.ID, rep.Disposition, subject)
	case d.done[req.ID]:
		// Asked again (a lost reply): already done.
	default:
		d.done[req.ID] = true
		fmt.Fprintf(d.out, "ticket %s (%s): %s\n", req.ID, rep.Disposition, subject)
	}
}
