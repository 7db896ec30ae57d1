package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/producer"
	"github.com/mailscope/mailscope/provision"
	"github.com/mailscope/mailscope/telemetry"
	"github.com/mailscope/mailscope/version"
	"github.com/mailscope/mailscope/workers"
)

func runVersion(_ context.Context, _ []string, out io.Writer) error {
	_, err := fmt.Fprintln(out, "mailscope", version.Version)
	return err
}

func addProvisionFlags(fs *flag.FlagSet, c *provision.Config) {
	fs.IntVar(&c.Replicas, "replicas", 1, "replicas of every stream and the bucket (3 in a production cluster)")
	fs.Int64Var(&c.MailMaxBytes, "mail-max-bytes", 1<<30, "size cap of the mail stream; when full the producer answers 4xx")
	fs.DurationVar(&c.OutcomeMaxAge, "outcome-max-age", 7*24*time.Hour, "how long outcome events are kept")
	fs.DurationVar(&c.DeadMaxAge, "dead-max-age", 30*24*time.Hour, "how long dead letters are kept")
	fs.Int64Var(&c.OutcomeMaxBytes, "outcome-max-bytes", 4<<30, "size cap of the outcome stream; when full the oldest events go")
	fs.Int64Var(&c.DeadMaxBytes, "dead-max-bytes", 1<<30, "size cap of the dead-letter stream; when full new dead letters are refused and their mail is retried")
	fs.DurationVar(&c.DuplicateWindow, "duplicate-window", time.Hour, "dedup window of the mail stream: an MTA's resend of a mail stored within it is stored once (105-130 bytes of server memory per mail per replica: 0.35-0.45 GiB an hour at 1,000 mails/s; docs/performance.md)")
	fs.DurationVar(&c.OutcomeDuplicateWindow, "outcome-duplicate-window", 0, "dedup window of the outcome stream, at least --duplicate-window (default --duplicate-window plus 10m, the redelivery span)")
	fs.DurationVar(&c.DeadDuplicateWindow, "dead-duplicate-window", 0, "dedup window of the dead-letter stream, at least --duplicate-window (default --duplicate-window plus 10m, the redelivery span)")
	fs.DurationVar(&c.AckWait, "ack-wait", 30*time.Second, "how long a worker may hold a mail before redelivery")
	fs.IntVar(&c.MaxAckPending, "max-ack-pending", 1000, "mails in flight across all workers")
	fs.DurationVar(&c.CommandMaxAge, "command-max-age", 7*24*time.Hour, "how long command and reply events are kept (their consumers must read them within it)")
	fs.Int64Var(&c.CommandMaxBytes, "command-max-bytes", 1<<30, "size cap of the command stream; when full new events are refused and their mail is retried")
	fs.DurationVar(&c.CommandDuplicateWindow, "command-duplicate-window", 0, "dedup window of the command stream, at least --duplicate-window (default --duplicate-window plus 10m, the redelivery span)")
	fs.Int64Var(&c.ClaimMaxBytes, "claim-max-bytes", 4<<30, "size cap of the claim bucket (Object Store of mail above the producer's --claim-threshold); when full large mail gets 4xx")
	fs.DurationVar(&c.ArchiveMaxAge, "archive-max-age", 0, "opt-in archive of recent mail (stream MAIL_ARCHIVE, a mirror of the mail stream, raw mail with personal data) for mailscope flags preview: keep mail this long; 0 with --archive-max-bytes 0: no archive (an existing one is left alone)")
	fs.Int64Var(&c.ArchiveMaxBytes, "archive-max-bytes", 0, "size cap of the archive; the oldest mail goes first (default 1 GiB once --archive-max-age is set, whose default is then 24h)")
}

func runProvision(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("provision", flag.ContinueOnError)
	nf := addNATSFlags(fs)
	var c provision.Config
	addProvisionFlags(fs, &c)
	if err := parse(fs, args); err != nil {
		return err
	}
	c.Names = nf.names
	nc, js, err := nf.jetstream(access.Provisioner)
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := provision.Run(ctx, js, c); err != nil {
		return err
	}
	c = c.WithDefaults()
	fmt.Fprintf(out, "provisioned: stream %s (%s), consumer %s, stream %s (%s.>), stream %s (%s), stream %s (%s.>, %s), bucket %s, object store %s\n",
		c.Names.MailStream, c.Names.MailSubject, c.Names.Consumer, c.Names.OutcomeStream, c.Names.OutcomePrefix,
		c.Names.DeadStream, c.Names.DeadSubject, c.Names.CommandStream, c.Names.CommandPrefix, c.Names.ReplySubject,
		c.Names.FlagsBucket, c.Names.ClaimBucket)
	if c.Archive() {
		fmt.Fprintf(out, "archive: stream %s mirrors %s, raw mail kept up to %s or %d bytes\n", c.Names.ArchiveStream, c.Names.MailSubject, c.ArchiveMaxAge, c.ArchiveMaxBytes)
	}
	return nil
}

func addProducerFlags(fs *flag.FlagSet, c *producer.Config) {
	fs.StringVar(&c.SMTPAddr, "smtp", "127.0.0.1:2525", `SMTP listen address ("-" disables)`)
	fs.StringVar(&c.LMTPAddr, "lmtp", "127.0.0.1:2424", `LMTP listen address ("-" disables)`)
	fs.StringVar(&c.Domain, "domain", "localhost", "host name in the greeting")
	fs.Int64Var(&c.MaxSize, "max-size", 32<<20, "largest mail accepted in bytes; larger gets 552 5.3.4 (mail above --claim-threshold travels through the claim bucket, so max_payload does not bound it)")
	fs.Int64Var(&c.ClaimThreshold, "claim-threshold", 1<<20, "largest mail stored inline in its message, in bytes (at most the server's max_payload less 64 KiB); larger mail streams into the claim bucket and its message carries a reference")
	fs.IntVar(&c.MaxRecipients, "max-recipients", 100, "recipients per transaction")
	fs.DurationVar(&c.PublishTimeout, "publish-timeout", 5*time.Second, "time to store one mail in total: a publish that timed out (attempts of at most 2s), found no responders or lost its connection is retried under the same id until then; past it the MTA gets 451")
	// SMTP limits and timeouts (docs/smtp.md).
	fs.IntVar(&c.MaxCommandLine, "max-command-line", 2000, "longest command line in bytes with its CRLF; longer gets 500 5.5.2")
	fs.IntVar(&c.MaxDataLine, "max-data-line", 1<<20, "longest line of a mail in bytes with its CRLF; longer gets 554 5.6.0")
	fs.IntVar(&c.MaxHeaderBytes, "max-header-bytes", 1<<20, "largest header section of a mail in bytes; larger gets 554 5.6.0")
	fs.IntVar(&c.MaxHeaderFields, "max-header-fields", 1000, "most header fields in a mail; more gets 554 5.6.0")
	fs.IntVar(&c.MaxConnections, "max-connections", 1000, "connections open at once, SMTP and LMTP together; more get 421 4.7.0")
	fs.IntVar(&c.MaxClientConnections, "max-client-connections", 500, "connections open at once from one IPv4 address or IPv6 /64 (loopback included); more get 421 4.7.0")
	fs.DurationVar(&c.CommandTimeout, "command-timeout", 5*time.Minute, "wait for each command line; past it 421 4.4.2 and the connection is closed")
	fs.DurationVar(&c.DataTimeout, "data-timeout", 10*time.Minute, "bound on one mail's whole content (354 to the final dot, or a BDAT chunk); past it 421 4.4.2, closed")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", 15*time.Minute, "bound on a connection's time without completing a mail; past it 421 4.4.2, closed")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", time.Minute, "bound on writing each reply, and the shutdown grace for open transactions")
	fs.Var(groupCommitFlag{&c.Batch}, "group-commit", "store concurrent transactions' mail as atomic batches sharing one fsync (--group-commit=false stores every mail on its own, one fsync each; see loadtest/README.md)")
}

// groupCommitFlag is the --group-commit flag: true (the default) turns
// group commit on, false sets Batching.Off.
type groupCommitFlag struct{ b *producer.Batching }

func (f groupCommitFlag) String() string {
	if f.b == nil { // the zero value, against which flag prints "(default true)"
		return "false"
	}
	return strconv.FormatBool(!f.b.Off)
}

func (f groupCommitFlag) Set(s string) error {
	on, err := strconv.ParseBool(s)
	if err != nil {
		return err
	}
	f.b.Off = !on
	return nil
}

func (f groupCommitFlag) IsBoolFlag() bool { return true }

func runProducer(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("producer", flag.ContinueOnError)
	nf := addNATSFlags(fs)
	var c producer.Config
	addProducerFlags(fs, &c)
	web := addHTTPFlag(fs)
	setLog := addLogFlag(fs, telemetry.LogJSON)
	if err := parse(fs, args); err != nil {
		return err
	}
	setLog()
	c.Names = nf.names
	flush, err := startTracing(ctx, "producer")
	if err != nil {
		return err
	}
	defer flush()
	nc, err := nf.connect(access.Producer)
	if err != nil {
		return err
	}
	defer nc.Close()
	p, err := producer.New(c, nc)
	if err != nil {
		return err
	}
	if err := p.Listen(); err != nil {
		return err
	}
	stop, err := startTelemetry(web, "producer", func() bool { return nc.IsConnected() })
	if err != nil {
		return err
	}
	defer stop()
	slog.Info("producer listening", slog.String("smtp", p.Addr(false)), slog.String("lmtp", p.Addr(true)),
		slog.Int64("max_size", p.Config().MaxSize))
	return p.Run(ctx)
}

func addWorkerFlags(fs *flag.FlagSet, c *workers.Config, dnsServer *string) {
	fs.StringVar(dnsServer, "dns-server", "", "DNS servers (host:port, comma-separated, tried in order) for DKIM key lookups (default the system resolver)")
	fs.IntVar(&c.Concurrency, "concurrency", 0, "mails processed at once (default 32 × GOMAXPROCS: most of a mail's time is waiting for DNS and fsyncs)")
	fs.IntVar(&c.Prefetch, "prefetch", 0, "mails buffered beyond those in process (default the concurrency)")
	fs.IntVar(&c.MaxAttempts, "max-attempts", 5, "deliveries before a transiently failing mail is dead-lettered")
	fs.DurationVar(&c.HoldDelay, "hold-delay", 30*time.Second, "how often held mail is evaluated again besides on every rule change")
	fs.DurationVar(&c.DNSHoldMax, "dns-hold-max", time.Hour, "longest wait of a mail held because DNS did not answer for its DKIM keys; then it is decided with dkim=temperror recorded (checked every --hold-delay)")
	fs.DurationVar(&c.HandlerTimeout, "handler-timeout", 30*time.Second, "bound on the handler's work for one mail (parsing the body, building the summary)")
	fs.StringVar(&c.Env, "env", "", "environment matched by env: rules (e.g. staging)")
	fs.StringVar(&c.Name, "name", "", "worker name in outcomes (default the host name)")
	fs.IntVar(&c.MaxClaimed, "max-claimed", 4, "claimed mails (above the producer's --claim-threshold, each held whole in memory) processed at once; more wait their turn")
	fs.DurationVar(&c.OrphanAge, "orphan-age", time.Hour, "age after which a claim-bucket object no worker adopted is collected, once no undelivered message can reference it (checked every orphan-age/4; far above the producer's --publish-timeout)")
	fs.StringVar(&c.Auth.AuthServID, "authserv-id", "mailscope", "authserv-id of the Authentication-Results value")
	fs.DurationVar(&c.Auth.Timeout, "dns-timeout", 2*time.Second, "timeout of one DNS query")
	fs.BoolVar(&c.Auth.StrictAlignment, "strict-alignment", false, "DKIM d= must equal the From domain for trust (default relaxed: same organizational domain)")
	addWebhookFlags(fs, &c.Webhook)
	addServiceFlags(fs, &c.Service)
	addCommandsFlags(fs, &c.Commands)
}

func runWorker(ctx context.Context, args []string, _ io.Writer) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	nf := addNATSFlags(fs)
	var c workers.Config
	var dns string
	addWorkerFlags(fs, &c, &dns)
	web := addHTTPFlag(fs)
	wait := fs.Duration("wait-provisioned", 5*time.Minute, "how long to wait, not ready, for streams, consumers and buckets that do not exist yet (0: fail at once)")
	setLog := addLogFlag(fs, telemetry.LogJSON)
	if err := parse(fs, args); err != nil {
		return err
	}
	setLog()
	c.Names = nf.names
	if err := errors.Join(c.Webhook.Validate(c.HandlerTimeout), c.Service.Validate(c.HandlerTimeout, c.Names), c.Commands.Validate()); err != nil {
		return usageError{err}
	}
	if dns != "" {
		c.Auth.DNSServers = splitList(dns)
	}
	flush, err := startTracing(ctx, "worker")
	if err != nil {
		return err
	}
	defer flush()
	nc, err := nf.connect(access.Worker)
	if err != nil {
		return err
	}
	defer nc.Close()
	// Alive (and not ready) while it waits for provisioning.
	var worker atomic.Pointer[workers.Worker]
	stop, err := startTelemetry(web, "worker", func() bool {
		w := worker.Load()
		return w != nil && w.Ready() && nc.IsConnected()
	})
	if err != nil {
		return err
	}
	defer stop()
	if err := waitProvisioned(ctx, *wait, func() error {
		w, err := workers.New(ctx, c, nc)
		if err == nil {
			worker.Store(w)
		}
		return err
	}); err != nil {
		return err
	}
	return worker.Load().Run(ctx)
}

// httpFlags are the flags of the telemetry endpoint.
type httpFlags struct {
	addr  string
	pprof bool
}

func addHTTPFlag(fs *flag.FlagSet) *httpFlags {
	var h httpFlags
	fs.StringVar(&h.addr, "http-addr", "", `serve /metrics (Prometheus), /healthz and /readyz on this address, e.g. ":9090" (default off)`)
	fs.BoolVar(&h.pprof, "pprof", false, "with --http-addr: also serve net/http/pprof on /debug/pprof/; never on a public address")
	return &h
}

// startTelemetry serves metrics and probes (and pprof when asked for)
// when an address is set, as service "mailscope-ROLE".
func startTelemetry(h *httpFlags, role string, ready func() bool) (func(), error) {
	if h.addr == "" {
		if h.pprof {
			slog.Warn("--pprof has no effect without --http-addr")
		}
		return func() {}, nil
	}
	var opts []telemetry.Option
	paths := "/metrics, /healthz, /readyz"
	if h.pprof {
		opts = append(opts, telemetry.WithPprof())
		paths += ", /debug/pprof/"
	}
	s, err := telemetry.Start(h.addr, telemetry.ServiceName(role), ready, opts...)
	if err != nil {
		return nil, err
	}
	slog.Info("serving "+paths, slog.String("addr", s.Addr()))
	return func() { s.Close() }, nil
}
