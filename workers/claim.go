package workers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/contracts"
)

// A claimed mail (docs/architecture.md, "Large mail") arrives as a
// message with empty data and a reference (contracts.HeaderClaim) to the
// object of the claim bucket that holds it. On every delivery the worker
// first marks the object adopted (idempotent), so that the orphan
// collector never takes the body of a mail that reached a worker, then
// reads it into one buffer of the object's size and processes it like
// any mail. Once the outcome is stored the object is deleted, then the
// mail acknowledged. A dead-lettered or held mail keeps its object: the
// dead letter and the held copy carry the reference.

// claimReadTimeout bounds the adoption and the read of one object: a read
// that stalls is a Transient failure, retried.
const claimReadTimeout = 2 * time.Minute

// claimBucket is the worker's handle on the claim bucket, bound on first
// use: a worker whose fleet never sees large mail never needs it.
type claimBucket struct {
	mu  sync.Mutex
	obs jetstream.ObjectStore
}

// claims returns the bound claim bucket.
func (w *Worker) claims(ctx context.Context) (jetstream.ObjectStore, error) {
	w.claimBucket.mu.Lock()
	defer w.claimBucket.mu.Unlock()
	if w.claimBucket.obs == nil {
		obs, err := w.js.ObjectStore(ctx, w.cfg.Names.ClaimBucket)
		if err != nil {
			return nil, fmt.Errorf("claim bucket %s: %w", w.cfg.Names.ClaimBucket, err)
		}
		w.claimBucket.obs = obs
	}
	return w.claimBucket.obs, nil
}

// errClaimMissing is wrapped by the Malformed error of a claimed mail
// whose object is gone: its outcome was stored and the object deleted
// just before a lost ack, or the object was removed by hand.
var errClaimMissing = errors.New("claimed mail body missing")

// claimMissing is the Malformed error of a claim whose object is gone.
func (w *Worker) claimMissing(c *contracts.Claim) error {
	return malformed("%w: object %s not in bucket %s (its outcome may be stored already)", errClaimMissing, c.Object, w.cfg.Names.ClaimBucket)
}

// adopt marks d's object adopted, once per object (a redelivery finds the
// mark and writes nothing). It returns nil for a mail that is not
// claimed, a Malformed error when the object is missing and a Transient
// one when NATS fails.
func (w *Worker) adopt(ctx context.Context, d *delivery) error {
	if d.claim == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, claimReadTimeout)
	defer cancel()
	obs, err := w.claims(ctx)
	if err != nil {
		return transient("adopt claimed mail: %v", err)
	}
	info, err := obs.GetInfo(ctx, d.claim.Object)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return w.claimMissing(d.claim)
	}
	if err != nil {
		return transient("adopt claimed mail %s: %v", d.claim.Object, err)
	}
	if info.Headers.Get(contracts.ClaimAdopted) != "" {
		return nil
	}
	meta := info.ObjectMeta
	meta.Headers = nats.Header{}
	for k, v := range info.Headers {
		meta.Headers[k] = v
	}
	meta.Headers.Set(contracts.ClaimAdopted, time.Now().UTC().Format(time.RFC3339))
	err = obs.UpdateMeta(ctx, d.claim.Object, meta)
	if errors.Is(err, jetstream.ErrUpdateMetaDeleted) {
		return w.claimMissing(d.claim)
	}
	if err != nil {
		return transient("adopt claimed mail %s: %v", d.claim.Object, err)
	}
	return nil
}

// claimSlot waits for one of the MaxClaimed slots of claimed mail when d
// is claimed and returns its release; for any other mail it returns at
// once. The wait is bounded by the work ahead of it, and the mail is
// reported in progress meanwhile.
func (w *Worker) claimSlot(d *delivery) (release func()) {
	if d.claim == nil {
		return func() {}
	}
	w.claimSlots <- struct{}{}
	restore := tightGC()
	return func() {
		restore()
		<-w.claimSlots
	}
}

// claimGCPercent is the garbage collector's target while claimed mail is
// in process. Verifying and summarizing a large mail allocates about
// three times its size in short-lived copies (go-msgauth's
// canonicalization, nats.go's chunk reads) beside the one live buffer;
// under the roles' usual target (GOGC 400, cmd/mailscope/gc.go) that
// garbage grew a worker's peak resident set by 4.2 times a 30 MiB mail,
// at 25 by 1.5 times: under the 2x bound large mail must keep.
const claimGCPercent = 25

var (
	gcMu       sync.Mutex
	gcTight    int // claimed mails in process, in every worker of the process
	gcPrevious int // the target to restore when the last one is done
)

// tightGC lowers the garbage collector's target to claimGCPercent while
// a claimed mail is in process (unless it is lower already) and returns
// the function that ends it; the previous target is back once the last
// claimed mail in the process is done.
func tightGC() (restore func()) {
	gcMu.Lock()
	defer gcMu.Unlock()
	if gcTight == 0 {
		gcPrevious = debug.SetGCPercent(claimGCPercent)
		if gcPrevious >= 0 && gcPrevious < claimGCPercent {
			debug.SetGCPercent(gcPrevious)
		}
	}
	gcTight++
	var once sync.Once
	return func() {
		once.Do(func() {
			gcMu.Lock()
			defer gcMu.Unlock()
			if gcTight--; gcTight == 0 {
				debug.SetGCPercent(gcPrevious)
			}
		})
	}
}

// mailBytes returns d's raw mail: the message data, or for a claimed
// mail its object, read into a buffer of the object's size.
func (w *Worker) mailBytes(ctx context.Context, d *delivery) ([]byte, error) {
	if d.claim == nil {
		return d.msg.Data(), nil
	}
	ctx, cancel := context.WithTimeout(ctx, claimReadTimeout)
	defer cancel()
	obs, err := w.claims(ctx)
	if err != nil {
		return nil, transient("read claimed mail: %v", err)
	}
	res, err := obs.Get(ctx, d.claim.Object)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, w.claimMissing(d.claim)
	}
	if err != nil {
		return nil, transient("read claimed mail %s: %v", d.claim.Object, err)
	}
	defer res.Close()
	info, err := res.Info()
	if err != nil {
		return nil, transient("read claimed mail %s: %v", d.claim.Object, err)
	}
	if int64(info.Size) != d.claim.Size {
		return nil, malformed("claimed mail %s: object of %d bytes, the message says %d", d.claim.Object, info.Size, d.claim.Size)
	}
	raw, err := readObject(res, d.claim.Size)
	if err != nil {
		return nil, transient("read claimed mail %s: %v", d.claim.Object, err)
	}
	return raw, nil
}

// readObject reads an object of size bytes from r into one buffer
// allocated at that size, and reads on to the end, where nats.go checks
// the object's digest.
func readObject(r io.Reader, size int64) ([]byte, error) {
	raw := make([]byte, size)
	if _, err := io.ReadFull(r, raw); err != nil {
		return nil, err
	}
	var one [1]byte
	if n, err := r.Read(one[:]); n != 0 || !errors.Is(err, io.EOF) {
		if err == nil || errors.Is(err, io.EOF) {
			err = errors.New("object longer than its size")
		}
		return nil, err
	}
	return raw, nil
}

// dropClaim deletes d's object once its outcome is stored, before the
// ack; it reports whether the mail may be acknowledged. When the delete
// fails, the mail is handed back for a retry instead: the redelivery
// finds its outcome stored (deduplicated) and deletes again, so no
// object outlives its mail.
func (w *Worker) dropClaim(ctx context.Context, d *delivery) bool {
	if d.claim == nil {
		return true
	}
	ctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	obs, err := w.claims(ctx)
	if err == nil {
		err = obs.Delete(ctx, d.claim.Object)
	}
	if err == nil || errors.Is(err, jetstream.ErrObjectNotFound) {
		return true
	}
	delay := w.policy.backoff(d.attempt)
	d.logger().Warn("claimed mail's object not deleted after its outcome; the mail is retried to delete it",
		slog.String("object", d.claim.Object), slog.Duration("delay", delay), slog.Any("err", err))
	w.nak(d, delay)
	return false
}
