package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/contracts"
)

// CeilingConfig says how the ceilings are measured.
type CeilingConfig struct {
	// MinTime is how long each ceiling runs at least: the corpus is
	// gone through again until it has, so that short corpora still give
	// stable figures. Default 1s; a negative value goes through the
	// corpus once.
	MinTime time.Duration
	// Goroutines is the parallel verification's width. Default the
	// number of CPUs.
	Goroutines int
	// Batch is the atomic batch size of the JetStream ceiling. Default
	// 50.
	Batch int
}

func (c CeilingConfig) withDefaults() CeilingConfig {
	if c.MinTime == 0 {
		c.MinTime = time.Second
	}
	if c.Goroutines == 0 {
		c.Goroutines = runtime.NumCPU()
	}
	if c.Batch == 0 {
		c.Batch = 50
	}
	return c
}

// MaxVerifications is the cap on signatures verified per mail, as the
// workers have it.
const MaxVerifications = 5

// VerifyCeiling is what bare DKIM verification (dkim.VerifyWithOptions
// with every key in memory) does on the corpus: the least CPU a mail can
// cost a worker that verifies it.
type VerifyCeiling struct {
	// Mails is how many verifications the one-goroutine measurement made
	// (the corpus, Passes times).
	Mails  int `json:"mails"`
	Passes int `json:"passes"`
	// CPUPerMail is the process CPU time (getrusage) per mail on one
	// goroutine, with nothing else running.
	CPUPerMail time.Duration `json:"cpu_per_mail_ns"`
	// PerSec1 is mails verified per second on one goroutine.
	PerSec1 float64 `json:"per_sec_1"`
	// Goroutines is the width of the parallel measurement; PerSec its
	// mails per second (wall clock).
	Goroutines int     `json:"goroutines"`
	PerSec     float64 `json:"per_sec"`
	// Results counts the first signature's result over one pass (none
	// for unsigned mail): it must match the corpus's composition.
	Results map[string]int `json:"results"`
}

// MeasureVerify measures the verification ceiling on the corpus. It
// should run while nothing else does: its CPU figure is the process's.
func MeasureVerify(ctx context.Context, cp *Corpus, c CeilingConfig) (VerifyCeiling, error) {
	c = c.withDefaults()
	v := VerifyCeiling{Goroutines: c.Goroutines, Results: map[string]int{}}
	opts := &dkim.VerifyOptions{LookupTXT: cp.LookupTXT, MaxVerifications: MaxVerifications}
	verify := func(raw []byte) (string, error) {
		vs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), opts)
		if err != nil && !errors.Is(err, dkim.ErrTooManySignatures) {
			return "", err
		}
		if len(vs) == 0 {
			return contracts.ResultNone, nil
		}
		// The words of the workers' classification (auth.classify).
		switch err := vs[0].Err; {
		case err == nil:
			return contracts.ResultPass, nil
		case dkim.IsTempFail(err):
			return contracts.ResultTempError, nil
		case dkim.IsPermFail(err):
			return contracts.ResultPermError, nil
		}
		return contracts.ResultFail, nil
	}

	cpu0, err := SelfCPU()
	if err != nil {
		return v, err
	}
	start := time.Now()
	for v.Passes == 0 || time.Since(start) < c.MinTime {
		for _, m := range cp.Mails {
			res, err := verify(m.Raw)
			if err != nil {
				return v, fmt.Errorf("loadtest: verify %s: %w", m.MessageID, err)
			}
			if v.Passes == 0 {
				v.Results[res]++
			}
		}
		v.Passes++
		v.Mails += len(cp.Mails)
		if ctx.Err() != nil {
			return v, ctx.Err()
		}
	}
	wall := time.Since(start)
	cpu1, err := SelfCPU()
	if err != nil {
		return v, err
	}
	v.CPUPerMail = (cpu1 - cpu0) / time.Duration(max(v.Mails, 1))
	v.PerSec1 = float64(v.Mails) / wall.Seconds()

	// The same number of mails on every core.
	var next atomic.Int64
	var wg sync.WaitGroup
	total := int64(v.Mails)
	start = time.Now()
	for range c.Goroutines {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= total || ctx.Err() != nil {
					return
				}
				_, _ = verify(cp.Mails[i%int64(len(cp.Mails))].Raw)
			}
		})
	}
	wg.Wait()
	v.PerSec = float64(total) / time.Since(start).Seconds()
	return v, ctx.Err()
}

// JetStreamCeiling is what the server does with the corpus's payloads
// and nothing else: stored by atomic batches into a scratch file stream
// (fsync as the server is configured), then consumed and acknowledged.
type JetStreamCeiling struct {
	// Msgs is how many messages were published and consumed (the corpus,
	// Passes times); Batch the batch size.
	Msgs   int `json:"msgs"`
	Passes int `json:"passes"`
	Batch  int `json:"batch"`
	// PublishPerSec is messages stored per second, one batch after
	// the other from one connection.
	PublishPerSec float64 `json:"publish_per_sec"`
	// ConsumePerSec is messages delivered to a pull consumer and
	// acknowledged per second.
	ConsumePerSec float64 `json:"consume_per_sec"`
}

// MeasureJetStream measures the JetStream ceilings on the corpus's
// payloads over nc: a scratch stream (file storage, work-queue
// retention like the mail stream, AllowAtomicPublish) is created,
// filled by atomic batches, drained by a pull consumer with explicit
// acks, and deleted.
func MeasureJetStream(ctx context.Context, nc *nats.Conn, cp *Corpus, c CeilingConfig) (_ JetStreamCeiling, err error) {
	c = c.withDefaults()
	j := JetStreamCeiling{Batch: c.Batch}
	js, err := jetstream.New(nc)
	if err != nil {
		return j, err
	}
	// The one scratch stream the load test's role may create and
	// delete; one a killed run left behind is replaced.
	name, subject := access.LoadTestStream, access.LoadTestSubject
	if err := js.DeleteStream(ctx, name); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
		return j, fmt.Errorf("loadtest: delete a scratch stream left behind: %w", err)
	}
	st, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: name, Subjects: []string{subject}, Storage: jetstream.FileStorage,
		Retention: jetstream.WorkQueuePolicy, AllowAtomicPublish: true, Replicas: 1,
	})
	if err != nil {
		return j, fmt.Errorf("loadtest: create the scratch stream: %w", err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if derr := js.DeleteStream(dctx, name); derr != nil {
			err = errors.Join(err, fmt.Errorf("loadtest: delete the scratch stream %s: %w", name, derr))
		}
	}()

	start := time.Now()
	for j.Passes == 0 || time.Since(start) < c.MinTime {
		for i := 0; i < len(cp.Mails); i += c.Batch {
			if err := publishBatch(ctx, nc, subject, cp.Mails[i:min(i+c.Batch, len(cp.Mails))]); err != nil {
				return j, err
			}
		}
		j.Passes++
		j.Msgs += len(cp.Mails)
	}
	j.PublishPerSec = float64(j.Msgs) / time.Since(start).Seconds()

	cons, err := st.CreateConsumer(ctx, jetstream.ConsumerConfig{AckPolicy: jetstream.AckExplicitPolicy, MaxAckPending: 10_000})
	if err != nil {
		return j, fmt.Errorf("loadtest: scratch consumer: %w", err)
	}
	var got atomic.Int64
	done := make(chan struct{})
	start = time.Now()
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		_ = msg.Ack()
		if got.Add(1) == int64(j.Msgs) {
			close(done)
		}
	})
	if err != nil {
		return j, fmt.Errorf("loadtest: scratch consumer: %w", err)
	}
	defer cc.Stop()
	select {
	case <-done:
	case <-ctx.Done():
		return j, ctx.Err()
	}
	// The acks are on the wire; the server has read them once it answers
	// a ping sent after them.
	if err := nc.FlushTimeout(30 * time.Second); err != nil {
		return j, err
	}
	// Read is not done: on a work-queue stream every ack removes its
	// message (a tombstone written, and fsynced with sync_interval
	// always), which the server does after it read the ack. The ceiling
	// counts until the stream is empty, as the mail stream's would.
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		info, err := st.Info(ctx)
		if err != nil {
			return j, fmt.Errorf("loadtest: scratch stream: %w", err)
		}
		if info.State.Msgs == 0 {
			break
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return j, ctx.Err()
		}
	}
	j.ConsumePerSec = float64(j.Msgs) / time.Since(start).Seconds()
	return j, nil
}

// Headers of atomic batch publishing (nats-server 2.12+).
const (
	hdrBatchID     = "Nats-Batch-Id"
	hdrBatchSeq    = "Nats-Batch-Sequence"
	hdrBatchCommit = "Nats-Batch-Commit"
)

// publishBatch stores mails as one atomic batch: every message but the
// last without a reply, the last with the commit header as a request
// whose answer acknowledges the batch.
func publishBatch(ctx context.Context, nc *nats.Conn, subject string, mails []CorpusMail) error {
	id := nuid.Next()
	for i, m := range mails {
		msg := nats.NewMsg(subject)
		msg.Data = m.Raw
		msg.Header.Set(hdrBatchID, id)
		msg.Header.Set(hdrBatchSeq, strconv.Itoa(i+1))
		if i < len(mails)-1 {
			if err := nc.PublishMsg(msg); err != nil {
				return fmt.Errorf("loadtest: batch publish: %w", err)
			}
			continue
		}
		msg.Header.Set(hdrBatchCommit, "1")
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		resp, err := nc.RequestMsgWithContext(rctx, msg)
		cancel()
		if err != nil {
			return fmt.Errorf("loadtest: batch commit: %w", err)
		}
		var ack struct {
			Error *jetstream.APIError `json:"error,omitempty"`
			Count int                 `json:"count"`
		}
		if err := json.Unmarshal(resp.Data, &ack); err != nil {
			return fmt.Errorf("loadtest: batch commit: %w: %s", err, resp.Data)
		}
		if ack.Error != nil {
			return fmt.Errorf("loadtest: batch commit: %w", ack.Error)
		}
		if ack.Count != len(mails) {
			return fmt.Errorf("loadtest: batch of %d acknowledged as %d", len(mails), ack.Count)
		}
	}
	return nil
}
