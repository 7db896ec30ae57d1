package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/auth"
	"github.com/mailscope/mailscope/preview"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/workers"
)

// flagsPreview replays recent mail against proposed rules for one flag
// and prints what would change.
func flagsPreview(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("flags preview", flag.ContinueOnError)
	nf := addNATSFlags(fs)
	var c workers.Config
	dns := addEvalFlags(fs, &c)
	limit := fs.Int("limit", preview.DefaultLimit, "replay at most the last N mails of the archive")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	from := fs.String("from", "", "with MAIL files: envelope sender")
	to := fs.String("to", "", "with MAIL files: envelope recipients, comma-separated (default each mail's To addresses)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: mailscope flags preview [flags] FLAG RULES.txt [MAIL.eml ...]\n\n"+
			"Replays recent mail against RULES.txt as FLAG's proposed rules, beside the live rules, and\n"+
			"reports how many mails would change decision (held, rejected, or which handler, endpoint and\n"+
			"dry run), per proposed value of FLAG, with example mail ids. Evaluation only: nothing is\n"+
			"published, posted or consumed. The mail is the last --limit mails of the opt-in archive\n"+
			"stream (mailscope provision --archive-max-age), or the MAIL files given.")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() < 2 {
		fs.Usage()
		return usageError{errors.New("need FLAG and a RULES file")}
	}
	name := fs.Arg(0)
	if name == "" || name == "-" {
		return usageError{errors.New("need a FLAG")}
	}
	if err := checkFlagName(name); err != nil {
		return err
	}
	text, err := os.ReadFile(fs.Arg(1))
	if err != nil {
		return err
	}
	proposed, err := rules.Parse(name, 0, text)
	if err != nil {
		var pe *rules.ParseError
		if errors.As(err, &pe) {
			for _, l := range pe.Lines {
				fmt.Fprintf(os.Stderr, "%s: line %d: %s\n", fs.Arg(1), l.Line, l.Msg)
			}
		}
		return errInvalid
	}
	c.Names = nf.names
	if *dns != "" {
		c.Auth.DNSServers = splitList(*dns)
	}

	nc, js, err := nf.jetstream(access.Operator)
	if err != nil {
		return err
	}
	defer nc.Close()
	var mails []preview.Mail
	var skipped []preview.Skipped
	if files := fs.Args()[2:]; len(files) > 0 {
		var rcpts []string
		if *to != "" {
			rcpts = strings.Split(*to, ",")
		}
		if mails, err = preview.Files(files, *from, rcpts, func(raw []byte) []string { return headerAddresses(raw, "To") }); err != nil {
			return err
		}
	} else if mails, skipped, err = preview.Archive(ctx, js, c.Names, *limit); err != nil {
		return err
	}
	store, err := loadRules(ctx, js, c.Names.WithDefaults().FlagsBucket)
	if err != nil {
		return err
	}
	if name := c.Names.KeyBucket; name != "" {
		keys, err := js.KeyValue(ctx, name)
		if err != nil {
			return fmt.Errorf("key bucket %s: %w", name, err)
		}
		c.Auth.KeySource = auth.NewKVKeys(keys)
	}
	r, err := preview.Run(ctx, workers.NewPipeline(c), store.Snapshot(), name, proposed, mails)
	if err != nil {
		return err
	}
	r.Skipped = append(skipped, r.Skipped...)
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	printPreview(out, r)
	return nil
}

// loadRules loads the rules in force from the flag bucket, once (the
// store stops watching once loaded; its Problems stay readable).
func loadRules(ctx context.Context, js jetstream.JetStream, bucket string) (*rules.Store, error) {
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		return nil, fmt.Errorf("flag bucket %s: %w", bucket, err)
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	store := rules.NewStore(kv, nil)
	if err := store.Start(sctx); err != nil {
		return nil, err
	}
	return store, nil
}

func printPreview(out io.Writer, r *preview.Report) {
	fmt.Fprintf(out, "%s: %d of %d replayed mails would change decision (%d skipped)\n\n", r.Flag, r.Changed, r.Replayed, len(r.Skipped))
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "VALUE\tMAILS\tCHANGED\tEXAMPLES")
	for _, v := range r.Values {
		fmt.Fprintf(tw, "%q\t%d\t%d\t%s\n", v.Value, v.Mails, v.Changed, strings.Join(v.Examples, ", "))
	}
	if len(r.Transitions) > 0 {
		fmt.Fprintln(tw, "\nFROM\tTO\tMAILS\tEXAMPLES")
		for _, t := range r.Transitions {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", t.From, t.To, t.Mails, strings.Join(t.Examples, ", "))
		}
	}
	tw.Flush()
	if len(r.Skipped) > 0 {
		fmt.Fprintln(out, "\nskipped:")
		for _, s := range r.Skipped {
			fmt.Fprintf(out, "  %s: %s\n", s.ID, s.Reason)
		}
	}
}
