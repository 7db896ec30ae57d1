package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/auth"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/dev"
	"github.com/mailscope/mailscope/embedded"
	"github.com/mailscope/mailscope/loadtest"
	"github.com/mailscope/mailscope/producer"
	"github.com/mailscope/mailscope/provision"
	"github.com/mailscope/mailscope/testkit"
)

func runLoadtest(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	var c loadtest.Config
	defURL := os.Getenv("NATS_URL")
	if defURL == "" {
		defURL = nats.DefaultURL
	}
	fs.StringVar(&c.SMTPAddr, "smtp", "127.0.0.1:2525", `producer SMTP address ("" for none)`)
	fs.StringVar(&c.LMTPAddr, "lmtp", "127.0.0.1:2424", "producer LMTP address (used with --lmtp-clients)")
	fs.StringVar(&c.NATSURL, "nats", defURL, `NATS URL to read outcome events from ("" to measure the SMTP side only)`)
	creds := fs.String("nats-creds", "", "NATS credentials file")
	fs.StringVar(&c.OutcomePrefix, "outcome-prefix", contracts.DefaultNames().OutcomePrefix, "outcome subject prefix")
	fs.IntVar(&c.Clients, "clients", 4, "concurrent SMTP connections")
	fs.IntVar(&c.LMTPClients, "lmtp-clients", 0, "concurrent LMTP connections")
	fs.IntVar(&c.Count, "count", 1000, "mails to send in all (0 with --duration: no count limit)")
	fs.DurationVar(&c.Duration, "duration", 0, "stop sending after this long (0: only --count)")
	fs.IntVar(&c.Size, "size", 8<<10, "bytes per mail before the signature")
	signed := fs.Bool("signed", false, "DKIM-sign every mail with a fresh ed25519 key (with --dev its key is served to the worker; else see --key-bucket)")
	keyBucket := fs.String("key-bucket", "", "with --signed and without --dev: staging key bucket to put the key in, so that signatures verify")
	fs.IntVar(&c.DeadEvery, "dead-every", 0, "make every Nth mail no RFC 5322 mail, to drive the dead-letter path (its outcome must be dead); 0 for none")
	fs.DurationVar(&c.Drain, "drain", 30*time.Second, "wait this long after the last mail for outstanding outcomes")
	fs.DurationVar(&c.Timeout, "timeout", 30*time.Second, "bound on every dial and SMTP command")
	fs.BoolVar(&c.AllowRemote, "allow-remote", false, "allow SMTP/LMTP addresses that are not loopback")
	devMode := fs.Bool("dev", false, "start an in-process dev system (embedded nats-server with fsync always, producer, worker) in a temporary directory and drive it; --smtp, --lmtp and --nats are ignored")
	keep := fs.Bool("keep", false, "with --dev: keep the temporary data directory")
	producerOnly := fs.Bool("producer-only", false, "with --dev: start only the nats-server and the producer (no worker, no outcomes), with the --batch-* settings")
	atomicBatches := fs.Bool("atomic", false, "with --dev: let the temporary mail stream take atomic batches (AllowAtomicPublish), so that the producer group-commits")
	var batch producer.Batching
	fs.BoolVar(&batch.GroupCommit, "group-commit", false, "with --dev: the producer group-commits (implies --atomic)")
	fs.DurationVar(&batch.Window, "batch-window", 0, "with --dev --producer-only: group commit window")
	fs.IntVar(&batch.MinMsgs, "batch-min", 0, "with --dev --producer-only: smallest group stored as a batch (0: the default)")
	fs.IntVar(&batch.MaxMsgs, "batch-max", 0, "with --dev --producer-only: largest batch (0: the default)")
	fs.IntVar(&batch.Inflight, "batch-inflight", 0, "with --dev --producer-only: batches committing at once (0: the default)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: mailscope loadtest [--dev | --smtp ADDR --nats URL] [--clients N] [--count N | --duration D] [--size BYTES] [--signed]")
		fmt.Fprintln(fs.Output(), "Sends mail over SMTP/LMTP with concurrent persistent connections and follows each to its outcome event.")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	if c.LMTPClients == 0 && !*devMode {
		c.LMTPAddr = ""
	}
	if *creds != "" {
		c.NATSOptions = append(c.NATSOptions, nats.UserCredentials(*creds))
	}

	if batch.GroupCommit {
		*atomicBatches = true
	}
	if (*producerOnly || *atomicBatches) && !*devMode {
		return usageError{fmt.Errorf("--producer-only and --atomic need --dev")}
	}
	var batchFlags bool
	fs.Visit(func(f *flag.Flag) { batchFlags = batchFlags || strings.HasPrefix(f.Name, "batch-") })
	if batchFlags && !*producerOnly {
		return usageError{fmt.Errorf("the --batch-* flags need --dev --producer-only")}
	}
	var publishKey func(ctx context.Context, name, txt string) error
	var stats func() producer.PublishStats
	if *devMode {
		dir, err := os.MkdirTemp("", "mailscope-loadtest-")
		if err != nil {
			return err
		}
		if !*keep {
			defer os.RemoveAll(dir)
		}
		logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		var sys *devSystem
		if *producerOnly {
			sys, err = startProducerOnly(ctx, dir, batch, logger)
		} else {
			sys, err = startDevSystem(ctx, dir, batch, logger)
		}
		if err != nil {
			return err
		}
		defer sys.close()
		if *atomicBatches {
			if err := allowAtomicPublish(ctx, sys.js); err != nil {
				return err
			}
		}
		c.SMTPAddr, c.LMTPAddr, c.NATSURL = sys.smtp, sys.lmtp, sys.url
		if c.Clients == 0 {
			c.SMTPAddr = ""
		}
		if c.LMTPClients == 0 {
			c.LMTPAddr = ""
		}
		what := "producer and worker"
		if *producerOnly {
			what = "producer only, no outcomes"
			c.NATSURL = ""
		}
		fmt.Fprintf(out, "dev system (%s): nats %s (embedded, fsync always, data in %s), smtp %s, lmtp %s, atomic batches %v\n",
			what, sys.url, dir, sys.smtp, sys.lmtp, *atomicBatches)
		publishKey, stats = sys.publishKey, sys.stats
	} else if *signed && *keyBucket != "" {
		publishKey = func(ctx context.Context, name, txt string) error {
			opts := append([]nats.Option{nats.Name("mailscope-loadtest")}, c.NATSOptions...)
			nc, err := nats.Connect(c.NATSURL, opts...)
			if err != nil {
				return err
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				return err
			}
			kv, err := js.KeyValue(ctx, *keyBucket)
			if err != nil {
				return fmt.Errorf("key bucket %s: %w", *keyBucket, err)
			}
			_, err = auth.NewKVKeys(kv).Put(ctx, name, txt)
			return err
		}
	}
	if *signed {
		const domain, selector = "loadtest.example", "lt"
		key, err := testkit.GenerateKey("ed25519", 0)
		if err != nil {
			return err
		}
		txt, err := testkit.TXTRecord(key)
		if err != nil {
			return err
		}
		c.Signer = &loadtest.Signer{Domain: domain, Selector: selector, Key: key}
		if publishKey == nil {
			fmt.Fprintf(out, "the signing key is not published anywhere; signatures will not verify unless %s TXT %q is\n",
				testkit.DNSName(selector, domain), txt)
		} else if err := publishKey(ctx, testkit.DNSName(selector, domain), txt); err != nil {
			return fmt.Errorf("publish the signing key: %w", err)
		}
	}

	rep, err := loadtest.Run(ctx, c)
	if stats != nil {
		defer func() { fmt.Fprintf(out, "  producer     %+v\n", stats()) }()
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if werr := rep.Write(out); werr != nil {
		return werr
	}
	if err != nil {
		return err
	}
	return rep.Err()
}

// devSystem is what a --dev load test drives.
type devSystem struct {
	url, smtp, lmtp string
	js              jetstream.JetStream
	publishKey      func(ctx context.Context, name, txt string) error
	stats           func() producer.PublishStats // nil when unknown
	close           func()
}

// startDevSystem starts the whole dev system: server, producer, worker,
// and the built-in key source.
func startDevSystem(ctx context.Context, dir string, b producer.Batching, logger *slog.Logger) (*devSystem, error) {
	s, err := dev.Start(ctx, dev.Config{DataDir: dir, NATSPort: -1, SMTPAddr: "127.0.0.1:0", LMTPAddr: "127.0.0.1:0", Logger: logger,
		Producer: producer.Config{Batch: b}, Provision: provision.Config{AtomicPublish: b.GroupCommit}})
	if err != nil {
		return nil, err
	}
	return &devSystem{
		url: s.URL, smtp: s.SMTPAddr, lmtp: s.LMTPAddr, js: s.JS,
		publishKey: func(_ context.Context, name, txt string) error {
			s.Keys.SetTXT(name, 300, txt)
			return nil
		},
		close: s.Close,
	}, nil
}

// startProducerOnly starts an embedded nats-server, provisions it, and
// runs a producer with the given group commit settings: the producer's
// side alone, without a worker competing for the disk.
func startProducerOnly(ctx context.Context, dir string, b producer.Batching, logger *slog.Logger) (_ *devSystem, err error) {
	srv, err := embedded.Start(embedded.Config{Port: -1, StoreDir: dir})
	if err != nil {
		return nil, err
	}
	var closers []func()
	sys := &devSystem{url: srv.ClientURL(), close: func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
	}}
	closers = append(closers, srv.Close)
	defer func() {
		if err != nil {
			sys.close()
		}
	}()
	nc, err := nats.Connect(sys.url, nats.Name("mailscope-loadtest-producer"))
	if err != nil {
		return nil, err
	}
	closers = append(closers, nc.Close)
	if sys.js, err = jetstream.New(nc); err != nil {
		return nil, err
	}
	if err := provision.Run(ctx, sys.js, provision.Config{}); err != nil {
		return nil, err
	}
	b.Logger = logger
	p, err := producer.New(producer.Config{SMTPAddr: "127.0.0.1:0", LMTPAddr: "127.0.0.1:0", Batch: b, Logger: logger}, nc)
	if err != nil {
		return nil, err
	}
	if err := p.Listen(); err != nil {
		return nil, err
	}
	sys.smtp, sys.lmtp, sys.stats = p.Addr(false), p.Addr(true), p.PublishStats
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := p.Run(runCtx); err != nil {
			logger.Error("producer", slog.Any("err", err))
		}
	}()
	closers = append(closers, func() { cancel(); <-done })
	return sys, nil
}

// allowAtomicPublish sets AllowAtomicPublish on the mail stream of a
// temporary dev system.
func allowAtomicPublish(ctx context.Context, js jetstream.JetStream) error {
	name := contracts.DefaultNames().MailStream
	st, err := js.Stream(ctx, name)
	if err != nil {
		return err
	}
	cfg := st.CachedInfo().Config
	cfg.AllowAtomicPublish = true
	_, err = js.UpdateStream(ctx, cfg)
	return err
}
