package workers

import (
	"context"
	"strconv"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Results of a mail the commands handler took, the label result of
// mailscope.commands.mails (docs/handlers.md, "The commands handler").
const (
	commandsPublished  = "published"   // every command carried out
	commandsNotStrong  = "not_strong"  // trust weak or none
	commandsBadTarget  = "bad_target"  // the recipient's local part is no target
	commandsBadLines   = "bad_lines"   // a command line failed
	commandsNoCommands = "no_commands" // no command line at all
)

// Kinds of event, the label kind of mailscope.commands.events.
const (
	commandEvent = "command"
	replyEvent   = "reply"
)

// commandsMetrics are the commands handler's instruments; every label
// has a fixed set of values.
type commandsMetrics struct {
	mails  metric.Int64Counter
	events metric.Int64Counter
}

func newCommandsMetrics() commandsMetrics {
	m := otel.Meter("github.com/mailscope/mailscope/workers")
	var cm commandsMetrics
	cm.mails, _ = m.Int64Counter("mailscope.commands.mails",
		metric.WithDescription("mails the commands handler decided, by result (published, not_strong, bad_target, bad_lines, no_commands) and dry_run"))
	cm.events, _ = m.Int64Counter("mailscope.commands.events",
		metric.WithDescription("command and reply events stored on the command stream, by kind (command, reply); a publish the stream recognised as a duplicate is not counted"))
	return cm
}

// mail counts one decided mail.
func (cm commandsMetrics) mail(ctx context.Context, result string, dryRun bool) {
	cm.mails.Add(ctx, 1, metric.WithAttributes(attribute.String("result", result), attribute.String("dry_run", strconv.FormatBool(dryRun))))
}

// stored counts one event stored.
func (cm commandsMetrics) stored(ctx context.Context, kind string) {
	cm.events.Add(ctx, 1, metric.WithAttributes(attribute.String("kind", kind)))
}
