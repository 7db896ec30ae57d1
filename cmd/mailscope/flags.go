package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/auth"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/workers"
)

func runFlags(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return usageError{errors.New("usage: mailscope flags check|list|explain|preview [flags]")}
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(out, "usage: mailscope flags check|list|explain|preview [flags]\n\n"+
			"  check    validate rule text for a flag exactly as workers do\n"+
			"  list     print every flag with its type and default, and every scope kind\n"+
			"  explain  show how the live rules decide every flag for one mail\n"+
			"  preview  replay recent mail against proposed rules: what would change decision\n\n"+
			"Run mailscope flags COMMAND -h for its flags.")
		return nil
	case "check":
		return flagsCheck(args[1:], out)
	case "list":
		return flagsList(out)
	case "explain":
		return flagsExplain(ctx, args[1:], out)
	case "preview":
		return flagsPreview(ctx, args[1:], out)
	}
	return usageError{fmt.Errorf("unknown flags command %q (check, list, explain, preview)", args[0])}
}

// errInvalid reports rules that do not parse (exit status 1).
var errInvalid = errors.New("rules do not parse")

// errUnknownFlag reports a FLAG that is not a known flag (exit status 1).
var errUnknownFlag = errors.New("not a known flag")

// flagsCheck validates rule text exactly as workers do.
func flagsCheck(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("flags check", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: mailscope flags check [FLAG [FILE|-]]\n\n"+
			"Validates the rules for FLAG (read from FILE, or stdin) as workers do; exit status 1 with\n"+
			"line-numbered errors, or when FLAG is not a known flag (workers refuse such a key).\n"+
			"Without FLAG, scopes and priorities are checked, not values.\n"+
			"Safe editing:\n"+
			"  mailscope flags check mail.handler rules.txt && nats kv put mail_flags mail.handler \"$(cat rules.txt)\"")
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 2 {
		fs.Usage()
		return usageError{errors.New("need at most FLAG and one FILE")}
	}
	// Without FLAG (or with "-" as FLAG) scopes and priorities are
	// checked, values are taken as strings.
	name := fs.Arg(0)
	if err := checkFlagName(name); err != nil {
		return err
	}
	var text []byte
	var err error
	if fs.NArg() < 2 || fs.Arg(1) == "-" {
		text, err = io.ReadAll(os.Stdin)
	} else {
		text, err = os.ReadFile(fs.Arg(1))
	}
	if err != nil {
		return err
	}
	label := name
	if name == "" || name == "-" {
		name, label = "", "rules"
	}
	rs, err := rules.Parse(name, 0, text)
	if err != nil {
		var pe *rules.ParseError
		if errors.As(err, &pe) {
			for _, l := range pe.Lines {
				fmt.Fprintf(os.Stderr, "%s: line %d: %s\n", label, l.Line, l.Msg)
			}
		}
		return errInvalid
	}
	for _, r := range rs.Rules {
		if warn := neverMatches(name, r); warn != "" {
			fmt.Fprintf(os.Stderr, "%s: line %d: warning: %s\n", label, r.Line, warn)
		}
	}
	if name == "" {
		fmt.Fprintf(out, "%d rules ok (values not checked: give FLAG to check them against its type)\n", len(rs.Rules))
		return nil
	}
	f, _ := rules.Lookup(name)
	kind := f.Type.String()
	if f.Type == rules.TypeEnum {
		kind += " " + strings.Join(f.Enum, "|")
	}
	fmt.Fprintf(out, "%s: %d rules ok (%s)\n", name, len(rs.Rules), kind)
	return nil
}

// checkFlagName refuses a FLAG that is not a known flag, as workers
// refuse its key, naming the nearest known flag when it looks like a
// typo. "" and "-" (no flag) pass.
func checkFlagName(name string) error {
	if name == "" || name == "-" {
		return nil
	}
	if _, ok := rules.Lookup(name); ok {
		return nil
	}
	hint := ""
	if near, ok := rules.Nearest(name); ok {
		hint = fmt.Sprintf(" (did you mean %s?)", near)
	}
	return fmt.Errorf("%w: %s%s; workers refuse a key of that name (mailscope flags list shows the known flags)", errUnknownFlag, name, hint)
}

// neverMatches explains why rule r can never match in the rules for
// flag, or returns "": dkim: and trust: facts do not exist yet when
// mail.dkim.verify is decided, nor trust: when mail.auth.dkim_strong is.
func neverMatches(flag string, r rules.Rule) string {
	switch {
	case flag == rules.FlagDKIMVerify && (r.UsesDKIM() || r.UsesTrust()):
		return fmt.Sprintf("scope %q never matches in %s: it is decided before verification", r.ScopeText, flag)
	case flag == rules.FlagDKIMStrong && r.UsesTrust():
		return fmt.Sprintf("scope %q never matches in %s: it decides the trust level", r.ScopeText, flag)
	}
	return ""
}

// flagsList prints the registry and the scope kinds.
func flagsList(out io.Writer) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FLAG\tTYPE\tDEFAULT\tDESCRIPTION")
	for _, f := range rules.Known() {
		typ := f.Type.String()
		if f.Type == rules.TypeEnum {
			typ = strings.Join(f.Enum, "|")
		}
		def := f.Default
		if def == "" {
			def = `""`
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Name, typ, def, f.Description)
	}
	fmt.Fprintln(tw, "\nSCOPE\tMATCHES WHEN")
	for _, k := range rules.ScopeKinds() {
		fmt.Fprintf(tw, "%s\t%s\n", k.Syntax, k.Matches)
	}
	fmt.Fprintln(tw, "A&B\tboth terms match (any number of terms)")
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(out, "\nBooleans: true/false, on/off, yes/no, 1/0 (any case); any other word is an error.\n"+
		"Rule lines: SCOPE PRIORITY VALUE; highest priority first; first match wins; else the default.")
	return err
}

// addEvalFlags adds the flags of the commands that evaluate mail as a
// worker would (explain, preview) to fs, into c; it returns the
// --dns-server value.
func addEvalFlags(fs *flag.FlagSet, c *workers.Config) *string {
	dns := fs.String("dns-server", "", "DNS servers (host:port, comma-separated, tried in order) for DKIM key lookups (default the system resolver)")
	fs.BoolVar(&c.Auth.StrictAlignment, "strict-alignment", false, "as the worker's --strict-alignment")
	fs.StringVar(&c.Env, "env", "", "environment to evaluate env: rules for")
	fs.StringVar(&c.Release, "release", "", "version to evaluate release: rules for (default this build's)")
	return dns
}

// flagsExplain prints a mail's facts and every flag's value for it.
func flagsExplain(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("flags explain", flag.ContinueOnError)
	nf := addNATSFlags(fs)
	var c workers.Config
	dns := addEvalFlags(fs, &c)
	from := fs.String("from", "", "envelope sender")
	to := fs.String("to", "", "envelope recipients, comma-separated (default the To addresses of the mail)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: mailscope flags explain [flags] MAIL.eml\n\n"+
			"Shows the mail's scope facts and, for every flag, its value and the rule (key revision and\n"+
			"line) that decided it, against the live rules. No side effect.")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return usageError{errors.New("need one MAIL file")}
	}
	raw, err := os.ReadFile(fs.Arg(0))
	if err != nil {
		return err
	}
	c.Names = nf.names
	if *dns != "" {
		c.Auth.DNSServers = splitList(*dns)
	}
	env := contracts.Envelope{ID: "explain", MailFrom: *from, ReceivedAt: time.Now(), Protocol: "publish"}
	if *to != "" {
		env.RcptTo = strings.Split(*to, ",")
	} else {
		env.RcptTo = headerAddresses(raw, "To")
	}

	nc, js, err := nf.jetstream(access.Operator)
	if err != nil {
		return err
	}
	defer nc.Close()
	store, err := loadRules(ctx, js, c.Names.FlagsBucket)
	if err != nil {
		return err
	}
	snap := store.Snapshot()

	if name := c.Names.KeyBucket; name != "" {
		keys, err := js.KeyValue(ctx, name)
		if err != nil {
			return fmt.Errorf("key bucket %s: %w", name, err)
		}
		c.Auth.KeySource = auth.NewKVKeys(keys)
	}
	e, err := workers.NewPipeline(c).Explain(ctx, snap, env, raw)
	if err != nil {
		return err
	}
	printExplanation(out, e)
	if probs := store.Problems(); len(probs) > 0 {
		fmt.Fprintln(out, "\nproblems (refused keys: a value that does not parse keeps the key's last good rules; a key that is not a known flag is never in force):")
		for _, p := range probs {
			fmt.Fprintf(out, "  %v\n", &p)
		}
	}
	return nil
}

func headerAddresses(raw []byte, key string) []string {
	m, err := workers.ParseMail(contracts.Envelope{}, raw)
	if err != nil {
		return nil
	}
	list, err := m.Header.AddressList(key)
	if err != nil {
		return nil
	}
	var out []string
	for _, a := range list {
		out = append(out, a.Address)
	}
	return out
}

func printExplanation(out io.Writer, e *workers.Explanation) {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "facts")
	fmt.Fprintf(tw, "  from\t%s\n", e.From)
	fmt.Fprintf(tw, "  rcpt\t%s\n", strings.Join(e.Rcpts, ", "))
	if e.Auth.Skipped != "" {
		fmt.Fprintf(tw, "  dkim\t%s\n", e.Auth.Skipped)
	}
	for _, d := range e.Auth.DKIM {
		line := d.Result
		if d.Domain != "" {
			line += fmt.Sprintf(" d=%s s=%s a=%s", d.Domain, d.Selector, d.Algorithm)
		}
		if d.Reason != "" && d.Result != contracts.ResultPass {
			line += " (" + d.Reason + ")"
		}
		fmt.Fprintf(tw, "  dkim\t%s\n", line)
	}
	fmt.Fprintf(tw, "  trust\t%s\n", e.Auth.Trust)
	fmt.Fprintf(tw, "  env\t%q\n", e.Env)
	fmt.Fprintf(tw, "  release\t%q\n", e.Release)
	fmt.Fprintf(tw, "  headers\t%d distinct fields, matched decoded by mail_header:\n", len(e.Headers))
	fmt.Fprintln(tw, "\nflag\tvalue\tdecided by")
	for _, f := range e.Flags {
		by := "default"
		if f.Rule != nil {
			by = fmt.Sprintf("rev %d line %d: %s %d", f.Rule.Revision, f.Rule.Line, f.Rule.Scope, f.Rule.Priority)
		}
		fmt.Fprintf(tw, "%s\t%q\t%s\n", f.Flag, f.Value, by)
	}
	tw.Flush()
}
