package workers

import (
	"context"
	"fmt"

	"github.com/mailscope/mailscope/contracts"
	"go.opentelemetry.io/otel/attribute"
)

// Act completes ev's outcome by running the chosen handler, the one step
// with side effects (none when the outcome's DryRun is set: the handler
// decides but does nothing). A mail rejected by rule needs no handler.
// Once the live handler has decided, the shadow handler, if
// mail.shadow_handler names one, runs in dry run and its decision is
// recorded beside the live one (see shadow).
// A handler's error keeps its class (Reject, RetryLater, Unprocessable;
// unclassified errors are Transient) and names the handler; for Reject
// the rejected outcome is returned with the error. A panic is recovered
// as a Transient error.
func (p *Pipeline) Act(ctx context.Context, ev *Evaluation) (_ *contracts.Outcome, err error) {
	out := ev.Outcome
	if out.Disposition != "" {
		return out, nil
	}
	defer p.recovered("act", out.ID, &err)
	// Every value of mail.handler has a handler (TestHandlersCoverTheEnum);
	// were one missing, the call would panic, recovered as Transient.
	h := p.handlers[ev.Handler]
	hctx, cancel := context.WithTimeout(ctx, p.cfg.HandlerTimeout)
	defer cancel()
	hctx, span := p.stage(hctx, "handler", attribute.String("mailscope.handler", ev.Handler), attribute.Bool("mailscope.dry_run", out.DryRun))
	r, err := h.Handle(hctx, ev.Mail, out.DryRun)
	endStage(span, err)
	out.Handler = ev.Handler
	if err != nil {
		if ClassOf(err) == Permanent {
			out.Disposition = contracts.Rejected
			out.Reason = err.Error()
			out.ProcessedAt = p.now().UTC()
			p.shadow(ctx, ev, out)
			return out, &classError{class: Permanent, err: fmt.Errorf("handler %s: %w", ev.Handler, err)}
		}
		return nil, &classError{class: ClassOf(err), err: fmt.Errorf("handler %s: %w", ev.Handler, err), after: retryAfter(err)}
	}
	out.Disposition = r.Disposition
	out.Reason = r.Reason
	out.Summary = r.Summary
	out.ProcessedAt = p.now().UTC()
	p.shadow(ctx, ev, out)
	return out, nil
}
