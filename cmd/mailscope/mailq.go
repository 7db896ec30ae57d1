package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/mailq"
)

const deadUsage = "usage: mailscope dead list|show|retry [flags]\n\n" +
	"  list   the dead letters, oldest first: sequence, age, id, class, attempts, envelope, reason\n" +
	"  show   one dead letter (by sequence): its headers, then the raw mail\n" +
	"  retry  put dead letters back on the mail subject with their original envelope and a new id\n" +
	"         (ID-retry-SEQ); each dead letter is deleted only once its new copy is stored\n\n" +
	"All connect as the operator. Run mailscope dead COMMAND -h for its flags."

// runDead is `mailscope dead`: the dead-letter tooling.
func runDead(ctx context.Context, args []string, out io.Writer) error {
	return subcommand(ctx, "dead", deadUsage, args, out, map[string]func(context.Context, []string, io.Writer) error{
		"list": func(ctx context.Context, a []string, w io.Writer) error {
			return queueList(ctx, "dead list", a, w, false)
		},
		"show": func(ctx context.Context, a []string, w io.Writer) error {
			return queueShow(ctx, "dead show", a, w, false)
		},
		"retry": deadRetry,
	})
}

const heldUsage = "usage: mailscope held list|show [flags]\n\n" +
	"  list  the held mail, oldest first: sequence, age, id, reason (pause, dns), held for, envelope\n" +
	"  show  one held mail (by sequence): its headers, then the raw mail\n\n" +
	"Held mail resumes by itself when its rules change (pause) or DNS answers, or after the workers'\n" +
	"--dns-hold-max (dns). Both connect as the operator."

// runHeld is `mailscope held`: what waits in the held stream, and why.
func runHeld(ctx context.Context, args []string, out io.Writer) error {
	return subcommand(ctx, "held", heldUsage, args, out, map[string]func(context.Context, []string, io.Writer) error{
		"list": func(ctx context.Context, a []string, w io.Writer) error {
			return queueList(ctx, "held list", a, w, true)
		},
		"show": func(ctx context.Context, a []string, w io.Writer) error {
			return queueShow(ctx, "held show", a, w, true)
		},
	})
}

// subcommand runs the command of cmds args[0] names, or prints usage.
func subcommand(ctx context.Context, name, usage string, args []string, out io.Writer, cmds map[string]func(context.Context, []string, io.Writer) error) error {
	if len(args) == 0 {
		return usageError{errors.New(usage)}
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(out, usage)
		return nil
	}
	run, found := cmds[args[0]]
	if !found {
		names := make([]string, 0, len(cmds))
		for n := range cmds {
			names = append(names, n)
		}
		sort.Strings(names)
		return usageError{fmt.Errorf("unknown %s command %q (%s)", name, args[0], strings.Join(names, ", "))}
	}
	return run(ctx, args[1:], out)
}

func addFilterFlags(fs *flag.FlagSet, f *mailq.Filter) {
	fs.StringVar(&f.Reason, "reason", "", "only entries whose reason contains this text (case-insensitive), e.g. dns, \"bad envelope\"")
	fs.StringVar(&f.Class, "class", "", "only dead letters of this failure class (malformed, transient)")
	fs.IntVar(&f.Limit, "limit", 0, "at most this many entries, oldest first (0: all)")
}

func queueList(ctx context.Context, name string, args []string, out io.Writer, held bool) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	nf := addNATSFlags(fs)
	if held {
		heldFlag(fs, &nf.names)
	}
	var f mailq.Filter
	addFilterFlags(fs, &f)
	asJSON := fs.Bool("json", false, "one JSON object per line instead of a table")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	nc, js, err := nf.jetstream(access.Operator)
	if err != nil {
		return err
	}
	defer nc.Close()
	entries, err := mailq.List(ctx, js, queueStream(nf.names, held), f)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(out)
		enc.SetEscapeHTML(false)
		for _, e := range entries {
			if err := enc.Encode(e); err != nil {
				return err
			}
		}
		return nil
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SEQ\tAGE\tID\tREASON\tCLASS\tATTEMPTS\tHELD FOR\tFROM\tTO\tSIZE")
	now := time.Now()
	for _, e := range entries {
		heldFor := "-"
		if !e.HeldSince.IsZero() {
			heldFor = now.Sub(e.HeldSince).Round(time.Second).String()
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%d\t%s\t%s\t%v\t%d\n", e.Seq, now.Sub(e.Stored).Round(time.Second), e.ID,
			truncate(e.Reason, 60), dash(e.Class), e.Attempts, heldFor, dash(e.Envelope.MailFrom), e.Envelope.RcptTo, e.Size)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "%d entries\n", len(entries))
	return nil
}

func queueShow(ctx context.Context, name string, args []string, out io.Writer, held bool) error {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	nf := addNATSFlags(fs)
	if held {
		heldFlag(fs, &nf.names)
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usageError{errors.New("usage: mailscope " + name + " [flags] SEQ")}
	}
	seq, err := strconv.ParseUint(fs.Arg(0), 10, 64)
	if err != nil {
		return usageError{fmt.Errorf("sequence %q: %v", fs.Arg(0), err)}
	}
	nc, js, err := nf.jetstream(access.Operator)
	if err != nil {
		return err
	}
	defer nc.Close()
	_, m, err := mailq.Show(ctx, js, queueStream(nf.names, held), seq)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "sequence %d, stored %s\n", m.Sequence, m.Time.UTC().Format(time.RFC3339))
	for k, vs := range m.Header {
		for _, v := range vs {
			fmt.Fprintf(out, "%s: %s\n", k, v)
		}
	}
	fmt.Fprintln(out)
	_, err = out.Write(m.Data)
	return err
}

func deadRetry(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("dead retry", flag.ContinueOnError)
	nf := addNATSFlags(fs)
	var f mailq.Filter
	addFilterFlags(fs, &f)
	all := fs.Bool("all", false, "retry every dead letter the filters select (without --reason/--class: every one)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: mailscope dead retry [flags] SEQ... | --all [--reason R] [--class C]")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	filtered := f.Reason != "" || f.Class != "" || f.Limit > 0
	switch {
	case fs.NArg() > 0 && (*all || filtered):
		return usageError{errors.New("give sequences or --all with filters, not both")}
	case fs.NArg() == 0 && !*all && !filtered:
		fs.Usage()
		return usageError{errors.New("nothing to retry: give SEQ... or --all")}
	}
	var seqs []uint64
	for _, a := range fs.Args() {
		s, err := strconv.ParseUint(a, 10, 64)
		if err != nil {
			return usageError{fmt.Errorf("sequence %q: %v", a, err)}
		}
		seqs = append(seqs, s)
	}
	nc, js, err := nf.jetstream(access.Operator)
	if err != nil {
		return err
	}
	defer nc.Close()
	report := func(r mailq.Retried) { fmt.Fprintf(out, "retried dead letter %d: %s as %s\n", r.Seq, r.OldID, r.NewID) }
	if len(seqs) == 0 {
		done, err := mailq.RetryAll(ctx, js, nf.names, f)
		for _, r := range done {
			report(r)
		}
		fmt.Fprintf(out, "%d retried\n", len(done))
		return err
	}
	for _, s := range seqs {
		r, err := mailq.Retry(ctx, js, nf.names, s)
		if err != nil {
			return err
		}
		report(r)
	}
	return nil
}

// queueStream is the held stream or the dead-letter stream of n.
func queueStream(n contracts.Names, held bool) string {
	n = n.WithDefaults()
	if held {
		return n.HeldStream
	}
	return n.DeadStream
}

// heldFlag adds the held stream's name, which the NATS flags leave out.
func heldFlag(fs *flag.FlagSet, n *contracts.Names) {
	fs.StringVar(&n.HeldStream, "held-stream", contracts.DefaultNames().HeldStream, "held-mail stream")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
