package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/dev"
	"github.com/mailscope/mailscope/telemetry"
)

func runDev(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	var c dev.Config
	fs.StringVar(&c.DataDir, "data-dir", filepath.Join(os.TempDir(), "mailscope-dev"), "JetStream data directory of the embedded nats-server (created if missing)")
	fs.StringVar(&c.NATSHost, "nats-host", "127.0.0.1", "embedded nats-server client host")
	fs.IntVar(&c.NATSPort, "nats-port", 4222, "embedded nats-server client port (-1: any free port)")
	fs.IntVar(&c.MonitorPort, "nats-monitor-port", 8222, "embedded nats-server monitoring port on --nats-host (/jsz, what KEDA reads); 0: off, -1: any free port")
	fs.StringVar(&c.CredentialsDir, "credentials-dir", "", "NKey seeds of every role, made on the first start and kept (default DATA-DIR/credentials)")
	natsContext := fs.Bool("nats-context", true, "write the operator's nats CLI context "+dev.NATSContextName+" (under $XDG_CONFIG_HOME or ~/.config/nats/context)")
	fs.StringVar(&c.SMTPAddr, "smtp", "127.0.0.1:2525", "SMTP listen address")
	fs.StringVar(&c.LMTPAddr, "lmtp", "127.0.0.1:2424", "LMTP listen address")
	fs.StringVar(&c.DNSServer, "dns-server", "", "DNS server (host:port) for DKIM keys instead of the built-in key source")
	fs.StringVar(&c.Worker.Env, "env", "dev", "environment matched by env: rules")
	fs.StringVar(&c.Provision.Names.KeyBucket, "key-bucket", "mail_dkim_keys", `KV bucket of DKIM keys read before DNS (mailscope testkit publish-key); "" for none`)
	fs.DurationVar(&c.Provision.ArchiveMaxAge, "archive-max-age", 0, "keep an archive of recent mail (raw) for mailscope flags preview, this long; 0 with --archive-max-bytes 0: no archive")
	fs.Int64Var(&c.Provision.ArchiveMaxBytes, "archive-max-bytes", 0, "size cap of the archive of recent mail (default 1 GiB once --archive-max-age is set)")
	addServiceFlags(fs, &c.Worker.Service)
	demo := fs.Bool("demo", false, "sign and send sample mails and print each outcome")
	exit := fs.Bool("exit-after-demo", false, "with --demo: exit once every demo mail has its outcome (status 1 if any is unexpected)")
	timeout := fs.Duration("demo-timeout", time.Minute, "with --demo: how long to wait for the outcomes")
	web := addHTTPFlag(fs)
	setLog := addLogFlag(fs, telemetry.LogText)
	if err := parse(fs, args); err != nil {
		return err
	}
	setLog()
	keyBucketSet := false
	fs.Visit(func(f *flag.Flag) { keyBucketSet = keyBucketSet || f.Name == "key-bucket" })
	if c.DNSServer != "" && !keyBucketSet {
		// --dns-server replaces the built-in key sources, the bucket too.
		c.Provision.Names.KeyBucket = ""
	}
	if *exit && !*demo {
		return usageError{fmt.Errorf("--exit-after-demo needs --demo")}
	}
	flush, err := startTracing(ctx, "dev")
	if err != nil {
		return err
	}
	defer flush()
	s, err := dev.Start(ctx, c)
	if err != nil {
		return err
	}
	defer s.Close()
	if *natsContext {
		root, err := access.NATSConfigRoot()
		if err == nil {
			_, err = s.WriteNATSContext(root)
		}
		if err != nil {
			return err
		}
	}
	stop, err := startTelemetry(web, "dev", s.Worker.Ready)
	if err != nil {
		return err
	}
	defer stop()
	s.PrintBanner(out)
	if *demo {
		if err := s.Demo(ctx, out, *timeout); err != nil {
			return err
		}
		if *exit {
			return nil
		}
	}
	fmt.Fprintln(out, "running; Ctrl-C stops")
	select {
	case <-ctx.Done():
		return nil
	case err := <-s.Err():
		return err
	}
}
