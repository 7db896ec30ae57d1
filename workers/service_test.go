package workers

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/mailscope/mailscope/contracts"
)

// TestServiceOutcome: every answer a service request can get, its
// result label, class and reason (docs/handlers.md, "Failure classes").
func TestServiceOutcome(t *testing.T) {
	reply := func(body string, hdr ...string) *nats.Msg {
		m := nats.NewMsg("_INBOX_worker.x")
		m.Data = []byte(body)
		for i := 0; i+1 < len(hdr); i += 2 {
			m.Header.Set(hdr[i], hdr[i+1])
		}
		return m
	}
	for _, c := range []struct {
		name   string
		reply  *nats.Msg
		err    error
		result string
		class  Class // -1: success
		after  time.Duration
		reason string
	}{
		{"accept", reply(`{"decision":"accept"}`), nil, serviceAccepted, -1, 0, ""},
		{"reject", reply(`{"decision":"reject","reason":"no\u0001 thanks"}`), nil, serviceRejected, Permanent, 0, "service s rejected the mail: no  thanks"},
		{"reject without a reason", reply(`{"decision":"reject"}`), nil, serviceRejected, Permanent, 0, "service s rejected the mail"},
		{"retry", reply(`{"decision":"retry","retry_after":2,"reason":"busy"}`), nil, serviceRetryLater, Transient, 2 * time.Second, "service s asked to retry after 2s: busy"},
		{"retry, the backoff", reply(`{"decision":"retry"}`), nil, serviceRetryLater, Transient, 0, "service s asked to retry after 0s"},
		{"micro 4xx", reply("", micro.ErrorCodeHeader, "422", micro.ErrorHeader, "unreadable"), nil, serviceRejected, Permanent, 0, "service s refused the mail: error 422: unreadable"},
		{"micro 5xx", reply("", micro.ErrorCodeHeader, "500", micro.ErrorHeader, "boom"), nil, serviceError, Transient, 0, "service s: error 500: boom"},
		{"micro, not a number", reply("", micro.ErrorCodeHeader, "E42", micro.ErrorHeader, "odd"), nil, serviceError, Transient, 0, "service s: error E42: odd"},
		{"not JSON", reply("yes"), nil, serviceBadReply, Transient, 0, "service s: bad service reply: not a JSON object"},
		{"no responders", nil, fmt.Errorf("request: %w", nats.ErrNoResponders), serviceNoResponders, Transient, 0, "service s: no service is listening (no responders)"},
		{"timeout", nil, context.DeadlineExceeded, serviceTimeout, Transient, 0, "service s: no answer within 3s"},
		{"closed", nil, nats.ErrConnectionClosed, serviceConnError, Transient, 0, "service s: nats: connection closed"},
	} {
		result, r, err := serviceOutcome("s", 3*time.Second, c.reply, c.err)
		if result != c.result {
			t.Errorf("%s: result %s, want %s", c.name, result, c.result)
		}
		if c.class < 0 {
			if err != nil || r.Decision != contracts.ServiceAccept {
				t.Errorf("%s: %+v, %v; want an accept", c.name, r, err)
			}
			continue
		}
		if err == nil || ClassOf(err) != c.class || retryAfter(err) != c.after || !strings.HasPrefix(err.Error(), c.reason) {
			t.Errorf("%s: %v (class %v, after %v), want class %v after %v saying %q", c.name, err, ClassOf(err), retryAfter(err), c.class, c.after, c.reason)
		}
		if errors.Is(err, contracts.ErrServiceReply) != (c.result == serviceBadReply) {
			t.Errorf("%s: %v wraps ErrServiceReply: %v", c.name, err, errors.Is(err, contracts.ErrServiceReply))
		}
	}
}

// TestServiceWithoutNATS: a Pipeline without NATS (flags explain's) has
// the service handler, which checks the service a mail names and, asked
// to act, fails transiently instead of sending.
func TestServiceWithoutNATS(t *testing.T) {
	p := NewPipeline(Config{Service: ServiceConfig{Services: []Service{{Name: "tickets"}}}})
	h := p.handlers[ServiceHandler].(*service)
	out := &contracts.Outcome{Flags: []contracts.FlagDecision{{Flag: "mail.service", Value: "tickets"}}}
	if err := h.Check(out); err != nil {
		t.Fatalf("check: %v", err)
	}
	_, err := h.Handle(t.Context(), &Mail{Evaluated: out}, false)
	if err == nil || ClassOf(err) != Transient || !strings.Contains(err.Error(), "no NATS connection") {
		t.Errorf("act without NATS: %v, want a transient error", err)
	}
}
