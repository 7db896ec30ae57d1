// Package provision creates, or updates in place, every NATS object the
// system needs: the mail stream and its durable consumer, the outcome,
// dead-letter and command streams, the flag-rule and status KV buckets, the claim
// Object Store bucket for large mail, and, only when
// asked for (Names.KeyBucket), the staging DKIM key bucket. Running it
// twice is harmless; running it with changed settings updates what can be
// updated.
package provision

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/contracts"
)

// Config says what to provision. The zero value, after WithDefaults, is a
// single-node development setup.
type Config struct {
	// Names of every object. Empty fields take contracts.DefaultNames.
	Names contracts.Names
	// Replicas of every stream and the bucket. Default 1; production
	// clusters use 3.
	Replicas int
	// MailMaxBytes caps the mail stream's size; when full, new mail is
	// refused (DiscardNew) and the producer answers the MTA with a 4xx.
	// Default 1 GiB.
	MailMaxBytes int64
	// MaxMsgSize is the largest message a stream accepts. Default 0:
	// the server's max_payload.
	MaxMsgSize int32
	// OutcomeMaxAge is how long outcome events are kept. Default 7 days.
	OutcomeMaxAge time.Duration
	// DeadMaxAge is how long dead letters are kept. Default 30 days.
	DeadMaxAge time.Duration
	// OutcomeMaxBytes caps the outcome stream; when full, the oldest
	// events go (DiscardOld), so a flood of outcomes can never fill the
	// server's store and make new mail answer 4xx. Default 4 GiB.
	OutcomeMaxBytes int64
	// DeadMaxBytes caps the dead-letter stream; when full, a new dead
	// letter is refused (DiscardNew) and its mail stays on the mail
	// stream, retried, instead of an older dead letter being dropped.
	// Default 1 GiB.
	DeadMaxBytes int64
	// DuplicateWindow is the de-duplication window of the mail stream: a
	// mail whose id (its content id: envelope and bytes) was stored
	// within it is stored once, also after a worker acked and so removed
	// it (the server's dedup map outlives the message). It must cover an
	// MTA's resend of a mail whose 250 it never saw: Postfix retries
	// after 5 minutes, then 10, 20, 40 (cumulative 75), Exim and sendmail
	// every 15 to 30 minutes. Each entry costs the server 105 to 130 bytes
	// of memory per stream replica: 0.35 to 0.45 GiB an hour at 1,000 mails/s
	// (docs/performance.md, "Duplicate windows"). Default 1 hour.
	DuplicateWindow time.Duration
	// OutcomeDuplicateWindow is the de-duplication window of the outcome
	// stream: a mail processed again within it (a lost ack, a
	// redelivery, a resend stored again) still has one outcome. It must
	// be at least DuplicateWindow plus the longest redelivery span
	// (RedeliverySpan); Run refuses a shorter one. Default
	// DuplicateWindow + RedeliverySpan (1h10m).
	OutcomeDuplicateWindow time.Duration
	// DeadDuplicateWindow is the de-duplication window of the
	// dead-letter stream, whose Nats-Msg-Id is the mail id: a dead letter
	// stored again (a lost term, a crash between the dead outcome and
	// the term) is stored once. Like OutcomeDuplicateWindow it must be at
	// least DuplicateWindow plus RedeliverySpan. Default
	// DuplicateWindow + RedeliverySpan (1h10m).
	DeadDuplicateWindow time.Duration
	// AckWait is how long a worker may hold a mail before it is
	// redelivered. Default 30 seconds.
	AckWait time.Duration
	// HeldMaxBytes caps the held-mail stream; when full, more held mail
	// stays on the mail stream and is looked at again after HoldDelay.
	// Default 1 GiB.
	HeldMaxBytes int64
	// HeldMaxAckPending caps the held mails workers watch in flight (see
	// HeldConsumer); held mail beyond it waits in the stream. Default 1000.
	HeldMaxAckPending int
	// MaxAckPending caps the mails in flight across all workers.
	// Default 1000.
	MaxAckPending int
	// FlagHistory is how many revisions of each flag key are kept (the
	// audit trail of `nats kv history`). Default 64, the server maximum.
	FlagHistory uint8
	// ClaimMaxBytes caps the claim bucket (Names.ClaimBucket), the Object
	// Store bucket that holds the bodies of mail above the producer's
	// claim threshold; when full, a new large mail is refused (the
	// producer answers 451 and the MTA retries) and stored mail is never
	// dropped. Default 4 GiB (about 128 mails of 32 MiB).
	ClaimMaxBytes int64
	// CommandMaxAge is how long the commands handler's events (command
	// and reply events, Names.CommandStream) are kept: the consumers
	// that carry commands out and send replies must read them within
	// it. Default 7 days.
	CommandMaxAge time.Duration
	// CommandMaxBytes caps the command stream; when full, a new event is
	// refused (DiscardNew) and its mail is retried, then dead-lettered,
	// rather than an unread command being dropped. Default 1 GiB.
	CommandMaxBytes int64
	// CommandDuplicateWindow is the de-duplication window of the command
	// stream, whose Nats-Msg-Ids derive from the mail id: a mail
	// processed again within it (a redelivery, a resend stored again)
	// stores each of its events once. Like OutcomeDuplicateWindow it must
	// be at least DuplicateWindow plus RedeliverySpan. Default
	// DuplicateWindow + RedeliverySpan (1h10m).
	CommandDuplicateWindow time.Duration
	// StatusTTL is how long a worker's status entry lives without being
	// rewritten; workers rewrite theirs every 30 seconds. Default 2m.
	StatusTTL time.Duration
	// ArchiveMaxAge and ArchiveMaxBytes bound the opt-in archive of
	// recent mail (Names.ArchiveStream), a mirror of the mail stream that
	// `mailscope flags preview` replays. The archive holds raw mail, so
	// it exists only when one of them is set; the other then takes its
	// default (24h, 1 GiB), and the oldest mail goes first once either is
	// reached. Default 0 and 0: no archive. Setting both to 0 again does
	// not delete an archive made before: an administrator removes the
	// stream (`nats stream rm MAIL_ARCHIVE`), which no mailscope role may.
	ArchiveMaxAge   time.Duration
	ArchiveMaxBytes int64
}

// Archive reports whether c asks for the archive stream.
func (c Config) Archive() bool { return c.ArchiveMaxAge > 0 || c.ArchiveMaxBytes > 0 }

// RedeliverySpan is how long after its first store a mail may still be
// processed again by the workers with their defaults: up to 2 ×
// MaxAttempts (10) deliveries, each held up to AckWait (30s), with
// backoffs of 1s doubling (capped at 5m) between some of them, is under
// 10 minutes. The outcome and dead-letter windows are the mail window
// plus this span.
const RedeliverySpan = 10 * time.Minute

// WithDefaults returns c with every unset field at its documented default.
func (c Config) WithDefaults() Config {
	c.Names = c.Names.WithDefaults()
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.MailMaxBytes == 0 {
		c.MailMaxBytes = 1 << 30
	}
	if c.OutcomeMaxAge == 0 {
		c.OutcomeMaxAge = 7 * 24 * time.Hour
	}
	if c.DeadMaxAge == 0 {
		c.DeadMaxAge = 30 * 24 * time.Hour
	}
	if c.OutcomeMaxBytes == 0 {
		c.OutcomeMaxBytes = 4 << 30
	}
	if c.DeadMaxBytes == 0 {
		c.DeadMaxBytes = 1 << 30
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = time.Hour
	}
	if c.OutcomeDuplicateWindow == 0 {
		c.OutcomeDuplicateWindow = c.DuplicateWindow + RedeliverySpan
	}
	if c.DeadDuplicateWindow == 0 {
		c.DeadDuplicateWindow = c.DuplicateWindow + RedeliverySpan
	}
	if c.CommandMaxAge == 0 {
		c.CommandMaxAge = 7 * 24 * time.Hour
	}
	if c.CommandMaxBytes == 0 {
		c.CommandMaxBytes = 1 << 30
	}
	if c.CommandDuplicateWindow == 0 {
		c.CommandDuplicateWindow = c.DuplicateWindow + RedeliverySpan
	}
	if c.AckWait == 0 {
		c.AckWait = 30 * time.Second
	}
	if c.HeldMaxBytes == 0 {
		c.HeldMaxBytes = 1 << 30
	}
	if c.HeldMaxAckPending == 0 {
		c.HeldMaxAckPending = 1000
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = 1000
	}
	if c.FlagHistory == 0 {
		c.FlagHistory = 64
	}
	if c.ClaimMaxBytes == 0 {
		c.ClaimMaxBytes = 4 << 30
	}
	if c.StatusTTL == 0 {
		c.StatusTTL = 2 * time.Minute
	}
	if c.Archive() && c.ArchiveMaxAge == 0 {
		c.ArchiveMaxAge = 24 * time.Hour
	}
	if c.Archive() && c.ArchiveMaxBytes == 0 {
		c.ArchiveMaxBytes = 1 << 30
	}
	return c
}

// MailStream returns the configuration of the incoming mail stream: a
// work queue (a mail leaves it when a worker acknowledges it), file
// storage, and DiscardNew so that a full stream refuses mail instead of
// dropping stored mail. It always allows atomic publish
// (AllowAtomicPublish): the producer group-commits mail by default
// (producer.Batching), and Run turns it on for a mail stream
// provisioned before. With the archive on (Archive), it republishes each
// mail it stores to the archive (ArchiveStream); provisioning with the
// archive off again stops that.
func (c Config) MailStream() jetstream.StreamConfig {
	c = c.WithDefaults()
	sc := workStream(c, c.Names.MailStream, "incoming mail, raw RFC 5322 with the envelope in headers", c.MailMaxBytes, c.Names.MailSubject, c.Names.ResumeSubject)
	sc.AllowAtomicPublish = true
	if c.Archive() {
		// Every mail stored, as stored (headers and body), into the
		// archive; not resumed held mail, archived already.
		sc.RePublish = &jetstream.RePublish{Source: c.Names.MailSubject, Destination: c.Names.ArchiveSubject}
	}
	return sc
}

// workStream is the shape of both mail streams: a work queue (a mail
// leaves it when acknowledged) on file storage that refuses new mail
// when full (DiscardNew) rather than dropping stored mail.
func workStream(c Config, name, description string, maxBytes int64, subjects ...string) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:        name,
		Description: description,
		Subjects:    subjects,
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardNew,
		MaxBytes:    maxBytes,
		MaxMsgSize:  c.MaxMsgSize,
		Replicas:    c.Replicas,
		Duplicates:  c.DuplicateWindow,
	}
}

// Consumer returns the configuration of the durable pull consumer shared
// by every worker: mail from the producer (MailSubject) and held mail
// put back by workers (ResumeSubject). MaxDeliver is unlimited: the worker counts attempts
// itself and dead-letters a mail at its own limit, so that no mail is
// ever dropped by the server without a dead letter.
func (c Config) Consumer() jetstream.ConsumerConfig {
	c = c.WithDefaults()
	return workConsumer(c, c.Names.Consumer, "mailscope workers", c.MaxAckPending, c.Names.MailSubject, c.Names.ResumeSubject)
}

// workConsumer is the shape of both work consumers: durable, pulled,
// explicitly acknowledged, never dropping a mail on its own.
func workConsumer(c Config, durable, description string, maxAckPending int, subjects ...string) jetstream.ConsumerConfig {
	cc := jetstream.ConsumerConfig{
		Durable:       durable,
		Description:   description,
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       c.AckWait,
		MaxDeliver:    -1,
		MaxAckPending: maxAckPending,
		DeliverPolicy: jetstream.DeliverAllPolicy,
	}
	if len(subjects) == 1 {
		cc.FilterSubject = subjects[0]
	} else {
		cc.FilterSubjects = subjects
	}
	return cc
}

// HeldStream returns the configuration of the held-mail stream: a work
// queue like the mail stream, with limits of its own.
func (c Config) HeldStream() jetstream.StreamConfig {
	c = c.WithDefaults()
	return workStream(c, c.Names.HeldStream, "mail held by mail.pause, until the pause lifts", c.HeldMaxBytes, c.Names.HeldSubject)
}

// HeldConsumer returns the configuration of the durable consumer of held
// mail: mail that mail.pause holds waits on its own subject, so that it
// never takes the workers consumer's MaxAckPending from other mail, and
// is not counted as queue depth by an autoscaler reading that consumer.
func (c Config) HeldConsumer() jetstream.ConsumerConfig {
	c = c.WithDefaults()
	return workConsumer(c, c.Names.HeldConsumer, "mailscope workers watching mail held by mail.pause", c.HeldMaxAckPending, c.Names.HeldSubject)
}

// OutcomeStream returns the configuration of the outcome event stream.
// It always allows atomic publish (AllowAtomicPublish): workers
// group-commit their outcome events (package groupcommit), and Run turns
// it on for an outcome stream provisioned before.
func (c Config) OutcomeStream() jetstream.StreamConfig {
	c = c.WithDefaults()
	return jetstream.StreamConfig{
		Name:        c.Names.OutcomeStream,
		Description: "one outcome event per mail",
		Subjects:    []string{c.Names.OutcomePrefix + ".>"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		MaxAge:      c.OutcomeMaxAge,
		MaxBytes:    c.OutcomeMaxBytes,
		Discard:     jetstream.DiscardOld,
		Replicas:    c.Replicas,
		Duplicates:  c.OutcomeDuplicateWindow,
		// Batches refuse repeated Nats-Msg-Ids as a whole; the publisher
		// then stores their events one by one, where the window above
		// still keeps one outcome per mail.
		AllowAtomicPublish: true,
	}
}

// DeadStream returns the configuration of the dead-letter stream.
func (c Config) DeadStream() jetstream.StreamConfig {
	c = c.WithDefaults()
	return jetstream.StreamConfig{
		Name:        c.Names.DeadStream,
		Description: "mail that could not be processed, raw, with the reason in headers",
		Subjects:    []string{c.Names.DeadSubject},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		MaxAge:      c.DeadMaxAge,
		MaxBytes:    c.DeadMaxBytes,
		Discard:     jetstream.DiscardNew,
		MaxMsgSize:  c.MaxMsgSize,
		Replicas:    c.Replicas,
		Duplicates:  c.DeadDuplicateWindow,
	}
}

// CommandStream returns the configuration of the command stream: the
// commands handler's command events (Names.CommandPrefix + ".>") and
// reply events (Names.ReplySubject), kept CommandMaxAge, refusing new
// events when full (DiscardNew) so that no unread command is dropped.
func (c Config) CommandStream() jetstream.StreamConfig {
	c = c.WithDefaults()
	return jetstream.StreamConfig{
		Name:        c.Names.CommandStream,
		Description: "email commands (one event per command) and replies to refused command mail",
		Subjects:    []string{c.Names.CommandPrefix + ".>", c.Names.ReplySubject},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		MaxAge:      c.CommandMaxAge,
		MaxBytes:    c.CommandMaxBytes,
		Discard:     jetstream.DiscardNew,
		MaxMsgSize:  c.MaxMsgSize,
		Replicas:    c.Replicas,
		Duplicates:  c.CommandDuplicateWindow,
	}
}

// FlagsBucket returns the configuration of the flag-rule bucket.
func (c Config) FlagsBucket() jetstream.KeyValueConfig {
	c = c.WithDefaults()
	return jetstream.KeyValueConfig{
		Bucket:      c.Names.FlagsBucket,
		Description: "flag rules: one key per flag, lines of SCOPE PRIORITY VALUE",
		History:     c.FlagHistory,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
	}
}

// StatusBucket returns the configuration of the worker status bucket.
func (c Config) StatusBucket() jetstream.KeyValueConfig {
	c = c.WithDefaults()
	return jetstream.KeyValueConfig{
		Bucket:      c.Names.StatusBucket,
		Description: "worker status: rules in force and rule problems, one key per worker",
		History:     1,
		TTL:         c.StatusTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
	}
}

// KeyBucket returns the configuration of the staging DKIM key bucket
// (contracts.Names.KeyBucket): one key per key record,
// "selector._domainkey.domain", valued with the TXT record. Workers read
// it before DNS. It is for staging and development only.
func (c Config) KeyBucket() jetstream.KeyValueConfig {
	c = c.WithDefaults()
	return jetstream.KeyValueConfig{
		Bucket:      c.Names.KeyBucket,
		Description: "STAGING ONLY, not for production: DKIM key records (selector._domainkey.domain -> TXT value) workers consult before DNS",
		History:     8,
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
	}
}

// ClaimBucket returns the configuration of the claim bucket: an Object
// Store bucket on file storage (its stream is OBJ_ + the bucket name,
// DiscardNew, so a full bucket refuses new mail rather than dropping
// stored mail), with the streams' replicas and ClaimMaxBytes. Objects
// have no age limit: a claimed mail's object lives until its outcome is
// stored, its dead letter is dealt with, or the orphan collector takes it
// (docs/architecture.md, "Large mail").
func (c Config) ClaimBucket() jetstream.ObjectStoreConfig {
	c = c.WithDefaults()
	return jetstream.ObjectStoreConfig{
		Bucket:      c.Names.ClaimBucket,
		Description: "raw mail too large for a message, referenced by the Mailscope-Claim header",
		Storage:     jetstream.FileStorage,
		Replicas:    c.Replicas,
		MaxBytes:    c.ClaimMaxBytes,
	}
}

// ArchiveStream returns the configuration of the archive of recent mail:
// the mail stream republishes every mail it stores on ArchiveSubject
// (see MailStream) and the archive keeps them, limits retention (the
// workers' acks do not remove from it), the oldest mail discarded first
// at ArchiveMaxAge or ArchiveMaxBytes. A mirror would not do: a work
// queue removes a mail once acknowledged, whether or not a mirror has
// copied it yet. Claimed mail is archived as its reference (the body is
// in the claim bucket until processed).
func (c Config) ArchiveStream() jetstream.StreamConfig {
	c = c.WithDefaults()
	return jetstream.StreamConfig{
		Name:        c.Names.ArchiveStream,
		Description: "opt-in archive of recent incoming mail (raw, personal data included) for mailscope flags preview",
		Subjects:    []string{c.Names.ArchiveSubject},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Discard:     jetstream.DiscardOld,
		MaxAge:      c.ArchiveMaxAge,
		MaxBytes:    c.ArchiveMaxBytes,
		MaxMsgSize:  c.MaxMsgSize,
		Replicas:    c.Replicas,
		Duplicates:  c.DuplicateWindow,
	}
}

// Run creates or updates every object; the key bucket only when
// Names.KeyBucket is set, the archive only when Archive. It stops at the first error, which names the
// object.
func Run(ctx context.Context, js jetstream.JetStream, c Config) error {
	c = c.WithDefaults()
	if err := c.checkWindows(); err != nil {
		return err
	}
	var scs []jetstream.StreamConfig
	if c.Archive() { // before the mail stream republishes to it
		scs = append(scs, c.ArchiveStream())
	}
	scs = append(scs, c.MailStream(), c.HeldStream(), c.OutcomeStream(), c.DeadStream(), c.CommandStream())
	for _, sc := range scs {
		if _, err := js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("provision stream %s: %w", sc.Name, err)
		}
	}
	for stream, cc := range map[string]jetstream.ConsumerConfig{c.Names.MailStream: c.Consumer(), c.Names.HeldStream: c.HeldConsumer()} {
		if _, err := js.CreateOrUpdateConsumer(ctx, stream, cc); err != nil {
			return fmt.Errorf("provision consumer %s on %s: %w", cc.Durable, stream, err)
		}
	}
	buckets := []jetstream.KeyValueConfig{c.FlagsBucket(), c.StatusBucket()}
	if c.Names.KeyBucket != "" {
		buckets = append(buckets, c.KeyBucket())
	}
	for _, kc := range buckets {
		if _, err := js.CreateOrUpdateKeyValue(ctx, kc); err != nil {
			return fmt.Errorf("provision bucket %s: %w", kc.Bucket, err)
		}
	}
	if _, err := js.CreateOrUpdateObjectStore(ctx, c.ClaimBucket()); err != nil {
		return fmt.Errorf("provision object store %s: %w", c.Names.ClaimBucket, err)
	}
	return nil
}

// checkWindows refuses outcome or dead-letter windows shorter than the
// mail window: a resend stored again inside the mail window, or
// processed again after it, would then get a second outcome or dead
// letter.
func (c Config) checkWindows() error {
	for _, w := range []struct {
		name string
		d    time.Duration
	}{{"outcome", c.OutcomeDuplicateWindow}, {"dead-letter", c.DeadDuplicateWindow}, {"command", c.CommandDuplicateWindow}} {
		if w.d < c.DuplicateWindow {
			return fmt.Errorf("provision: the %s duplicate window %v is shorter than the mail stream's %v: want at least %v (the mail window plus the redelivery span)",
				w.name, w.d, c.DuplicateWindow, c.DuplicateWindow+RedeliverySpan)
		}
	}
	return nil
}
