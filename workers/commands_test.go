package workers

import (
	"strings"
	"testing"

	"github.com/mailscope/mailscope/contracts"
)

// TestCommandsWithoutConnection: a Pipeline's commands handler, which
// has no NATS connection (only a Worker gives it one), decides under dry
// run and fails a real publish as Transient, so that the mail is
// retried, never lost or acked without its events.
func TestCommandsWithoutConnection(t *testing.T) {
	h := NewPipeline(Config{}).handlers[CommandsHandler]
	raw := []byte("From: alice@example.com\r\nTo: 1234@bugs.example.org\r\nSubject: s\r\n\r\n status fixed\r\n")
	m, err := ParseMail(contracts.Envelope{ID: "X", MailFrom: "alice@example.com", RcptTo: []string{"1234@bugs.example.org"}}, raw)
	if err != nil {
		t.Fatal(err)
	}
	m.Evaluated = &contracts.Outcome{ID: "X", Auth: contracts.Auth{Trust: contracts.TrustStrong}}
	r, err := h.Handle(t.Context(), m, true)
	if err != nil || r.Disposition != contracts.Processed || !strings.HasPrefix(r.Reason, "dry run: would publish 1 command event for target 1234: status fixed") {
		t.Errorf("dry run: %+v, %v", r, err)
	}
	if _, err := h.Handle(t.Context(), m, false); err == nil || ClassOf(err) != Transient || !strings.Contains(err.Error(), "no NATS connection") {
		t.Errorf("publish without a connection: %v (class %v), want Transient", err, ClassOf(err))
	}
}
