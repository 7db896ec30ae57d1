package workers

import (
	"log/slog"
	"os"
	"runtime"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/mailscope/mailscope/auth"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/groupcommit"
	"github.com/mailscope/mailscope/version"
)

// Config configures a worker. Every field has a usable default.
type Config struct {
	// Names of the NATS objects. Empty fields take contracts.DefaultNames.
	Names contracts.Names
	// Concurrency is how many mails one worker processes at once. Most of
	// a mail's time in a worker is spent waiting (DNS, the fsync of its
	// outcome's batch, the ack), so it is well above the cores: enough
	// mails wait for the same outcome batch for group commit to pay, and
	// the CPU work of the others fills the cores meanwhile. Default
	// 32 × GOMAXPROCS (docs/performance.md).
	Concurrency int
	// Prefetch is how many mails the consumer keeps buffered in the
	// worker beyond those in process, so that a freed slot finds a mail
	// at once. Their AckWait runs while they wait. Default Concurrency.
	Prefetch int
	// OutcomeCommit configures the group commit of outcome events (see
	// package groupcommit; its defaults where unset). Name and Logger are
	// the worker's.
	OutcomeCommit groupcommit.Config
	// MaxAttempts is how many deliveries a mail gets before a transient
	// failure dead-letters it. Default 5.
	MaxAttempts int
	// BackoffBase and BackoffMax bound the redelivery delay after a
	// transient failure (doubling per attempt). Defaults 1s and 5m.
	BackoffBase, BackoffMax time.Duration
	// HoldDelay is how often a held mail is looked at again
	// besides on every rule change. Default 30s.
	HoldDelay time.Duration
	// DNSHoldMax bounds the wait of a mail held because its DKIM keys
	// did not answer (DNS silent or SERVFAIL on its last attempt): once it
	// has been held that long, it is decided with the temperror recorded
	// (trust none for the signatures DNS did not answer for), so its rules
	// decide it and it gets an outcome. It is checked on every HoldDelay
	// tick, so the longest wait is DNSHoldMax plus HoldDelay. mail.pause
	// holds are not bounded: a pause lasts as long as its rules say.
	// Default 1 hour.
	DNSHoldMax time.Duration
	// MaxHeld caps the held mails (see mail.pause) one worker watches in
	// flight, looking at them again on every rule change; more held mail
	// waits safely in the stream until a slot frees. Default 256.
	MaxHeld int
	// ProgressInterval is how often a worker tells the server that a mail
	// it is processing (or watching while held) is still in progress, so
	// that slow processing is not redelivered to a second worker. Default
	// a third of the consumer's AckWait.
	ProgressInterval time.Duration
	// HandlerTimeout bounds the handler's work for one mail (parsing the
	// body, building the summary); DNS lookups have their own timeouts
	// (Auth.Timeout). Default 30s.
	HandlerTimeout time.Duration
	// TextLimit caps the text kept per text part in a summary, in bytes.
	// Default 64 KiB.
	TextLimit int
	// Env is the environment matched by env: scopes, e.g. "staging".
	// Default "" (no env: scope matches).
	Env string
	// Release is the version matched by release: scopes. Default version.Version.
	Release string
	// Name identifies this worker in outcomes. Default the host name.
	Name string
	// Handlers are added to the built-in handlers (see Handlers), by the
	// name mail.handler chooses them with; one with a built-in name
	// replaces it. Default none.
	Handlers map[string]Handler
	// OrphanAge is how old an object of the claim bucket that no worker
	// has adopted must be before the orphan collector may take it (a
	// producer stopped between writing a large mail's body and storing
	// its message leaves such an object). It is collected only once every
	// message that could reference it has been delivered: the mail stream
	// is empty or its oldest message is newer than the object plus
	// OrphanAge. Far above the producer's publish timeout (5s, with its
	// retries), since a referencing message is stored within it after the
	// object. Every worker runs the collector every OrphanAge/4, jittered
	// (idempotent across replicas). Default 1h.
	OrphanAge time.Duration
	// MaxClaimed caps the claimed mails (above the producer's claim
	// threshold, up to its MaxSize: 32 MiB by default) one worker reads
	// and processes at once, held-mail re-checks included; more wait
	// their turn, reported in progress. Each holds its whole mail in
	// memory while processed, so this bounds a worker's memory for
	// large mail to about MaxClaimed times MaxSize plus garbage
	// (docs/architecture.md, "Large mail"). Default 4.
	MaxClaimed int
	// Webhook configures the webhook handler's endpoints. Default none
	// (a mail the webhook handler takes is retried, then dead-lettered).
	Webhook WebhookConfig
	// Service configures the service handler's external services (NATS
	// micro services, docs/handlers.md). Default none (a mail the
	// service handler takes is retried, then dead-lettered).
	Service ServiceConfig
	// Commands configures the commands handler: the command names mail
	// may use, and how much of a refused mail its reply carries. Default
	// DefaultCommands, 64 KiB, at most 50 commands a mail.
	Commands CommandsConfig
	// Auth configures DKIM verification and its DNS resolver.
	Auth auth.Config
	// Logger receives the worker's log. Default slog.Default().
	Logger *slog.Logger
	// TracerProvider makes the spans of each delivery and its stages
	// (docs/observability.md, "Traces"), continuing the trace the
	// producer started; Auth.TracerProvider defaults to it. Default the
	// global provider (otel.GetTracerProvider(), see package telemetry).
	TracerProvider trace.TracerProvider
}

// WithDefaults returns c with every unset field at its documented default.
func (c Config) WithDefaults() Config {
	c.Names = c.Names.WithDefaults()
	if c.Concurrency <= 0 {
		c.Concurrency = 32 * runtime.GOMAXPROCS(0)
	}
	if c.Prefetch <= 0 {
		c.Prefetch = c.Concurrency
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = 5
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = time.Second
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 5 * time.Minute
	}
	if c.HoldDelay <= 0 {
		c.HoldDelay = 30 * time.Second
	}
	if c.DNSHoldMax <= 0 {
		c.DNSHoldMax = time.Hour
	}
	if c.MaxHeld <= 0 {
		c.MaxHeld = 256
	}
	if c.HandlerTimeout <= 0 {
		c.HandlerTimeout = 30 * time.Second
	}
	if c.TextLimit <= 0 {
		c.TextLimit = 64 << 10
	}
	if c.MaxClaimed <= 0 {
		c.MaxClaimed = 4
	}
	if c.OrphanAge <= 0 {
		c.OrphanAge = time.Hour
	}
	if c.Release == "" {
		c.Release = version.Version
	}
	if c.Name == "" {
		c.Name, _ = os.Hostname()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.TracerProvider == nil {
		c.TracerProvider = otel.GetTracerProvider()
	}
	c.Webhook = c.Webhook.withDefaults()
	c.Service = c.Service.withDefaults(c.Names)
	c.Commands = c.Commands.withDefaults()
	if c.Auth.TracerProvider == nil {
		c.Auth.TracerProvider = c.TracerProvider
	}
	return c
}
