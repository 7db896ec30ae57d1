package workers

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mailscope/mailscope/contracts"
)

// holdInfo is why, and since when, a mail has been held: read from the
// headers of a held copy, or of a resumed one, which keeps them.
type holdInfo struct {
	reason string // contracts.HoldPause, contracts.HoldDNS, or "" (never held, or held before reasons were recorded)
	since  time.Time
}

// holdInfoOf reads the hold headers of h; a missing or unreadable time
// leaves since zero.
func holdInfoOf(h nats.Header) holdInfo {
	hi := holdInfo{reason: h.Get(contracts.HeaderHeldReason)}
	if t, err := time.Parse(time.RFC3339Nano, h.Get(contracts.HeaderHeldSince)); err == nil {
		hi.since = t.UTC()
	}
	return hi
}

// label is the reason as a metric label: one of a bounded set.
func (hi holdInfo) label() string {
	switch hi.reason {
	case contracts.HoldPause, contracts.HoldDNS:
		return hi.reason
	}
	return "unknown"
}

// holdReason is the reason a failure of class Held gives: mail.pause, or
// DNS silent on the last attempt.
func holdReason(err error) string {
	if errors.Is(err, errHeld) {
		return contracts.HoldPause
	}
	return contracts.HoldDNS
}

// nextHold is the hold a mail held now for reason starts or continues:
// the time of its first hold for the same reason is kept, so that
// DNSHoldMax bounds the whole wait for DNS, across re-holds.
func nextHold(prev holdInfo, reason string, now time.Time) holdInfo {
	if prev.reason == reason && !prev.since.IsZero() {
		return holdInfo{reason: reason, since: prev.since}
	}
	return holdInfo{reason: reason, since: now.UTC()}
}

// encode sets the hold headers of a held copy.
func (hi holdInfo) encode(h nats.Header) {
	h.Set(contracts.HeaderHeldReason, hi.reason)
	h.Set(contracts.HeaderHeldSince, hi.since.Format(time.RFC3339Nano))
}

// dnsGivenUp is the context key of the time since which a mail has
// waited for DNS past DNSHoldMax.
type dnsGivenUp struct{}

// withDNSGivenUp returns ctx marked so that authentication records a
// DKIM temperror instead of failing the mail with it: the mail has
// waited for DNS, held since since, for DNSHoldMax already.
func withDNSGivenUp(ctx context.Context, since time.Time) context.Context {
	return context.WithValue(ctx, dnsGivenUp{}, since)
}

// dnsGivenUpSince reports whether ctx is so marked, and the hold's start.
func dnsGivenUpSince(ctx context.Context) (time.Time, bool) {
	t, ok := ctx.Value(dnsGivenUp{}).(time.Time)
	return t, ok
}

// dnsContext returns ctx for evaluating d: marked when d has waited for
// DNS for DNSHoldMax or longer.
func (w *Worker) dnsContext(ctx context.Context, d *delivery) context.Context {
	if d.hold.reason == contracts.HoldDNS && !d.hold.since.IsZero() && time.Since(d.hold.since) >= w.cfg.DNSHoldMax {
		return withDNSGivenUp(ctx, d.hold.since)
	}
	return ctx
}

// heldStat is the held mail in flight of one reason.
type heldStat struct {
	count  int64
	oldest time.Duration // since the longest-held one's hold began
}

// heldStats returns the held mail this worker has in flight, by reason
// label; every reason is present, at zero when none is held.
func (w *Worker) heldStats() map[string]heldStat {
	stats := map[string]heldStat{contracts.HoldPause: {}, contracts.HoldDNS: {}}
	now := time.Now()
	w.heldMail.Range(func(_, v any) bool {
		hi := v.(holdInfo)
		s := stats[hi.label()]
		s.count++
		if !hi.since.IsZero() {
			s.oldest = max(s.oldest, now.Sub(hi.since))
		}
		stats[hi.label()] = s
		return true
	})
	return stats
}
