package contracts_test

import (
	"strings"
	"testing"

	"github.com/mailscope/mailscope/contracts"
)

func TestContentID(t *testing.T) {
	raw := []byte("From: a@example.com\r\nTo: b@example.org\r\n\r\nHi.\r\n")
	id := contracts.ContentID("a@example.com", []string{"b@example.org", "c@example.org"}, raw)
	if len(id) != 32 || strings.Trim(id, "abcdefghijklmnopqrstuvwxyz234567") != "" {
		t.Fatalf("id %q: want 32 lower-case base32 characters", id)
	}
	if got := contracts.ContentID("a@example.com", []string{"c@example.org", "b@example.org"}, raw); got != id {
		t.Errorf("recipients reordered: %s, want %s", got, id)
	}
	streamed := contracts.NewContentHash("a@example.com", []string{"b@example.org", "c@example.org"})
	streamed.Write(raw[:7])
	streamed.Write(raw[7:])
	if got := streamed.ID(); got != id {
		t.Errorf("streamed in two writes: %s, want %s", got, id)
	}
	for name, other := range map[string]string{
		"another sender":    contracts.ContentID("x@example.com", []string{"b@example.org", "c@example.org"}, raw),
		"the null sender":   contracts.ContentID("", []string{"b@example.org", "c@example.org"}, raw),
		"fewer recipients":  contracts.ContentID("a@example.com", []string{"b@example.org"}, raw),
		"one byte changed":  contracts.ContentID("a@example.com", []string{"b@example.org", "c@example.org"}, append(raw[:len(raw)-3:len(raw)-3], "!\r\n"...)),
		"sender into rcpts": contracts.ContentID("", []string{"a@example.com", "b@example.org", "c@example.org"}, raw),
	} {
		if other == id {
			t.Errorf("%s: same id %s", name, id)
		}
	}
}
