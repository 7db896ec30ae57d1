package groupcommit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// commit stores one batch and answers every message in it.
func (b *batcher) commit(batch []*request) {
	defer func() {
		b.mu.Lock()
		b.inflight--
		if len(b.pending) > 0 {
			// They waited for this commit: store them now.
			b.due = true
		}
		b.flushLocked()
		b.mu.Unlock()
	}()
	if len(batch) < b.cfg.MinMsgs {
		// Too few to pay for a batch's fixed cost.
		b.alone(batch)
		return
	}
	start := time.Now()
	acks, err := b.store(batch)
	switch {
	case err == nil:
		b.p.stats.batches.Add(1)
		b.p.stats.batchedMails.Add(int64(len(batch)))
		b.p.met.committed(len(batch), start)
		for i, r := range batch {
			r.done <- result{ack: &acks[i]}
		}
	case byOneByOne(err):
		b.p.stats.fallbacks.Add(1)
		b.p.met.fellBack(reason(err))
		if isAPIError(err, errCodeAtomicDisabled) && b.bypass() {
			b.cfg.Logger.Warn("the stream does not allow atomic publish (AllowAtomicPublish): no group commit, every message is stored on its own; trying again every minute",
				slog.String("publisher", b.cfg.Name), slog.String("subject", batch[0].msg.Subject))
		}
		b.alone(batch)
	default:
		b.p.stats.failed.Add(1)
		b.p.met.failed()
		err = fmt.Errorf("%w: batch of %d: %w", ErrNotStored, len(batch), err)
		for _, r := range batch {
			r.done <- result{err: err}
		}
	}
}

// alone publishes every message of batch on its own, concurrently, with
// the retries and dedup of a single publish.
func (b *batcher) alone(batch []*request) {
	if len(batch) == 1 {
		r := batch[0]
		ack, err := b.p.publishOne(context.Background(), r.msg, r.id)
		r.done <- result{ack: ack, err: err}
		return
	}
	var wg sync.WaitGroup
	for _, r := range batch {
		wg.Go(func() {
			ack, err := b.p.publishOne(context.Background(), r.msg, r.id)
			r.done <- result{ack: ack, err: err}
		})
	}
	wg.Wait()
}

// store publishes batch as one atomic batch, trying again (with the same
// dedup ids, under a new batch id) after a timeout, a missing responder
// or a lost connection, and returns one acknowledgement per message. The
// wait for the commit's answer ends at Config.Timeout, or as soon as the
// connection is lost.
func (b *batcher) store(batch []*request) ([]jetstream.PubAck, error) {
	var err error
	for try := 0; try < b.cfg.Tries; try++ {
		var acks []jetstream.PubAck
		if acks, err = b.send(batch); err == nil {
			return acks, nil
		}
		if !retryable(err) || errors.Is(err, errInvalidBatchAck) {
			break
		}
	}
	return nil, err
}

// batchAck is the server's answer to a batch commit.
type batchAck struct {
	Error    *jetstream.APIError `json:"error,omitempty"`
	Stream   string              `json:"stream"`
	Sequence uint64              `json:"seq"`
	Domain   string              `json:"domain,omitempty"`
	BatchID  string              `json:"batch,omitempty"`
	Count    int                 `json:"count,omitempty"`
}

// send makes one attempt: every message but the last published without
// a reply (the server stages them), the last with the commit header as a
// request, whose answer acknowledges the whole batch. What is sent is a
// copy of each message's headers with the batch headers and Nats-Msg-Id
// set: the caller's headers stay free of batch headers, for a retry under
// a new batch id or a fallback to single publishes. nats.go serializes a
// message before PublishMsg or RequestMsgWithContext returns, so one
// message and one header map serve the whole batch.
func (b *batcher) send(batch []*request) ([]jetstream.PubAck, error) {
	if len(batch) == 0 {
		return nil, errors.New("empty batch")
	}
	nc := b.p.js.Conn()
	batchID := []string{nuid.Next()}
	// One allocation each for every message's sequence and dedup id
	// header values.
	vals := make([]string, 2*len(batch))
	seqs, ids := vals[:len(batch)], vals[len(batch):]
	m := &nats.Msg{Header: make(nats.Header, len(batch[0].msg.Header)+4)}
	last := len(batch) - 1
	for i, r := range batch {
		copyHeader(m.Header, r.msg.Header)
		m.Subject, m.Data = r.msg.Subject, r.msg.Data
		seqs[i] = strconv.Itoa(i + 1)
		m.Header[hdrBatchID] = batchID
		m.Header[hdrBatchSeq] = seqs[i : i+1 : i+1]
		if r.id != "" {
			if v := m.Header[hdrMsgID]; len(v) != 1 || v[0] != r.id {
				ids[i] = r.id
				m.Header[hdrMsgID] = ids[i : i+1 : i+1]
			}
		}
		if i == last {
			break
		}
		if err := nc.PublishMsg(m); err != nil {
			return nil, err
		}
	}
	m.Header[hdrBatchCommit] = commitValue
	ctx, finish := b.p.conn.attempt(context.Background(), b.cfg.Timeout)
	resp, err := nc.RequestMsgWithContext(ctx, m)
	if err = finish(err); err != nil {
		return nil, err
	}
	return batchAcks(resp.Data, batchID[0], len(batch))
}

// batchAcks reads the answer to the commit of a batch of n messages with
// id batchID into one acknowledgement per message.
func batchAcks(data []byte, batchID string, n int) ([]jetstream.PubAck, error) {
	var ack batchAck
	if err := json.Unmarshal(data, &ack); err != nil {
		return nil, fmt.Errorf("%w: %v", errInvalidBatchAck, err)
	}
	if ack.Error != nil {
		return nil, ack.Error
	}
	if ack.Stream == "" || ack.BatchID != batchID || ack.Count != n || ack.Sequence < uint64(n) {
		return nil, fmt.Errorf("%w: %s", errInvalidBatchAck, data)
	}
	// A batch is stored contiguously and ends at ack.Sequence.
	acks := make([]jetstream.PubAck, n)
	first := ack.Sequence - uint64(n) + 1
	for j := range acks {
		acks[j] = jetstream.PubAck{Stream: ack.Stream, Sequence: first + uint64(j), Domain: ack.Domain}
	}
	return acks, nil
}
