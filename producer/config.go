package producer

import (
	"log/slog"
	"time"

	"github.com/mailscope/mailscope/contracts"
)

// Config configures the producer: the SMTP and LMTP servers an MTA hands
// mail to.
type Config struct {
	// SMTPAddr is the SMTP listen address. Default "127.0.0.1:2525";
	// "-" disables SMTP.
	SMTPAddr string
	// LMTPAddr is the LMTP listen address. Default "127.0.0.1:2424";
	// "-" disables LMTP.
	LMTPAddr string
	// Domain is the host name announced in the greeting. Default
	// "localhost".
	Domain string
	// MaxSize is the largest mail accepted, in bytes; larger mail is
	// refused with 552 5.3.4. Default 32 MiB (maddy's default; hosted
	// inbound services take 30-40 MB). It is not bound by the server's
	// max_payload: mail above ClaimThreshold travels by claim check.
	MaxSize int64
	// ClaimThreshold is the largest mail stored inline, as the data of
	// its message; larger mail is streamed into the claim bucket
	// (Names.ClaimBucket) and its message carries only a reference
	// (contracts.HeaderClaim), so that a transaction never holds more
	// than this much of a mail in memory. Default 1 MiB, and never more
	// than the server's max_payload less 64 KiB for the envelope headers
	// (so 960 KiB on a server with NATS's default max_payload of 1 MiB).
	// Nearly all mail is far smaller and keeps the one-message path
	// (one write, group-committed); above it, the object store's extra
	// round trips (an info lookup, the metadata write) are small beside
	// the chunks themselves.
	ClaimThreshold int64
	// MaxRecipients per transaction. Default 100.
	MaxRecipients int
	// PublishTimeout bounds the wait for JetStream's acknowledgement of
	// one publish. Default 5 seconds. Past it the MTA gets a 4xx.
	PublishTimeout time.Duration
	// ReadTimeout and WriteTimeout bound each network read and write.
	// Defaults 5 minutes and 1 minute.
	ReadTimeout, WriteTimeout time.Duration
	// Batch configures group commit: the mails of concurrent
	// transactions are stored as one atomic batch, sharing the server's
	// fsync, and each transaction is answered once its batch is
	// acknowledged (451 for every mail of a batch that failed). Default
	// on; Batch.Off turns it off. The mail stream must allow atomic
	// publish (AllowAtomicPublish, which provisioning always sets), else
	// mail is stored one by one, with a warning.
	Batch Batching
	// Names of the NATS objects; MailSubject and ClaimBucket are used.
	Names contracts.Names
	// Logger for connection-level errors. Default slog.Default().
	Logger *slog.Logger
}

// headerRoom is what the envelope headers may take beside the mail in one
// NATS message.
const headerRoom = 64 << 10

// WithDefaults returns c with every unset field at its documented
// default, and ClaimThreshold capped by maxPayload (the server's
// max_payload; 0 if unknown).
func (c Config) WithDefaults(maxPayload int64) Config {
	if c.SMTPAddr == "" {
		c.SMTPAddr = "127.0.0.1:2525"
	}
	if c.LMTPAddr == "" {
		c.LMTPAddr = "127.0.0.1:2424"
	}
	if c.Domain == "" {
		c.Domain = "localhost"
	}
	if c.MaxSize <= 0 {
		c.MaxSize = 32 << 20
	}
	if c.ClaimThreshold <= 0 {
		c.ClaimThreshold = 1 << 20
	}
	if maxPayload > headerRoom && c.ClaimThreshold > maxPayload-headerRoom {
		c.ClaimThreshold = maxPayload - headerRoom
	}
	if c.MaxRecipients <= 0 {
		c.MaxRecipients = 100
	}
	if c.PublishTimeout <= 0 {
		c.PublishTimeout = 5 * time.Second
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 5 * time.Minute
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = time.Minute
	}
	c.Names = c.Names.WithDefaults()
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Batch.Logger == nil {
		c.Batch.Logger = c.Logger
	}
	c.Batch = c.Batch.withDefaults()
	return c
}
