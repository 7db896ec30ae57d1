package contracts

import (
	"bytes"
	"errors"
	"testing"

	"github.com/nats-io/nats.go"
)

// TestClaimGolden pins the headers of a claimed mail's message: the
// envelope's plus the claim's, with empty data.
func TestClaimGolden(t *testing.T) {
	h := nats.Header{}
	sampleOutcome().Envelope.Encode(h)
	c := Claim{Object: "claim.2f6ZJx3e1YqZ2CkbNvR9Lm", Size: 31457280}
	e := sampleOutcome().Envelope
	e.Claim = &c
	e.Encode(h)
	var buf bytes.Buffer
	for _, k := range []string{HeaderMsgID, HeaderMailFrom, HeaderRcptTo, HeaderReceivedAt, HeaderClientAddr, HeaderHelo, HeaderProtocol, HeaderClaim, HeaderClaimSize} {
		for _, v := range h.Values(k) {
			buf.WriteString(k + ": " + v + "\n")
		}
	}
	golden(t, "claim.headers", buf.Bytes())
	got, ok, err := DecodeClaim(h)
	if err != nil || !ok || got != c {
		t.Errorf("round trip: got %+v %v %v, want %+v", got, ok, err, c)
	}
	if back, err := DecodeEnvelope(h); err != nil || back.Claim == nil || *back.Claim != c {
		t.Errorf("envelope round trip: %+v %v", back.Claim, err)
	}
	h.Set(HeaderClaimSize, "x")
	if _, err := DecodeEnvelope(h); !errors.Is(err, ErrBadEnvelope) {
		t.Errorf("a claim without a size: %v, want a bad envelope", err)
	}
}

func TestDecodeClaim(t *testing.T) {
	if _, ok, err := DecodeClaim(nats.Header{}); ok || err != nil {
		t.Errorf("no claim: ok %v, err %v", ok, err)
	}
	for _, size := range []string{"", "-1", "big"} {
		h := nats.Header{}
		h.Set(HeaderClaim, "claim.x")
		if size != "" {
			h.Set(HeaderClaimSize, size)
		}
		if _, ok, err := DecodeClaim(h); !ok || !errors.Is(err, ErrBadEnvelope) {
			t.Errorf("size %q: ok %v, err %v; want a bad envelope", size, ok, err)
		}
	}
}
