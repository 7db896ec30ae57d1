package groupcommit_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/groupcommit"
	"github.com/mailscope/mailscope/systest"
)

// wait bounds every wait in these tests; it is a safety net against
// hangs, never a measurement.
const wait = 30 * time.Second

// options change the stream setup makes.
type options struct {
	noAtomic bool  // the stream does not allow atomic publish
	maxBytes int64 // of the stream (DiscardNew); 0 for no limit
}

// bundle is a stream "EVENTS" (subjects "events.>") on a real embedded
// nats-server, fsyncing every write.
type bundle struct {
	js     jetstream.JetStream
	stream jetstream.Stream
	logs   *syncBuffer // what the publishers made by the bundle log
}

func setup(t *testing.T) *bundle { return setupWith(t, options{}) }

func setupWith(t *testing.T, o options) *bundle {
	t.Helper()
	b := &bundle{logs: &syncBuffer{}}
	_, b.js = systest.JetStream(t)
	cfg := jetstream.StreamConfig{
		Name:               "EVENTS",
		Subjects:           []string{"events.>"},
		Storage:            jetstream.FileStorage,
		Discard:            jetstream.DiscardNew,
		Duplicates:         2 * time.Minute,
		AllowAtomicPublish: !o.noAtomic,
	}
	if o.maxBytes > 0 {
		cfg.MaxBytes = o.maxBytes
	}
	var err error
	if b.stream, err = b.js.CreateStream(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	return b
}

// config is cfg with the bundle's logger and timeout.
func (b *bundle) config(cfg groupcommit.Config) groupcommit.Config {
	cfg.Timeout = wait
	cfg.Logger = slog.New(slog.NewTextHandler(b.logs, nil))
	return cfg
}

// oneBatch makes a publisher whose batches hold exactly n messages: the
// window is long (a bound against hangs, never reached by a passing
// test), so a batch is committed when, and only when, it is full.
func (b *bundle) oneBatch(n int) *groupcommit.Publisher {
	return groupcommit.New(b.js, b.config(groupcommit.Config{Window: wait, MaxMsgs: n, MinMsgs: 2}))
}

// count returns the messages in the stream.
func (b *bundle) count(t *testing.T) uint64 {
	t.Helper()
	info, err := b.stream.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// stored returns the message at seq.
func (b *bundle) stored(t *testing.T, seq uint64) *jetstream.RawStreamMsg {
	t.Helper()
	msg, err := b.stream.GetMsg(t.Context(), seq)
	if err != nil {
		t.Fatalf("seq %d: %v", seq, err)
	}
	return msg
}

// message is what one caller publishes.
type message struct {
	subject, id string
	data        []byte
	header      nats.Header
}

func (m message) msg() *nats.Msg {
	return &nats.Msg{Subject: m.subject, Data: m.data, Header: m.header}
}

// result is one concurrent caller's answer.
type result struct {
	ack *jetstream.PubAck
	err error
}

// publishAll publishes every message at once and returns every caller's
// answer in the order of msgs.
func publishAll(t *testing.T, pub *groupcommit.Publisher, msgs []message) []result {
	t.Helper()
	res := make([]result, len(msgs))
	var wg sync.WaitGroup
	for i, m := range msgs {
		wg.Go(func() {
			res[i].ack, res[i].err = pub.Publish(t.Context(), m.msg(), m.id)
		})
	}
	wg.Wait()
	return res
}

// numbered returns n messages on subject with ids prefix-0, prefix-1, ...
func numbered(subject, prefix string, n int) []message {
	msgs := make([]message, n)
	for i := range msgs {
		msgs[i] = message{subject: subject, id: fmt.Sprintf("%s-%d", prefix, i), data: fmt.Appendf(nil, "event %s %d", prefix, i),
			header: nats.Header{"Event-Kind": []string{"test"}}}
	}
	return msgs
}

// syncBuffer is a bytes.Buffer safe for a logger used from goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
