package producer

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/emersion/go-smtp"
)

// slogPrinter adapts slog to go-smtp's Logger.
type slogPrinter struct{ l *slog.Logger }

func (p slogPrinter) Printf(format string, v ...any) { p.l.Warn(fmt.Sprintf(format, v...)) }
func (p slogPrinter) Println(v ...any)               { p.l.Warn(fmt.Sprint(v...)) }

// What the producer logs per mail (docs/observability.md, "Logs"): at
// 1,000 mails/s an info line per accepted mail would be most of the log
// and tell nothing the outcome lines and the metrics do not, so an
// accepted mail is a debug line (MAILSCOPE_LOG_LEVEL=debug), and every
// refusal of a mail a warning: 451 (not stored), 552 (too large), 553 (an
// envelope address refused) and 554 (a data limit). Connection-level
// replies (421 over the connection limits or a timeout) are counted in
// mailscope_producer_mails_total and not logged: they come by the
// thousand exactly when the producer is overloaded.

// stored logs an accepted mail at debug: its id, stream sequence, size
// and recipient count, never an address. Below debug it costs one
// Enabled call and no allocation.
func (s *session) stored(ctx context.Context, id string, seq uint64, size int64) {
	l := s.p.cfg.Logger
	if !l.Enabled(ctx, slog.LevelDebug) {
		return
	}
	l.LogAttrs(ctx, slog.LevelDebug, "mail stored", slog.String("protocol", s.protocol), slog.String("client", s.client),
		slog.String("id", id), slog.Uint64("seq", seq), slog.Int64("size", size), slog.Int("rcpts", len(s.rcpts)))
}

// refused logs a refusal of the transaction's mail at warn and returns
// reply; why is the cause, a result word of metrics.go.
func (s *session) refused(reply *smtp.SMTPError, why string) *smtp.SMTPError {
	s.p.cfg.Logger.LogAttrs(context.Background(), slog.LevelWarn, "mail refused", slog.String("protocol", s.protocol),
		slog.String("client", s.client), slog.Int("code", reply.Code), slog.String("why", why))
	return reply
}
