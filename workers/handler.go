package workers

import (
	"context"
	"fmt"

	"github.com/mailscope/mailscope/contracts"
)

// Handler processes one mail that passed authentication and rules. It
// returns the disposition and, optionally, a summary. An error is a
// transient failure (the mail is retried). With dryRun set, a handler
// decides but performs no side effect.
type Handler interface {
	Handle(ctx context.Context, m *Mail, dryRun bool) (HandlerResult, error)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, m *Mail, dryRun bool) (HandlerResult, error)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, m *Mail, dryRun bool) (HandlerResult, error) {
	return f(ctx, m, dryRun)
}

// HandlerResult is what a handler decided.
type HandlerResult struct {
	Disposition contracts.Disposition
	Reason      string
	Summary     *contracts.Summary
}

// Handlers returns the built-in handlers by name, the values of the enum
// flag mail.handler:
//
//   - publish: the outcome carries the parsed summary (disposition
//     processed). The default.
//   - quarantine: as publish, with disposition quarantined, for review.
//   - discard: the mail is dropped on purpose; the outcome records that
//     (disposition discarded) without a summary.
func Handlers(textLimit int) map[string]Handler {
	summarize := func(d contracts.Disposition) Handler {
		return HandlerFunc(func(ctx context.Context, m *Mail, _ bool) (HandlerResult, error) {
			return HandlerResult{Disposition: d, Summary: Summarize(ctx, m, textLimit)}, nil
		})
	}
	return map[string]Handler{
		"publish":    summarize(contracts.Processed),
		"quarantine": summarize(contracts.Quarantined),
		"discard": HandlerFunc(func(context.Context, *Mail, bool) (HandlerResult, error) {
			return HandlerResult{Disposition: contracts.Discarded, Reason: "discarded by rule"}, nil
		}),
	}
}

// errNoHandler is returned for a handler name without a handler; the
// flag's enum makes it unreachable from rules, so it means a build whose
// registry and handlers disagree: retried, then dead-lettered.
func errNoHandler(name string) error { return fmt.Errorf("no handler named %q", name) }
