package rules

import (
	"testing"
)

// Rewatch (called by workers when their NATS connection is back) drops
// the watcher and reloads every key: the rules stay in force throughout,
// and later changes still arrive.
func TestStoreRewatch(t *testing.T) {
	b := setupStore(t, map[string]string{FlagHandler: "default 1 quarantine"})
	if err := b.store.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	before := b.store.Snapshot()
	b.store.Rewatch()
	waitForLog(t, b.logs, "re-watch requested")
	waitFor(t, b.store, "the reload", func(s *Snapshot) bool { return s != before })
	if got := handler(b.store.Snapshot(), &Facts{}); got != "quarantine" {
		t.Errorf("after the re-watch: handler %q, want quarantine", got)
	}
	rev, err := b.kv.PutString(t.Context(), FlagHandler, "default 1 discard")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, b.store, "the put after the re-watch", func(s *Snapshot) bool {
		rs := s.RuleSet(FlagHandler)
		return rs != nil && rs.Revision == rev
	})
}
