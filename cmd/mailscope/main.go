// Command mailscope is the one binary of the system; its subcommands are
// the roles (dev, producer, worker, provision) and the operators' and
// developers' tools (publish, testkit). Every flag can also be given as
// an environment variable: MAILSCOPE_ plus the flag name in upper case
// with dashes as underscores (--max-size is MAILSCOPE_MAX_SIZE).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"

	"github.com/mailscope/mailscope/telemetry"
)

type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout io.Writer) error
}

var commands = map[string]command{
	"dead":      {"list, show and retry dead letters (list, show, retry)", runDead},
	"dev":       {"run everything in one process on an embedded nats-server", runDev},
	"flags":     {"check rule text, list the flags and scopes, explain a mail (check, list, explain)", runFlags},
	"loadtest":  {"drive a producer with concurrent SMTP/LMTP clients and follow every mail to its outcome", runLoadtest},
	"held":      {"list and show held mail, with why and since when it is held (list, show)", runHeld},
	"keys":      {"make every role's NKey seed and print the Secrets deploy/k8s mounts", runKeys},
	"provision": {"create or update the streams, consumer and flag bucket", runProvision},
	"server":    {"run the embedded nats-server (JetStream, fsync always) alone", runServer},
	"producer":  {"receive mail over SMTP and LMTP and put it on the stream", runProducer},
	"worker":    {"verify, scope and process mail from the stream", runWorker},
	"publish":   {"put raw mail files (or - for stdin) on the stream", runPublish},
	"testkit":   {"make DKIM keys and signatures, publish a key to a staging bucket (keygen, sign, publish-key)", runTestkit},
	"version":   {"print the version", runVersion},
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: mailscope COMMAND [flags]\n\ncommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nRun mailscope COMMAND -h for the flags of a command.")
}

func main() {
	tuneGC()
	if len(os.Args) < 2 {
		usage(os.Stderr)
		os.Exit(2)
	}
	cmd, ok := commands[os.Args[1]]
	if !ok {
		if os.Args[1] == "-h" || os.Args[1] == "--help" || os.Args[1] == "help" {
			usage(os.Stdout)
			return
		}
		fmt.Fprintf(os.Stderr, "mailscope: unknown command %q\n\n", os.Args[1])
		usage(os.Stderr)
		os.Exit(2)
	}
	setLogger(os.Stderr, startLogFormat(os.Args[1]))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := cmd.run(ctx, os.Args[2:], os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintf(os.Stderr, "mailscope %s: %v\n", os.Args[1], err)
			os.Exit(2)
		}
		fmt.Fprintf(os.Stderr, "mailscope %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// usageError is a mistake on the command line (exit status 2).
type usageError struct{ error }

func logLevel() slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(os.Getenv("MAILSCOPE_LOG_LEVEL"))); err != nil {
		return slog.LevelInfo
	}
	return l
}

// startLogFormat is the log format set before a command parses its
// flags (those with --log-format may change it): MAILSCOPE_LOG_FORMAT when
// it names one, else text for dev and JSON for every other command.
func startLogFormat(cmd string) telemetry.LogFormat {
	if f, err := telemetry.ParseLogFormat(os.Getenv("MAILSCOPE_LOG_FORMAT")); err == nil {
		return f
	}
	if cmd == "dev" {
		return telemetry.LogText
	}
	return telemetry.LogJSON
}

// setLogger makes the default logger write format f to w, at the level
// of MAILSCOPE_LOG_LEVEL (default info).
func setLogger(w io.Writer, f telemetry.LogFormat) {
	slog.SetDefault(slog.New(telemetry.NewLogHandler(w, f, &slog.HandlerOptions{Level: logLevel()})))
}

// logFormatFlag is the value of --log-format.
type logFormatFlag struct{ f *telemetry.LogFormat }

func (l logFormatFlag) String() string {
	if l.f == nil { // the zero value, against which flag prints the default
		return ""
	}
	return string(*l.f)
}

func (l logFormatFlag) Set(s string) error {
	f, err := telemetry.ParseLogFormat(s)
	if err == nil {
		*l.f = f
	}
	return err
}

// addLogFlag adds --log-format (MAILSCOPE_LOG_FORMAT), default def, to
// fs; the returned function, called once fs is parsed, makes the default
// logger write that format to standard error.
func addLogFlag(fs *flag.FlagSet, def telemetry.LogFormat) func() {
	f := def
	fs.Var(logFormatFlag{&f}, "log-format", `log format on standard error: "json" (one JSON object per line, with trace_id and span_id in a traced mail's lines) or "text" (key=value)`)
	return func() { setLogger(os.Stderr, f) }
}

// parse parses args into fs, taking unset flags from the environment.
func parse(fs *flag.FlagSet, args []string) error {
	fs.SetOutput(os.Stderr)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || err != nil {
			return
		}
		env := "MAILSCOPE_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v, ok := os.LookupEnv(env); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = usageError{fmt.Errorf("%s=%q: %v", env, v, e)}
			}
		}
	})
	return err
}
