package loadtest

import (
	"crypto"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mailscope/mailscope/contracts"
)

// Limits that keep a load test bounded whatever it is given.
const (
	// MaxCount is the most mails one run sends.
	MaxCount = 10_000_000
	// MaxDuration is the longest one run sends.
	MaxDuration = time.Hour
	// MinSize is the smallest mail size: room for the headers.
	MinSize = 512
	// MaxRate is the highest open-loop rate, mails per second.
	MaxRate = 1_000_000
)

// Config says what a run drives and how hard. Every field but the
// addresses has a usable default; the zero value with SMTPAddr set sends
// 100 mails of 8 KiB over 4 SMTP connections.
type Config struct {
	// SMTPAddr is the producer's SMTP address ("host:port"); empty when
	// only LMTP is driven.
	SMTPAddr string
	// LMTPAddr is the producer's LMTP address; empty for none.
	LMTPAddr string
	// Clients is the number of concurrent SMTP connections, each sending
	// mail after mail. Default 4 when SMTPAddr is set, else 0.
	Clients int
	// LMTPClients is the number of concurrent LMTP connections. Default 4
	// when only LMTPAddr is set, else 0.
	LMTPClients int

	// NATSURL is where outcome events are read: a core NATS subscription
	// on OutcomePrefix + ".>", opened before the first mail is sent.
	// Empty: no end-to-end measurement, only the SMTP side.
	NATSURL string
	// NATSOptions are added to the connection's options (credentials,
	// TLS).
	NATSOptions []nats.Option
	// OutcomePrefix is the outcome subject prefix. Default
	// "mail.outcome".
	OutcomePrefix string

	// Count is how many mails are sent in all, shared by every client.
	// Default 100 when Duration is not set (the loadtest command's
	// --count defaults to 1000); at most MaxCount.
	Count int
	// Duration, when set, stops sending once it has passed (or once
	// Count mails are sent, if Count is set too). At most MaxDuration.
	Duration time.Duration
	// Size is the size of each mail in bytes, before any DKIM signature.
	// Default 8 KiB; at least MinSize.
	Size int
	// Corpus, when set, is what is sent: mail n is corpus mail n-1,
	// modulo the corpus's size, byte for byte (Size and Signer are then
	// unused), and every outcome is checked against what the corpus
	// mail must get (its Kind's DKIM result; disposition processed).
	// Count then defaults to the corpus's size.
	Corpus *Corpus

	// Rate, when set, makes the run an open loop: mail n's DATA is
	// scheduled at start + (n-1)/Rate seconds whatever the replies, and
	// its latencies count from that time, so that a slow system cannot
	// hide its queueing by slowing the client (no coordinated
	// omission). A connection that is free early sends MAIL and RCPT,
	// then waits for the time. Clients must be enough to have a free
	// connection at every scheduled time; a late DATA is counted in
	// Report.Late. Default 0: a closed loop, every connection sending
	// its next mail as soon as the last is answered.
	Rate float64

	// Signer, when set, DKIM-signs every mail. Its public key must be
	// where the workers look for it (the dev key source, a staging key
	// bucket) for the signatures to pass; the report counts the results.
	Signer *Signer

	// DeadEvery, when set, makes every DeadEvery-th mail one that is no
	// RFC 5322 mail (no header block): workers dead-letter it, and its
	// outcome must be "dead". It drives the dead-letter path under load.
	DeadEvery int

	// Drain is how long to wait, once the last mail is answered, for the
	// outcomes still outstanding. Default 30s.
	Drain time.Duration
	// Timeout bounds every dial and SMTP command. Default 30s.
	Timeout time.Duration
	// AllowRemote permits addresses that are not loopback. Default false:
	// a load test runs against loopback only, so that it cannot flood a
	// real MTA by mistake.
	AllowRemote bool
}

// Signer says how mails are signed.
type Signer struct {
	// Domain and Selector are the tags d= and s=.
	Domain, Selector string
	// Key is the private key (ed25519 signs fastest, keeping the client's
	// share of the CPU small).
	Key crypto.Signer
}

// withDefaults returns c with every unset field at its default, or an
// error when c cannot run.
func (c Config) withDefaults() (Config, error) {
	if c.SMTPAddr == "" && c.LMTPAddr == "" {
		return c, errors.New("loadtest: need an SMTP or an LMTP address")
	}
	if c.Clients < 0 || c.LMTPClients < 0 || c.Count < 0 || c.Duration < 0 || c.Size < 0 || c.DeadEvery < 0 {
		return c, errors.New("loadtest: negative clients, count, duration, size or dead-every")
	}
	if c.Clients == 0 && c.LMTPClients == 0 {
		if c.SMTPAddr != "" {
			c.Clients = 4
		} else {
			c.LMTPClients = 4
		}
	}
	if c.Clients > 0 && c.SMTPAddr == "" {
		return c, errors.New("loadtest: SMTP clients but no SMTP address")
	}
	if c.LMTPClients > 0 && c.LMTPAddr == "" {
		return c, errors.New("loadtest: LMTP clients but no LMTP address")
	}
	if c.Count == 0 && c.Duration == 0 {
		c.Count = 100
		if c.Corpus != nil {
			c.Count = len(c.Corpus.Mails)
		}
	}
	if c.Corpus != nil && len(c.Corpus.Mails) == 0 {
		return c, errors.New("loadtest: empty corpus")
	}
	if c.Rate < 0 || c.Rate > MaxRate {
		return c, fmt.Errorf("loadtest: rate %g mails/s: want 0 (closed loop) to %d", c.Rate, MaxRate)
	}
	if c.Count > MaxCount {
		return c, fmt.Errorf("loadtest: count %d over the limit of %d", c.Count, MaxCount)
	}
	if c.Duration > MaxDuration {
		return c, fmt.Errorf("loadtest: duration %v over the limit of %v", c.Duration, MaxDuration)
	}
	if c.Size == 0 {
		c.Size = 8 << 10
	}
	if c.Size < MinSize {
		return c, fmt.Errorf("loadtest: size %d under the minimum of %d", c.Size, MinSize)
	}
	if c.Signer != nil && (c.Signer.Key == nil || c.Signer.Domain == "" || c.Signer.Selector == "") {
		return c, errors.New("loadtest: a signer needs a key, a domain and a selector")
	}
	if c.OutcomePrefix == "" {
		c.OutcomePrefix = contracts.DefaultNames().OutcomePrefix
	}
	if c.Drain == 0 {
		c.Drain = 30 * time.Second
	}
	if c.Timeout == 0 {
		c.Timeout = 30 * time.Second
	}
	if !c.AllowRemote {
		for _, a := range []string{c.SMTPAddr, c.LMTPAddr} {
			if a != "" && !isLoopback(a) {
				return c, fmt.Errorf("loadtest: %s is not a loopback address (set AllowRemote to drive it anyway)", a)
			}
		}
	}
	return c, nil
}

// isLoopback reports whether addr ("host:port") names this machine: a
// loopback IP or "localhost". Host names are not resolved.
func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ProducerConnections is the connection cap, in total and per client
// address, of the producers the load test starts (the producer's
// defaults are 1,000 and 500): all of its clients come from one address,
// and the open loop may hold more connections at once than an MTA would.
const ProducerConnections = 4096
