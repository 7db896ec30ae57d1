package workers

import (
	"context"
	"log/slog"
	"maps"
	"runtime/debug"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mailscope/mailscope/auth"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/rules"
	"go.opentelemetry.io/otel/trace"
)

// Pipeline decides the outcome of one mail in two steps
// (docs/architecture.md, "Evaluate and act"): Evaluate (parse,
// authenticate, decide the flags: pure, no side effect, safe to run any
// number of times) and Act (the handler, the one step with side
// effects). It does no NATS I/O, so it can be run and measured on an
// in-memory mail; Worker wraps it with the queue.
type Pipeline struct {
	cfg      Config
	verifier *auth.Verifier
	handlers map[string]Handler
	now      func() time.Time
	tracer   trace.Tracer
}

// NewPipeline returns a Pipeline with the built-in handlers (see
// Handlers), the webhook handler on cfg.Webhook, the service handler on
// cfg.Service, the commands handler on cfg.Commands, and cfg.Handlers.
// cfg is taken with its defaults applied. Without NATS, its service
// handler only evaluates: it checks the service a mail names, and acting
// on such a mail fails (Transient); the commands handler publishes only
// in a Worker (New gives it the connection). Worker's pipeline sends the
// service requests on the worker's connection.
func NewPipeline(cfg Config) *Pipeline {
	return newPipeline(cfg, nil)
}

// newPipeline is NewPipeline with the service handler's requests sent
// on nc.
func newPipeline(cfg Config, nc *nats.Conn) *Pipeline {
	cfg = cfg.WithDefaults()
	hs := Handlers(cfg.TextLimit)
	hs[WebhookHandler] = newWebhook(cfg)
	hs[ServiceHandler] = newService(cfg, nc)
	hs[CommandsHandler] = newCommands(cfg)
	maps.Copy(hs, cfg.Handlers)
	return &Pipeline{
		cfg:      cfg,
		verifier: auth.NewVerifier(cfg.Auth, auth.NewResolver(cfg.Auth)),
		handlers: hs,
		now:      time.Now,
		tracer:   cfg.TracerProvider.Tracer(tracerName),
	}
}

// Process evaluates one mail against the rule snapshot snap and acts on
// it. On success it returns the outcome to store; otherwise an error
// whose Class says what to do with the mail. For a handler's Reject
// (class Permanent) it returns the rejected outcome with the error. A
// panic anywhere inside is recovered and returned as a Transient error.
func (p *Pipeline) Process(ctx context.Context, snap *rules.Snapshot, env contracts.Envelope, raw []byte, attempt int) (*contracts.Outcome, error) {
	ev, err := p.Evaluate(ctx, snap, env, raw, attempt)
	if err != nil {
		return nil, err
	}
	return p.Act(ctx, ev)
}

// recovered turns a panic into a Transient error in *err, logged with its
// stack. Deferred by each step.
func (p *Pipeline) recovered(step string, id string, err *error) {
	if r := recover(); r != nil {
		p.cfg.Logger.Error("panic while processing a mail", slog.String("id", id), slog.String("step", step),
			slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
		*err = transient("panic while processing (%s): %v", step, r)
	}
}

// decisionOf turns a rules decision into its outcome record.
func decisionOf(d rules.Decision) contracts.FlagDecision {
	fd := contracts.FlagDecision{Flag: d.Flag, Value: d.Canonical()}
	if d.Rule != nil {
		fd.Rule = &contracts.RuleRef{Revision: d.Revision, Line: d.Rule.Line, Scope: d.Rule.ScopeText, Priority: d.Rule.Priority}
	}
	return fd
}

func (p *Pipeline) authServID() string {
	if p.cfg.Auth.AuthServID != "" {
		return p.cfg.Auth.AuthServID
	}
	return auth.DefaultAuthServID
}
