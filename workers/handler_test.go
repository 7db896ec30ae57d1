package workers

import (
	"slices"
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
	s, ok := rules.Lookup(rules.FlagShadowHandler)
	if !ok {
		t.Fatal("mail.shadow_handler not registered")
	}
	if s.Default != rules.ShadowNone || s.Enum[0] != rules.ShadowNone || !slices.Equal(s.Enum[1:], f.Enum) {
		t.Errorf("mail.shadow_handler enum %q (default %q): want %q then mail.handler's values %q", s.Enum, s.Default, rules.ShadowNone, f.Enum)
	}
}
