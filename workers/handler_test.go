package workers

import (
	"testing"

	"github.com/mailscope/mailscope/rules"
)

// TestHandlersCoverTheEnum: every value mail.handler accepts names a
// built-in handler, so Act always finds the handler a rule chose.
func TestHandlersCoverTheEnum(t *testing.T) {
	f, ok := rules.Lookup(rules.FlagHandler)
	if !ok {
		t.Fatal("mail.handler not registered")
	}
	hs := NewPipeline(Config{}).handlers // the built-in ones and the webhook
	for _, v := range f.Enum {
		if hs[v] == nil {
			t.Errorf("mail.handler value %q has no handler", v)
		}
	}
	if _, ok := hs[f.Default]; !ok {
		t.Errorf("mail.handler default %q has no handler", f.Default)
	}
}
