package workers

import (
	"context"

	"github.com/mailscope/mailscope/contracts"
)

// Handler processes one mail that passed authentication and rules. It
// returns the disposition and, optionally, a summary. Its error says what
// becomes of the mail: Reject (the outcome is rejected with the reason,
// for good), RetryLater (redelivered after a delay), Unprocessable (dead
// letter at once); any other error is transient (redelivered with
// backoff, dead-lettered once out of attempts). With dryRun set, a
// handler decides but performs no side effect.
type Handler interface {
	Handle(ctx context.Context, m *Mail, dryRun bool) (HandlerResult, error)
}

// Checker is implemented by a Handler that can tell, from the decisions
// alone, that it could not act on a mail (the webhook handler, for an
// endpoint it does not have). Evaluate calls Check once the flags are
// decided, with the outcome so far; an error fails the evaluation with
// its class (unclassified: Transient). Check must have no side effect.
type Checker interface {
	Check(out *contracts.Outcome) error
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
//
// None of them has a side effect beyond its outcome, so mail.dry_run
// changes only the outcome's dry_run. The webhook handler (see
// WebhookConfig) is added by NewPipeline.
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
