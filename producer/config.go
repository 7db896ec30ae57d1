package producer

import (
	"log/slog"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

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
	// MaxSize is the largest mail accepted, in bytes: a mail of exactly
	// MaxSize bytes is stored, larger mail is refused with 552 5.3.4
	// (also when MAIL FROM announces a larger SIZE). EHLO advertises it
	// as SIZE. Default 32 MiB (maddy's default; hosted inbound services
	// take 30-40 MB). It is not bound by the server's max_payload: mail
	// above ClaimThreshold travels by claim check.
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
	// PublishTimeout bounds the time to store one mail, in total: an
	// attempt that timed out (after 2s, or PublishTimeout when shorter),
	// found no responders or lost its connection is tried again under
	// the same id until it is spent (see NewPublisher). Default 5
	// seconds. Past it the MTA gets a 4xx.
	PublishTimeout time.Duration
	// CommandTimeout bounds the wait for each command line (RFC 5321
	// 4.5.3.2.7 asks a server for at least 5 minutes). Default 5 minutes.
	// Past it the client gets 421 4.4.2 and the connection is closed.
	CommandTimeout time.Duration
	// DataTimeout bounds the whole of one mail's content: from the 354
	// reply to DATA until the terminating dot (or one BDAT chunk), however
	// the client paces its bytes. Default 10 minutes (an 8 MiB mail needs
	// 14 KB/s). Past it: 421 4.4.2, connection closed, nothing stored.
	DataTimeout time.Duration
	// IdleTimeout bounds how long a connection may go without completing
	// a mail: it runs from the connection's start and again from the end
	// of each mail's data, so a client that keeps sending commands (NOOP,
	// RSET, slow RCPTs) without delivering cannot hold the connection.
	// Default 15 minutes (more than DataTimeout plus a transaction's
	// commands). Past it: 421 4.4.2, connection closed.
	IdleTimeout time.Duration
	// WriteTimeout bounds each reply written to the client, and the
	// grace period Run gives open transactions on shutdown. Default 1
	// minute.
	WriteTimeout time.Duration
	// MaxCommandLine is the longest command line accepted, in bytes with
	// its CRLF. Default 2000: go-smtp's own default, twice the 1000 octets
	// of RFC 5321 4.5.3.1.6 (commands are limited to 512 there, plus what
	// extensions add). A longer line is discarded unread and answered
	// 500 5.5.2; the connection stays usable.
	MaxCommandLine int
	// MaxDataLine is the longest line accepted in a mail's content, in
	// bytes with its CRLF and without the dot added for transparency.
	// Default 1 MiB: RFC 5321 allows 1000, but real mail (generated HTML,
	// unwrapped base64) has far longer lines and MTAs relay them; no MTA
	// sends a line of a mebibyte. A longer line gets 554 5.6.0, nothing
	// is stored, the connection stays usable.
	MaxDataLine int
	// MaxHeaderBytes caps the mail's header section: every header field
	// with its line ends, without the empty line that ends the section.
	// Default 1 MiB, the largest header section common MTAs pass on
	// (Exim's header_maxsize; Postfix keeps at most 100 KiB). Over it:
	// 554 5.6.0, nothing stored.
	MaxHeaderBytes int
	// MaxHeaderFields caps the number of header fields (folded lines
	// count once). Default 1000 (Postfix bounces mail after 50 Received
	// fields; real mail has a few dozen fields). Over it: 554 5.6.0,
	// nothing stored.
	MaxHeaderFields int
	// MaxConnections caps the connections open at once, SMTP and LMTP
	// together. Default 1000: an idle connection costs about 20 KiB
	// (goroutine, buffers), so 1000 stay within a few tens of MiB of the
	// producer pod's 512 MiB, leaving the rest to the mail being read. A
	// connection over it is answered 421 4.7.0 and closed.
	MaxConnections int
	// MaxClientConnections caps the connections open at once from one
	// client: one IPv4 address, or one IPv6 /64 (a single host usually
	// owns a whole /64). Loopback is not exempt. Default 500, half of
	// MaxConnections as Postfix's defaults have it (50 per client of 100
	// processes), so one runaway client leaves half the capacity to the
	// others; that is 25 times the 20 parallel deliveries Postfix opens
	// to one destination by default (the MTA in front of the producer
	// is usually its only client). A connection over it is answered
	// 421 4.7.0 and closed.
	MaxClientConnections int
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
	// TracerProvider makes the span of each mail transaction, whose
	// trace context travels with the mail to the workers. Default the
	// global provider (otel.GetTracerProvider(), see package telemetry).
	TracerProvider trace.TracerProvider
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
	if c.CommandTimeout <= 0 {
		c.CommandTimeout = 5 * time.Minute
	}
	if c.DataTimeout <= 0 {
		c.DataTimeout = 10 * time.Minute
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 15 * time.Minute
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = time.Minute
	}
	if c.MaxCommandLine <= 0 {
		c.MaxCommandLine = 2000
	}
	if c.MaxDataLine <= 0 {
		c.MaxDataLine = 1 << 20
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = 1 << 20
	}
	if c.MaxHeaderFields <= 0 {
		c.MaxHeaderFields = 1000
	}
	if c.MaxConnections <= 0 {
		c.MaxConnections = 1000
	}
	if c.MaxClientConnections <= 0 {
		c.MaxClientConnections = 500
	}
	c.Names = c.Names.WithDefaults()
	if c.TracerProvider == nil {
		c.TracerProvider = otel.GetTracerProvider()
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Batch.Logger == nil {
		c.Batch.Logger = c.Logger
	}
	c.Batch = c.Batch.withDefaults()
	return c
}
