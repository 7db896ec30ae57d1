package workers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"

	"github.com/mailscope/mailscope/contracts"
)

// The orphan collector deletes objects of the claim bucket that no
// message will ever reference: a producer stopped (killed, lost its
// connection) after writing a large mail's body but before storing its
// message, or one whose delete of an unreferenced object failed. The
// rule, safe without coordination between workers:
//
//   - an adopted object belongs to a mail that reached a worker (workers
//     adopt before they ack, hold or dead-letter): never an orphan;
//   - a referencing message is stored within the producer's publish
//     timeout after the object, and the mail stream is a work queue whose
//     first message is the oldest one not yet acknowledged. So once the
//     stream is empty, or its first message is newer than the object's
//     modification time plus OrphanAge, every message that could
//     reference the object has been delivered, and adopted it;
//   - the object's metadata is read again after that check and the object
//     deleted only if still not adopted, so that a mail adopted (and
//     acknowledged) meanwhile keeps its body.

// orphansCollected counts the objects the collector deleted.
var orphansCollected, _ = otel.Meter("github.com/mailscope/mailscope/workers").Int64Counter("mailscope.claims.orphans_collected",
	metric.WithDescription("objects of the claim bucket deleted as orphans: written by a producer, referenced by no message"))

// CollectOrphans deletes the claim bucket's orphans (see above) once and
// returns how many it deleted. Workers run it every OrphanAge/4; it is
// exported for tests and tools. Running it on several workers at once is
// harmless.
func (w *Worker) CollectOrphans(ctx context.Context) (int, error) {
	obs, err := w.claims(ctx)
	if err != nil {
		return 0, err
	}
	list, err := obs.List(ctx)
	if errors.Is(err, jetstream.ErrNoObjectsFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("list claim bucket: %w", err)
	}
	age := w.cfg.OrphanAge
	var old []*jetstream.ObjectInfo
	for _, info := range list {
		if info.Headers.Get(contracts.ClaimAdopted) == "" && time.Since(info.ModTime) > age {
			old = append(old, info)
		}
	}
	if len(old) == 0 {
		return 0, nil
	}
	// The stream's state is read after the listing: it is at least as
	// recent as the metadata seen.
	s, err := w.js.Stream(ctx, w.cfg.Names.MailStream)
	if err != nil {
		return 0, fmt.Errorf("mail stream %s: %w", w.cfg.Names.MailStream, err)
	}
	state := s.CachedInfo().State
	n := 0
	for _, info := range old {
		if state.Msgs > 0 && !state.FirstTime.After(info.ModTime.Add(age)) {
			continue // a message that may reference it is not delivered yet
		}
		again, err := obs.GetInfo(ctx, info.Name)
		if err != nil || again.NUID != info.NUID || again.Headers.Get(contracts.ClaimAdopted) != "" {
			continue // gone, replaced or adopted meanwhile
		}
		if err := obs.Delete(ctx, info.Name); err != nil {
			w.log.Warn("orphaned claim object not deleted; next round", slog.String("object", info.Name), slog.Any("err", err))
			continue
		}
		n++
		orphansCollected.Add(ctx, 1)
		w.log.Info("orphaned claim object collected", slog.String("object", info.Name),
			slog.Time("written", info.ModTime), slog.Uint64("size", info.Size))
	}
	return n, nil
}

// collectOrphans runs CollectOrphans every OrphanAge/4, jittered by up to
// a quarter of that on either side so that replicas spread out, until
// ctx is done.
func (w *Worker) collectOrphans(ctx context.Context) {
	every := w.cfg.OrphanAge / 4
	for {
		d := every - every/4 + rand.N(every/2+1)
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
		if _, err := w.CollectOrphans(ctx); err != nil && ctx.Err() == nil {
			w.log.Warn("orphan collection failed; next round", slog.Any("err", err))
		}
	}
}
