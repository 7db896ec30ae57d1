package workers

import (
	"context"
	"encoding/json"
	"log/slog"
	"regexp"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/version"
)

// statusInterval is how often a worker rewrites its status entry even
// when nothing changed, so that it outlives the bucket's TTL.
const statusInterval = 30 * time.Second

// Status returns the worker's current status.
func (w *Worker) Status() contracts.WorkerStatus {
	st := contracts.WorkerStatus{
		Schema:    contracts.StatusSchema,
		Worker:    contracts.WorkerInfo{Name: w.cfg.Name, Version: version.Version, Env: w.cfg.Env},
		Ready:     w.Ready(),
		UpdatedAt: time.Now().UTC(),
		Rules:     map[string]uint64{},
		Problems:  []contracts.RuleProblem{},
		Unknown:   []string{},
	}
	snap := w.store.Snapshot()
	for _, f := range snap.Flags() {
		if rs := snap.RuleSet(f); rs != nil {
			st.Rules[f] = rs.Revision
		}
	}
	for _, p := range w.store.Problems() {
		rp := contracts.RuleProblem{Flag: p.Flag, Revision: p.Revision, Cause: p.Cause, KeptRevision: st.Rules[p.Flag]}
		for _, l := range p.Lines {
			rp.Errors = append(rp.Errors, l.Error())
		}
		st.Problems = append(st.Problems, rp)
		if p.Cause == rules.CauseUnknownFlag {
			st.Unknown = append(st.Unknown, p.Flag)
		}
	}
	return st
}

// StatusKey returns the key of a worker's status entry: its name with
// characters KV keys do not allow replaced by '_'.
func StatusKey(name string) string {
	k := badKeyChars.ReplaceAllString(name, "_")
	if k == "" {
		k = "worker"
	}
	return k
}

var badKeyChars = regexp.MustCompile(`[^-_=a-zA-Z0-9]`)

// reportStatus keeps the worker's status entry current: on every rule
// change and every statusInterval, until ctx is done. Failing to write
// is logged, never fatal: the status is for operators, mail goes on.
func (w *Worker) reportStatus(ctx context.Context, kv jetstream.KeyValue, store *rules.Store) {
	key := StatusKey(w.cfg.Name)
	tick := time.NewTicker(statusInterval)
	defer tick.Stop()
	for {
		changed := store.Changed()
		data, err := json.Marshal(w.Status())
		if err == nil {
			_, err = kv.Put(ctx, key, data)
		}
		if err != nil && ctx.Err() == nil {
			w.log.Warn("status not written", slog.String("bucket", w.cfg.Names.StatusBucket), slog.Any("err", err))
		}
		select {
		case <-ctx.Done():
			return
		case <-changed:
		case <-tick.C:
		}
	}
}
