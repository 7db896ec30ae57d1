package producer

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailscope/mailscope/contracts"
)

// Replies the producer gives besides go-smtp's own.
var (
	// errTempUnavailable: JetStream did not store the mail; the MTA keeps
	// it and retries.
	errTempUnavailable = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Mail queue unavailable, try again later"}
	// errBadAddress: an envelope address the contracts would refuse.
	errBadAddress = &smtp.SMTPError{Code: 553, EnhancedCode: smtp.EnhancedCode{5, 1, 3}, Message: "Bad address syntax"}
)

// session is one SMTP or LMTP connection's transaction state.
type session struct {
	p        *Producer
	protocol string
	client   string
	// conn gives the HELO name at the time of the transaction: a client
	// may send EHLO again, which keeps this session but changes the name.
	conn  *smtp.Conn
	from  string
	rcpts []string
}

var _ smtp.LMTPSession = (*session)(nil)

func (s *session) Reset() {
	s.from = ""
	s.rcpts = nil
}

func (s *session) Logout() error { return nil }

func (s *session) Mail(from string, opts *smtp.MailOptions) error {
	if from != "" && !validAddress(from) {
		s.p.met.reply(s.protocol, errBadAddress.Code)
		return s.refused(errBadAddress, "bad_sender")
	}
	if opts != nil && opts.Size > s.p.cfg.MaxSize {
		s.p.met.mail(s.protocol, resultTooLarge)
		return s.refused(errTooLarge, resultTooLarge)
	}
	s.from = from
	return nil
}

func (s *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if !validAddress(to) {
		s.p.met.reply(s.protocol, errBadAddress.Code)
		return s.refused(errBadAddress, "bad_recipient")
	}
	s.rcpts = append(s.rcpts, to)
	return nil
}

// validAddress applies the envelope rules of the contracts, so that every
// stored mail has an envelope workers can decode.
func validAddress(a string) bool { return contracts.CheckAddress(a) == nil }

// read takes the mail up to the claim threshold, within the limits of
// datalimits.go. A mail that fits is returned whole, with rest nil; a
// larger one returns the bytes read so far (ClaimThreshold+1 of them)
// and rest, the (still limited) reader its remainder comes from, for
// storeClaim to stream. A mail it cannot take gets the reply of
// dataError.
func (s *session) read(r io.Reader) (head []byte, rest io.Reader, err error) {
	r = newLimitedData(r, s.p.cfg.dataLimits())
	var buf bytes.Buffer
	limit := s.p.cfg.ClaimThreshold + 1
	if _, err := buf.ReadFrom(io.LimitReader(r, limit)); err != nil {
		return nil, nil, s.readFailed(err)
	}
	if int64(buf.Len()) == limit {
		return buf.Bytes(), r, nil
	}
	return buf.Bytes(), nil, nil
}

// readFailed records why the client's data could not be read and
// returns the reply (dataError).
func (s *session) readFailed(err error) error {
	reply, result := dataError(err)
	if result != "" {
		s.p.met.mailReply(s.protocol, result, reply.Code)
		s.refused(reply, result)
	}
	return reply
}

// envelope returns the envelope of the transaction's mail.
func (s *session) envelope() contracts.Envelope {
	return contracts.Envelope{
		MailFrom:   s.from,
		RcptTo:     append([]string(nil), s.rcpts...),
		ClientAddr: s.client,
		Helo:       s.conn.Hostname(),
		Protocol:   s.protocol,
	}
}

func (s *session) store(ctx context.Context, raw []byte) error {
	env := s.envelope()
	start := time.Now()
	ack, err := s.p.pub.Publish(ctx, &env, raw)
	if err != nil {
		s.p.met.mail(s.protocol, resultUnavailable)
		s.p.cfg.Logger.WarnContext(ctx, "mail not stored; client told to retry", slog.String("protocol", s.protocol),
			slog.String("client", s.client), slog.String("id", env.ID), slog.Any("err", err))
		return errTempUnavailable
	}
	if ack.Duplicate {
		// A resend of a mail stored before (its 250 was lost): the same
		// content id, stored once.
		s.p.cfg.Logger.InfoContext(ctx, "mail stored before; resend answered 250", slog.String("protocol", s.protocol),
			slog.String("client", s.client), slog.String("id", env.ID), slog.Uint64("seq", ack.Sequence))
	}
	mailStored(ctx, env.ID, len(raw), ack.Duplicate)
	s.p.met.published(s.protocol, start)
	s.p.met.mail(s.protocol, resultStored)
	s.stored(ctx, env.ID, ack.Sequence, int64(len(raw)))
	return nil
}

// take reads the mail and stores it: inline up to the claim threshold,
// by claim check above it.
// The transaction's span (tracing.go) covers both.
func (s *session) take(r io.Reader) (err error) {
	ctx, span := s.startMail()
	defer func() { endMail(span, err) }()
	raw, rest, err := s.read(r)
	if err != nil {
		return err
	}
	if rest != nil {
		return s.storeClaim(ctx, raw, rest)
	}
	return s.store(ctx, raw)
}

// Data stores the mail and answers once JetStream acknowledged it.
func (s *session) Data(r io.Reader) error { return s.take(r) }

// LMTPData stores the mail once for all recipients and answers each.
func (s *session) LMTPData(r io.Reader, status smtp.StatusCollector) error {
	err := s.take(r)
	for _, rcpt := range s.rcpts {
		status.SetStatus(rcpt, err)
	}
	return nil
}
