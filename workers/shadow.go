package workers

import (
	"context"
	"fmt"

	"go.opentelemetry.io/otel/attribute"

	"github.com/mailscope/mailscope/contracts"
)

// shadow runs the shadow handler ev.Shadow (the flag mail.shadow_handler)
// in dry run on the mail the live handler just decided, and records its
// decision on out. It never changes the live decision: a shadow
// handler's error, refusal by its Checker or panic is recorded as the
// shadow's Error, and the mail goes on as the live handler decided. It
// runs within the handler timeout of its own.
func (p *Pipeline) shadow(ctx context.Context, ev *Evaluation, out *contracts.Outcome) {
	if ev.Shadow == "" {
		return
	}
	s := &contracts.Shadow{Handler: ev.Shadow}
	out.Shadow = s
	hctx, cancel := context.WithTimeout(ctx, p.cfg.HandlerTimeout)
	defer cancel()
	hctx, span := p.stage(hctx, "shadow", attribute.String("mailscope.handler", ev.Shadow))
	r, err := p.runShadow(hctx, ev)
	endStage(span, err)
	switch {
	case err == nil:
		s.Disposition, s.Reason = r.Disposition, r.Reason
	case ClassOf(err) == Permanent:
		s.Disposition, s.Reason = contracts.Rejected, err.Error()
	default:
		s.Error = err.Error()
	}
	s.Differs = s.Error != "" || s.Disposition != out.Disposition
}

// runShadow calls the shadow handler with dryRun set, after its Checker
// when it has one; a panic is recovered as a Transient error.
func (p *Pipeline) runShadow(ctx context.Context, ev *Evaluation) (r HandlerResult, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = transient("panic in shadow handler %s: %v", ev.Shadow, v)
		}
	}()
	// Every value of mail.shadow_handler but none has a handler
	// (TestHandlersCoverTheEnum).
	h := p.handlers[ev.Shadow]
	if c, ok := h.(Checker); ok {
		if err := c.Check(ev.Outcome); err != nil {
			return r, fmt.Errorf("shadow handler %s: %w", ev.Shadow, err)
		}
	}
	r, err = h.Handle(ctx, ev.Mail, true)
	if err != nil {
		return r, &classError{class: ClassOf(err), err: fmt.Errorf("shadow handler %s: %w", ev.Shadow, err)}
	}
	return r, nil
}
