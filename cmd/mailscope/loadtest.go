package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/auth"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/dev"
	"github.com/mailscope/mailscope/embedded"
	"github.com/mailscope/mailscope/keyserver"
	"github.com/mailscope/mailscope/loadtest"
	"github.com/mailscope/mailscope/producer"
	"github.com/mailscope/mailscope/testkit"
)

// loadtestFlags are the command's flags beyond loadtest.Config's.
type loadtestFlags struct {
	procs, devMode, keep, producerOnly          bool
	binary, dataDir, jsonPath, keyBucket, creds string
	workerArgs, producerArgs                    string
	corpus, domains, rsaBits                    int
	seed                                        uint64
	signed, closed, open, ceilings              bool
	rate                                        float64
	openClients                                 int
	ceilingTime                                 time.Duration
	batch                                       producer.Batching
	// exportTraces starts an OTLP sink; childEnv points the children's
	// trace export at it.
	exportTraces bool
	childEnv     []string
}

func runLoadtest(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("loadtest", flag.ContinueOnError)
	var c loadtest.Config
	var f loadtestFlags
	defURL := os.Getenv("NATS_URL")
	if defURL == "" {
		defURL = nats.DefaultURL
	}
	// Where the system is.
	fs.BoolVar(&f.procs, "procs", false, "start the system as separate processes of this binary (server, producer, worker) and measure each one's CPU; the default unless --dev, --smtp or --nats is given")
	fs.BoolVar(&f.devMode, "dev", false, "start the system inside this process (embedded nats-server with fsync always, producer, worker): only one process's CPU is known")
	fs.StringVar(&c.SMTPAddr, "smtp", "127.0.0.1:2525", `a running producer's SMTP address ("" for none); giving it (or --nats) drives a running system`)
	fs.StringVar(&c.LMTPAddr, "lmtp", "127.0.0.1:2424", "a running producer's LMTP address (used with --lmtp-clients)")
	fs.StringVar(&c.NATSURL, "nats", defURL, `a running system's NATS URL to read outcome events from ("" to measure the SMTP side only)`)
	fs.StringVar(&f.creds, "nats-creds", "", "NATS credentials file (running system)")
	fs.StringVar(&c.OutcomePrefix, "outcome-prefix", contracts.DefaultNames().OutcomePrefix, "outcome subject prefix")
	fs.StringVar(&f.keyBucket, "key-bucket", "", "running system: staging key bucket to put the DKIM keys in, so that signatures verify")
	fs.StringVar(&f.binary, "binary", "", "with --procs: the mailscope binary to start (default this one)")
	fs.StringVar(&f.dataDir, "data-dir", "", "with --procs or --dev: the server's data directory (default a temporary one, removed at the end unless --keep)")
	fs.BoolVar(&f.keep, "keep", false, "with --procs or --dev: keep the temporary data directory")
	fs.StringVar(&f.workerArgs, "worker-args", "", `with --procs: more flags for the worker, space-separated (e.g. "--concurrency 16")`)
	fs.BoolVar(&f.exportTraces, "export-traces", false, "with --procs: the producer and worker export every span (always sampled) by OTLP/HTTP to a sink in this process that counts them, to measure what tracing costs; every span is sampled unless OTEL_TRACES_SAMPLER is set (default off: spans are made for their ids, not exported)")
	fs.StringVar(&f.producerArgs, "producer-args", "", "with --procs: more flags for the producer, space-separated")
	fs.BoolVar(&f.producerOnly, "producer-only", false, "with --procs or --dev: start no worker (no outcomes): the producer's side alone")
	fs.Var(groupCommitFlag{&f.batch}, "group-commit", "with --procs or --dev: the producer group-commits, as by default in production (--group-commit=false: every mail stored on its own)")
	fs.DurationVar(&f.batch.Window, "batch-window", 0, "with --dev --producer-only: group commit window")
	fs.IntVar(&f.batch.MinMsgs, "batch-min", 0, "with --dev --producer-only: smallest group stored as a batch (0: the default)")
	fs.IntVar(&f.batch.MaxMsgs, "batch-max", 0, "with --dev --producer-only: largest batch (0: the default)")
	fs.IntVar(&f.batch.Inflight, "batch-inflight", 0, "with --dev --producer-only: batches committing at once (0: the default)")
	// What is sent.
	fs.IntVar(&f.corpus, "corpus", 2000, "mails in the corpus (sizes log-normal around 8 KiB; 79% RSA-signed, 9% ed25519, 9% unsigned, 2% tampered, 1% signed twice; 21% multipart)")
	fs.Uint64Var(&f.seed, "seed", 1, "corpus seed: the same seed makes the same mails (the keys are fresh)")
	fs.IntVar(&f.domains, "domains", 20, "signing domains of the corpus, used Zipf-like")
	fs.IntVar(&f.rsaBits, "rsa-bits", 2048, "RSA key size of the corpus (at least 1024)")
	fs.IntVar(&c.Size, "size", 0, "send synthetic mails of this many bytes instead of the corpus (no ceilings)")
	fs.BoolVar(&f.signed, "signed", false, "synthetic mails (--size, default 8 KiB): DKIM-sign each with one fresh ed25519 key")
	fs.IntVar(&c.DeadEvery, "dead-every", 0, "make every Nth mail no RFC 5322 mail, to drive the dead-letter path (its outcome must be dead); 0 for none")
	// How hard.
	fs.IntVar(&c.Clients, "clients", 128, "closed loop: concurrent SMTP connections, each sending mail after mail")
	fs.IntVar(&c.LMTPClients, "lmtp-clients", 0, "closed loop: concurrent LMTP connections")
	fs.IntVar(&c.Count, "count", 0, "mails per phase (default the corpus's size: each corpus mail once; synthetic mails: 1000)")
	fs.DurationVar(&c.Duration, "duration", 0, "stop each phase's sending after this long (0: only --count)")
	fs.BoolVar(&f.closed, "closed", true, "run the closed loop")
	fs.BoolVar(&f.open, "open", true, "run the open loop")
	fs.Float64Var(&f.rate, "rate", 0, "open loop: mails/s, sent at fixed times whatever the replies (default half the closed loop's end-to-end mails/s)")
	fs.IntVar(&f.openClients, "open-clients", 0, "open loop: connections (default twice the rate times the closed loop's p99 transaction time, at least --clients)")
	fs.BoolVar(&f.ceilings, "ceilings", true, "measure the ceilings first (bare DKIM verification, JetStream batch publish and consume)")
	fs.DurationVar(&f.ceilingTime, "ceiling-time", time.Second, "each ceiling goes through the corpus again until it has run this long (0: once)")
	fs.DurationVar(&c.Drain, "drain", 30*time.Second, "wait this long after the last mail for outstanding outcomes")
	fs.DurationVar(&c.Timeout, "timeout", 30*time.Second, "bound on every dial and SMTP command")
	fs.BoolVar(&c.AllowRemote, "allow-remote", false, "allow SMTP/LMTP addresses that are not loopback")
	fs.StringVar(&f.jsonPath, "json", "", "also write the report as JSON to this file")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: mailscope loadtest [--procs | --dev | --smtp ADDR --nats URL] [--corpus N] [--clients N] [--rate R] [--json FILE]")
		fmt.Fprintln(fs.Output(), "Measures the system and its ceilings in one run: bare DKIM verification and JetStream on the corpus,")
		fmt.Fprintln(fs.Output(), "then the system over SMTP/LMTP in a closed loop and an open loop, every mail followed to its outcome,")
		fmt.Fprintln(fs.Output(), "with each process's CPU per mail and ratios to the ceilings. Exit status 1 when an outcome is lost,")
		fmt.Fprintln(fs.Output(), "duplicated or not what the corpus says, or a mail is refused. See loadtest/README.md.")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	external := set["smtp"] || set["nats"]
	mode := "procs"
	switch {
	case f.devMode && f.procs, f.devMode && external, f.procs && external:
		return usageError{errors.New("choose one of --procs, --dev and a running system (--smtp/--nats)")}
	case f.devMode:
		mode = "dev"
	case external:
		mode = "external"
	}
	if err := checkLoadtestFlags(mode, set, &c, &f); err != nil {
		return usageError{err}
	}
	if f.creds != "" {
		c.NATSOptions = append(c.NATSOptions, nats.UserCredentials(f.creds))
	}

	mc := loadtest.MeasureConfig{
		Run: c, Mode: mode, NoCeilings: !f.ceilings, NoClosed: !f.closed, NoOpen: !f.open,
		OpenRate: f.rate, OpenClients: f.openClients, Progress: os.Stderr, NoOutcomes: f.producerOnly,
		Ceiling: loadtest.CeilingConfig{MinTime: f.ceilingTime},
	}
	if f.ceilingTime <= 0 {
		mc.Ceiling.MinTime = -1 // once through the corpus
	}
	// The keys: served by a DNS server on loopback that the worker is
	// pointed at, or put in a staging key bucket of a running system.
	keys, err := keyserver.Start("127.0.0.1:0")
	if err != nil {
		return err
	}
	defer keys.Close()
	publish := func(name, txt string) { keys.SetTXT(name, 3600, txt) }
	if c.Size == 0 {
		fmt.Fprintf(os.Stderr, "generating the corpus: %d mails, %d domains, RSA-%d keys\n", f.corpus, f.domains, f.rsaBits)
		cp, err := loadtest.GenerateCorpus(loadtest.CorpusConfig{Seed: f.seed, Mails: f.corpus, Domains: f.domains, RSABits: f.rsaBits})
		if err != nil {
			return err
		}
		mc.Corpus = cp
		for name, txt := range cp.Keys {
			publish(name, txt)
		}
	} else if f.signed {
		const domain, selector = "loadtest.example", "lt"
		key, err := testkit.GenerateKey("ed25519", 0)
		if err != nil {
			return err
		}
		txt, err := testkit.TXTRecord(key)
		if err != nil {
			return err
		}
		mc.Run.Signer = &loadtest.Signer{Domain: domain, Selector: selector, Key: key}
		publish(testkit.DNSName(selector, domain), txt)
	}
	if mode == "external" {
		if err := publishExternal(ctx, c, f.keyBucket, mc.Corpus, mc.Run.Signer, keys); err != nil {
			return err
		}
	}
	if f.exportTraces {
		sink, err := loadtest.StartOTLPSink("127.0.0.1:0")
		if err != nil {
			return err
		}
		defer func() {
			got, refused := sink.Requests()
			fmt.Fprintf(out, "traces: %d spans exported to the load test's OTLP sink in %d requests (%d refused)\n", sink.Spans(), got, refused)
			sink.Close()
		}()
		// Every span sampled unless OTEL_TRACES_SAMPLER says otherwise,
		// and a queue deep enough that none is dropped between exports:
		// by default, the cost of tracing at its highest.
		f.childEnv = []string{"OTEL_EXPORTER_OTLP_ENDPOINT=" + sink.URL(), "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf",
			"OTEL_BSP_MAX_QUEUE_SIZE=262144", "OTEL_BSP_SCHEDULE_DELAY=1000"}
		if os.Getenv("OTEL_TRACES_SAMPLER") == "" {
			f.childEnv = append(f.childEnv, "OTEL_TRACES_SAMPLER=always_on")
		}
	}
	mc.Start = starter(mode, c, &f, keys.Addr(), out)

	m, err := loadtest.Measure(ctx, mc)
	if werr := m.Write(out); werr != nil && err == nil {
		err = werr
	}
	if f.jsonPath != "" {
		if jerr := m.WriteJSON(f.jsonPath); jerr != nil && err == nil {
			err = jerr
		}
	}
	if err != nil {
		return err
	}
	return m.Err()
}

// checkLoadtestFlags refuses flags that do not fit the mode and fills in
// what the legacy flags imply.
func checkLoadtestFlags(mode string, set map[string]bool, c *loadtest.Config, f *loadtestFlags) error {
	local := mode == "procs" || mode == "dev"
	for _, name := range []string{"producer-only", "group-commit", "data-dir", "keep"} {
		if set[name] && !local {
			return fmt.Errorf("--%s needs --procs or --dev", name)
		}
	}
	for _, name := range []string{"binary", "worker-args", "producer-args", "export-traces"} {
		if set[name] && mode != "procs" {
			return fmt.Errorf("--%s needs --procs", name)
		}
	}
	for _, name := range []string{"batch-window", "batch-min", "batch-max", "batch-inflight"} {
		if set[name] && (mode != "dev" || !f.producerOnly) {
			return fmt.Errorf("the --batch-* flags need --dev --producer-only")
		}
	}
	if set["key-bucket"] && mode != "external" {
		return errors.New("--key-bucket is for a running system (--smtp/--nats); --procs and --dev serve the keys themselves")
	}
	if f.signed && c.Size == 0 {
		c.Size = 8 << 10
	}
	if c.Size > 0 && c.Size < loadtest.MinSize {
		return fmt.Errorf("--size %d: at least %d", c.Size, loadtest.MinSize)
	}
	if c.Size > 0 && c.Count == 0 && c.Duration == 0 {
		c.Count = 1000
	}
	if c.Size == 0 && (f.corpus < 1 || f.corpus > loadtest.MaxCorpus) {
		return fmt.Errorf("--corpus %d: want 1 to %d", f.corpus, loadtest.MaxCorpus)
	}
	if f.domains < 1 || f.domains > loadtest.MaxDomains {
		return fmt.Errorf("--domains %d: want 1 to %d", f.domains, loadtest.MaxDomains)
	}
	if f.rsaBits < 1024 {
		return fmt.Errorf("--rsa-bits %d: workers refuse RSA keys under 1024 bits", f.rsaBits)
	}
	if c.Clients < 0 || c.LMTPClients < 0 || c.Clients+c.LMTPClients == 0 {
		return errors.New("--clients and --lmtp-clients: at least one connection, none negative")
	}
	if c.Count < 0 || c.Duration < 0 || c.DeadEvery < 0 || f.openClients < 0 {
		return errors.New("--count, --duration, --dead-every and --open-clients cannot be negative")
	}
	if f.rate < 0 || f.rate > loadtest.MaxRate {
		return fmt.Errorf("--rate %g: want 0 (half the closed loop's) up to %d", f.rate, loadtest.MaxRate)
	}
	if !f.closed && !f.open {
		return errors.New("--closed=false and --open=false: nothing to measure")
	}
	if !f.closed && f.open && f.rate == 0 {
		return errors.New("--closed=false needs --rate for the open loop")
	}
	if local && c.LMTPClients == 0 {
		c.LMTPAddr = ""
	}
	if mode == "external" && c.LMTPClients == 0 {
		c.LMTPAddr = ""
	}
	if mode == "external" && c.Clients == 0 {
		c.SMTPAddr = ""
	}
	return nil
}

// starter returns the function that starts (or, for a running system,
// names) the system once the verification ceiling is measured.
func starter(mode string, c loadtest.Config, f *loadtestFlags, dnsServer string, out io.Writer) func(context.Context) (*loadtest.System, error) {
	return func(ctx context.Context) (*loadtest.System, error) {
		if mode == "external" {
			return &loadtest.System{NATSURL: c.NATSURL, SMTPAddr: c.SMTPAddr, LMTPAddr: c.LMTPAddr}, nil
		}
		dir, removeDir, err := dataDir(f)
		if err != nil {
			return nil, err
		}
		var sys *loadtest.System
		if mode == "procs" {
			wargs, pargs := strings.Fields(f.workerArgs), strings.Fields(f.producerArgs)
			sys, err = loadtest.StartProcs(ctx, loadtest.ProcsConfig{
				Binary: f.binary, DataDir: dir, DNSServer: dnsServer, GroupCommitOff: f.batch.Off,
				LMTP: c.LMTPClients > 0, NoWorker: f.producerOnly,
				WorkerArgs: wargs, ProducerArgs: pargs, Env: f.childEnv,
			})
		} else {
			sys, err = startDevSystem(ctx, dir, f, dnsServer)
		}
		if err != nil {
			removeDir()
			return nil, err
		}
		what := "server, producer and worker"
		if f.producerOnly {
			what = "server and producer only, no outcomes"
		}
		fmt.Fprintf(out, "system (%s, %s): nats %s (fsync always, data in %s), smtp %s, lmtp %s, group commit %v, keys from DNS %s\n",
			mode, what, sys.NATSURL, dir, sys.SMTPAddr, orNone(sys.LMTPAddr), !f.batch.Off, dnsServer)
		stop := sys.Stop
		sys.Stop = func() error {
			var err error
			if stop != nil {
				err = stop()
			}
			removeDir()
			return err
		}
		return sys, nil
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// dataDir returns the data directory and what removes it at the end.
func dataDir(f *loadtestFlags) (string, func(), error) {
	if f.dataDir != "" {
		return f.dataDir, func() {}, nil
	}
	dir, err := os.MkdirTemp("", "mailscope-loadtest-")
	if err != nil {
		return "", nil, err
	}
	if f.keep {
		return dir, func() {}, nil
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

// publishExternal puts the keys where a running system's workers read
// them: the staging key bucket when one is named; else it says how to
// point a worker at the load test's DNS server.
func publishExternal(ctx context.Context, c loadtest.Config, bucket string, cp *loadtest.Corpus, s *loadtest.Signer, keys *keyserver.Server) error {
	if cp == nil && s == nil {
		return nil
	}
	if bucket == "" {
		fmt.Fprintf(os.Stderr, "the DKIM keys are served only by this load test's DNS server at %s: start the worker with --dns-server %s, or give --key-bucket\n",
			keys.Addr(), keys.Addr())
		return nil
	}
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
	kv, err := js.KeyValue(ctx, bucket)
	if err != nil {
		return fmt.Errorf("key bucket %s: %w", bucket, err)
	}
	put := map[string]string{}
	if cp != nil {
		put = cp.Keys
	} else {
		txt, err := testkit.TXTRecord(s.Key)
		if err != nil {
			return err
		}
		put[testkit.DNSName(s.Selector, s.Domain)] = txt
	}
	for name, txt := range put {
		if _, err := auth.NewKVKeys(kv).Put(ctx, name, txt); err != nil {
			return fmt.Errorf("publish the key %s: %w", name, err)
		}
	}
	return nil
}

// startDevSystem starts the system inside this process: the whole dev
// system, or with --producer-only the server and a producer with the
// --batch-* settings.
func startDevSystem(ctx context.Context, dir string, f *loadtestFlags, dnsServer string) (*loadtest.System, error) {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if f.producerOnly {
		return startProducerOnly(ctx, dir, f.batch, logger)
	}
	s, err := dev.Start(ctx, dev.Config{DataDir: dir, NATSPort: -1, SMTPAddr: "127.0.0.1:0", LMTPAddr: "127.0.0.1:0", Logger: logger,
		DNSServer: dnsServer, Producer: producer.Config{Batch: f.batch,
			MaxConnections: loadtest.ProducerConnections, MaxClientConnections: loadtest.ProducerConnections}})
	if err != nil {
		return nil, err
	}
	opts, err := s.Credentials.Options(access.LoadTest)
	if err != nil {
		s.Close()
		return nil, err
	}
	return &loadtest.System{NATSURL: s.URL, SMTPAddr: s.SMTPAddr, LMTPAddr: s.LMTPAddr, NATSOptions: opts, Stop: func() error { s.Close(); return nil }}, nil
}

// startProducerOnly starts an embedded nats-server, provisions it, and
// runs a producer with the given group commit settings: the producer's
// side alone, without a worker competing for the disk.
func startProducerOnly(ctx context.Context, dir string, b producer.Batching, logger *slog.Logger) (_ *loadtest.System, err error) {
	keys, err := access.OpenKeyring(filepath.Join(dir, "credentials"), append(access.Roles(), access.LoadTest)...)
	if err != nil {
		return nil, err
	}
	srv, err := embedded.Start(embedded.Config{Port: -1, StoreDir: dir, Users: keys.PublicKeys()})
	if err != nil {
		return nil, err
	}
	var closers []func()
	sys := &loadtest.System{NATSURL: srv.ClientURL(), Stop: func() error {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
		return nil
	}}
	closers = append(closers, srv.Close)
	defer func() {
		if err != nil {
			_ = sys.Close()
		}
	}()
	if sys.NATSOptions, err = keys.Options(access.LoadTest); err != nil {
		return nil, err
	}
	if err := loadtest.Provision(ctx, sys.NATSURL, keys, time.Minute); err != nil {
		return nil, err
	}
	popts, err := keys.Options(access.Producer)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(sys.NATSURL, append(popts, nats.Name("mailscope-loadtest-producer"))...)
	if err != nil {
		return nil, err
	}
	closers = append(closers, nc.Close)
	b.Logger = logger
	p, err := producer.New(producer.Config{SMTPAddr: "127.0.0.1:0", LMTPAddr: "127.0.0.1:0", Batch: b, Logger: logger,
		MaxConnections: loadtest.ProducerConnections, MaxClientConnections: loadtest.ProducerConnections}, nc)
	if err != nil {
		return nil, err
	}
	if err := p.Listen(); err != nil {
		return nil, err
	}
	sys.SMTPAddr, sys.LMTPAddr = p.Addr(false), p.Addr(true)
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := p.Run(runCtx); err != nil {
			logger.Error("producer", slog.Any("err", err))
		}
	}()
	closers = append(closers, func() {
		cancel()
		<-done
		fmt.Fprintf(os.Stderr, "producer publish stats: %+v\n", p.PublishStats())
	})
	return sys, nil
}
