package preview

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/contracts"
)

// Mail is one mail to replay.
type Mail struct {
	// Envelope is the mail's envelope (from the archived message's
	// headers, or made up for a file: its recipients are the file's To).
	Envelope contracts.Envelope
	// Raw is the RFC 5322 mail.
	Raw []byte
}

// Skipped is a mail that could not be replayed, and why.
type Skipped struct {
	// ID is the mail id, or the file name.
	ID string
	// Reason says why it was not replayed.
	Reason string
}

// ErrNoArchive is returned by Archive when the archive stream does not
// exist: it is opt-in (provision --archive-max-age).
var ErrNoArchive = errors.New("no archive stream: it is opt-in, made by mailscope provision --archive-max-age D (or mailscope dev --archive-max-age D)")

// DefaultLimit is Archive's default count: the last 1,000 mails.
const DefaultLimit = 1000

// Archive reads the last limit mails of the archive stream n.ArchiveStream
// (0: DefaultLimit), oldest first, as far as the archive held them when
// the read began. Claimed mail (above the producer's claim threshold)
// is archived as its reference only; it is returned as Skipped. A
// message whose envelope does not decode is Skipped too.
func Archive(ctx context.Context, js jetstream.JetStream, n contracts.Names, limit int) ([]Mail, []Skipped, error) {
	n = n.WithDefaults()
	if limit <= 0 {
		limit = DefaultLimit
	}
	s, err := js.Stream(ctx, n.ArchiveStream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return nil, nil, fmt.Errorf("%s: %w", n.ArchiveStream, ErrNoArchive)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("archive stream %s: %w", n.ArchiveStream, err)
	}
	st := s.CachedInfo().State
	if st.Msgs == 0 {
		return nil, nil, nil
	}
	start := st.FirstSeq
	if st.LastSeq-st.FirstSeq+1 > uint64(limit) {
		start = st.LastSeq - uint64(limit) + 1
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverByStartSequencePolicy, OptStartSeq: start})
	if err != nil {
		return nil, nil, fmt.Errorf("read archive stream %s: %w", n.ArchiveStream, err)
	}
	var mails []Mail
	var skipped []Skipped
	for {
		msg, err := c.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			return nil, nil, fmt.Errorf("read archive stream %s: %w", n.ArchiveStream, err)
		}
		md, err := msg.Metadata()
		if err != nil {
			return nil, nil, fmt.Errorf("read archive stream %s: %w", n.ArchiveStream, err)
		}
		env, err := contracts.DecodeEnvelope(msg.Headers())
		id := contracts.MailID(msg.Headers())
		switch {
		case err != nil:
			skipped = append(skipped, Skipped{ID: id, Reason: err.Error()})
		case env.Claim != nil:
			skipped = append(skipped, Skipped{ID: id, Reason: fmt.Sprintf("claimed mail (%d bytes, above the producer's claim threshold): the archive holds only its reference", env.Claim.Size)})
		default:
			mails = append(mails, Mail{Envelope: env, Raw: msg.Data()})
		}
		if md.Sequence.Stream >= st.LastSeq {
			return mails, skipped, nil
		}
	}
}

// Files reads .eml files as mails to replay, each with an envelope of its
// own: the id is the file's base name, the recipients rcpts when given,
// else those of the mail's To field (read by to), the sender from.
func Files(paths []string, from string, rcpts []string, to func(raw []byte) []string) ([]Mail, error) {
	var mails []Mail
	for _, p := range paths {
		raw, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		env := contracts.Envelope{ID: filepath.Base(p), MailFrom: from, RcptTo: rcpts, ReceivedAt: time.Now(), Protocol: "preview"}
		if len(rcpts) == 0 {
			env.RcptTo = to(raw)
		}
		mails = append(mails, Mail{Envelope: env, Raw: raw})
	}
	return mails, nil
}
