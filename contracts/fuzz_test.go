package contracts_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mailscope/mailscope/contracts"
)

// FuzzDecodeEnvelope feeds DecodeEnvelope headers as any client could
// write them: it never panics, and an envelope it accepts encodes into
// headers that decode to the same envelope (the worker reads what the
// producer wrote, and a copy of a copy is the same mail).
func FuzzDecodeEnvelope(f *testing.F) {
	good := contracts.Envelope{ID: "3X5NQF4W2WPHW5KQ3B6VJXTAFQ2LD7FJ", MailFrom: "alice@example.com",
		RcptTo: []string{"bob@example.org", "carol@example.net"}, ReceivedAt: time.Date(2026, 12, 1, 10, 0, 0, 123, time.UTC),
		ClientAddr: "192.0.2.1:4711", Helo: "mx.example.com", Protocol: "smtp"}
	f.Add(good.ID, good.MailFrom, strings.Join(good.RcptTo, "\n"), good.ReceivedAt.Format(time.RFC3339Nano), good.Helo, "", "")
	f.Add("id", "", "postmaster", "2026-12-01T10:00:00Z", "", "claim.abc", "2048")
	f.Add("id", "bad\x00sender", "<x>", "yesterday", "h\r\nX: y", "claim.abc", "-1")
	f.Add("", "a@b", "c@d", "2026-12-01T10:00:00+02:00", "", "", "99999999999999999999")
	f.Fuzz(func(t *testing.T, id, from, rcpts, receivedAt, helo, claim, claimSize string) {
		h := nats.Header{}
		h.Set(contracts.HeaderMsgID, id)
		h.Set(contracts.HeaderMailFrom, from)
		for _, r := range strings.Split(rcpts, "\n") {
			h.Add(contracts.HeaderRcptTo, r)
		}
		h.Set(contracts.HeaderReceivedAt, receivedAt)
		h.Set(contracts.HeaderHelo, helo)
		h.Set(contracts.HeaderProtocol, "smtp")
		if claim != "" {
			h.Set(contracts.HeaderClaim, claim)
			h.Set(contracts.HeaderClaimSize, claimSize)
		}
		env, err := contracts.DecodeEnvelope(h)
		if err != nil {
			return
		}
		again := nats.Header{}
		env.Encode(again)
		back, err := contracts.DecodeEnvelope(again)
		if err != nil {
			t.Fatalf("an accepted envelope %+v does not decode once encoded: %v", env, err)
		}
		if !reflect.DeepEqual(env, back) {
			t.Fatalf("round trip changed the envelope:\n%+v\n%+v", env, back)
		}
	})
}
