package producer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/mailscope/mailscope/contracts"
)

// Mail larger than ClaimThreshold travels by claim check
// (docs/architecture.md, "Large mail"): its bytes stream into an object
// of the claim bucket as they arrive, under a fresh unique name, while
// its content id is computed on the way; then the mail's message is
// published like any other, with empty data and the reference in its
// headers (contracts.Claim). The transaction holds at most the threshold
// and one chunk of the mail in memory.
//
// The object is deleted again when no message will reference it: the
// message was refused (451) or is a duplicate of a mail stored before
// (its message references that mail's own object). A producer stopped
// between the object and the message leaves an orphan, which workers
// collect after OrphanAge (workers/orphans.go).

// claimChunkSize is the size of the chunks an object is stored in:
// nats.go's default.
const claimChunkSize = 128 << 10

// claimBucket is the producer's handle on the claim bucket, bound on
// first use, so that a producer may start before provisioning.
type claimBucket struct {
	mu  sync.Mutex
	obs jetstream.ObjectStore
}

// store returns the bound claim bucket.
func (p *Producer) claimStore(ctx context.Context) (jetstream.ObjectStore, error) {
	p.claims.mu.Lock()
	defer p.claims.mu.Unlock()
	if p.claims.obs == nil {
		obs, err := p.pub.js.ObjectStore(ctx, p.cfg.Names.ClaimBucket)
		if err != nil {
			return nil, fmt.Errorf("claim bucket %s: %w", p.cfg.Names.ClaimBucket, err)
		}
		p.claims.obs = obs
	}
	return p.claims.obs, nil
}

// claimResults counts claimed mail by result: stored, duplicate (the
// object dropped, the mail was stored before), unavailable, too_large,
// read_error.
var claimResults, _ = otel.Meter("github.com/mailscope/mailscope/producer").Int64Counter("mailscope.producer.claims",
	metric.WithDescription("mail stored by claim check (above the claim threshold), by result"))

func countClaim(result string) {
	claimResults.Add(context.Background(), 1, metric.WithAttributes(attribute.String("result", result)))
}

// NewClaimName returns a new, unique object name for a claimed mail.
func NewClaimName() string { return "claim." + nuid.Next() }

// storeClaim stores a mail larger than the claim threshold: head is what
// read has taken of it, rest its remainder.
func (s *session) storeClaim(ctx context.Context, head []byte, rest io.Reader) error {
	log := s.p.cfg.Logger.With(slog.String("protocol", s.protocol), slog.String("client", s.client))
	obs, err := s.p.claimStore(ctx)
	if err != nil {
		// The rest is not read: go-smtp discards it before answering.
		s.p.met.mail(s.protocol, resultUnavailable)
		countClaim(resultUnavailable)
		log.Warn("large mail not stored; client told to retry", slog.Any("err", err))
		return errTempUnavailable
	}
	env := s.envelope()
	hash := contracts.NewContentHash(env.MailFrom, env.RcptTo)
	hash.Write(head)
	client := &clientReader{r: rest}
	body := io.MultiReader(bytes.NewReader(head), io.TeeReader(client, hash))
	name := NewClaimName()
	start := time.Now()
	info, err := obs.Put(ctx, jetstream.ObjectMeta{
		Name:    name,
		Headers: nats.Header{contracts.HeaderMailFrom: []string{env.MailFrom}, contracts.HeaderClientAddr: []string{env.ClientAddr}},
		Opts:    &jetstream.ObjectMetaOptions{ChunkSize: claimChunkSize},
	}, fullReader{body})
	if err != nil {
		// Put purged what it had written of the object.
		if client.err != nil {
			if _, result := dataError(client.err); result != "" {
				countClaim(result)
			}
			return s.readFailed(client.err)
		}
		s.p.met.mail(s.protocol, resultUnavailable)
		countClaim(resultUnavailable)
		log.Warn("large mail not stored; client told to retry", slog.String("object", name), slog.Any("err", err))
		return errTempUnavailable
	}
	env.ID = hash.ID()
	env.Claim = &contracts.Claim{Object: name, Size: int64(info.Size)}
	ack, err := s.p.pub.Publish(ctx, &env, nil)
	if err != nil {
		// Only a refusal by the server (stream full, message too large)
		// proves the message was not stored: then the object goes. After
		// a timeout or a lost connection the object stays: the publish may
		// still be stored (a new stream leader commits it later), and its
		// message then needs this object, as does the MTA's resend, which
		// is recognised as that mail and keeps no object of its own. If
		// no message ever references it, the workers' orphan collector
		// takes it after OrphanAge.
		if refusedByServer(err) {
			s.dropClaim(obs, name, log)
		}
		s.p.met.mail(s.protocol, resultUnavailable)
		countClaim(resultUnavailable)
		log.Warn("large mail not stored; client told to retry", slog.String("id", env.ID), slog.Any("err", err))
		return errTempUnavailable
	}
	if ack.Duplicate {
		// The same mail is stored already, with an object of its own.
		s.dropClaim(obs, name, log)
		countClaim("duplicate")
	} else {
		countClaim(resultStored)
	}
	mailStored(ctx, env.ID, int(info.Size), ack.Duplicate)
	s.p.met.published(s.protocol, start)
	s.p.met.mail(s.protocol, resultStored)
	s.stored(ctx, env.ID, ack.Sequence, int64(info.Size))
	return nil
}

// refusedByServer reports whether err is JetStream's answer refusing the
// publish, which is certain not to have stored it.
func refusedByServer(err error) bool {
	var apiErr *jetstream.APIError
	return errors.As(err, &apiErr)
}

// dropClaim deletes an object no message references, best effort: one
// left behind is collected by the workers' orphan collector.
func (s *session) dropClaim(obs jetstream.ObjectStore, name string, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), s.p.cfg.PublishTimeout)
	defer cancel()
	if err := obs.Delete(ctx, name); err != nil {
		log.Warn("unreferenced claim object not deleted; the orphan collector will", slog.String("object", name), slog.Any("err", err))
	}
}

// fullReader fills every Read as far as the reader allows, so that Put,
// which stores each Read as one chunk, stores full chunks rather than
// the SMTP reader's lines.
type fullReader struct{ r io.Reader }

func (f fullReader) Read(p []byte) (int, error) {
	n, err := io.ReadFull(f.r, p)
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	if n > 0 && errors.Is(err, io.EOF) {
		return n, nil
	}
	return n, err
}

// clientReader keeps the error the client's data ended with (over
// MaxSize, a broken connection), to tell it from a failure to store.
type clientReader struct {
	r   io.Reader
	err error
}

func (c *clientReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		c.err = err
	}
	return n, err
}
