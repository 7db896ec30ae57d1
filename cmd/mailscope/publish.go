package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/producer"
)

func runPublish(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("publish", flag.ContinueOnError)
	nf := addNATSFlags(fs)
	from := fs.String("from", "", "envelope sender (empty: the null sender <>)")
	to := fs.String("to", "", "envelope recipients, comma-separated (required)")
	newID := fs.Bool("new-id", false, "store each FILE under a new random mail id (default: its content id, so the same FILE to the same envelope inside the mail stream's duplicate window is stored once; --new-id makes a deliberate second copy)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: mailscope publish --to RCPT[,RCPT] [flags] FILE... (- reads stdin)")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if *to == "" || fs.NArg() == 0 {
		fs.Usage()
		return usageError{fmt.Errorf("need --to and at least one FILE")}
	}
	rcpts := strings.Split(*to, ",")
	for i, a := range rcpts {
		rcpts[i] = strings.TrimSpace(a)
	}
	// Only the sender may be empty (the null sender <>); an empty
	// recipient (--to "a@example.com,") is an error like any bad address.
	addrs := rcpts
	if *from != "" {
		addrs = append(slices.Clip(rcpts), *from)
	}
	for _, a := range addrs {
		if err := contracts.CheckAddress(a); err != nil {
			return usageError{fmt.Errorf("address %q: %v", a, err)}
		}
	}
	nc, js, err := nf.jetstream(access.Producer)
	if err != nil {
		return err
	}
	defer nc.Close()
	pub := producer.NewPublisher(js, nf.names.MailSubject, 0)
	for _, name := range fs.Args() {
		var raw []byte
		if name == "-" {
			raw, err = io.ReadAll(os.Stdin)
		} else {
			raw, err = os.ReadFile(name)
		}
		if err != nil {
			return err
		}
		env := contracts.Envelope{MailFrom: *from, RcptTo: rcpts, Protocol: "publish"}
		if *newID {
			env.ID = producer.NewID()
		}
		ack, err := pub.Publish(ctx, &env, raw)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		if ack.Duplicate {
			fmt.Fprintf(out, "%s: already stored as %s (stream %s seq %d): the same mail to the same envelope is stored once (--new-id stores another copy)\n", name, env.ID, ack.Stream, ack.Sequence)
			continue
		}
		fmt.Fprintf(out, "%s: stored as %s (stream %s seq %d)\n", name, env.ID, ack.Stream, ack.Sequence)
	}
	return nil
}
