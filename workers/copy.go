package workers

import (
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/contracts"
)

// priorAttempts returns the attempts a resumed mail used before its hold.
func priorAttempts(h nats.Header) int {
	n, err := strconv.Atoi(h.Get(contracts.HeaderPriorAttempts))
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// copyMsg returns a copy of msg for subject with the mail's identity kept
// and a de-duplication id of its own: the mail id, a tag and the stream
// sequence of msg, so that repeating the copy after a lost ack stores it
// once.
func copyMsg(msg jetstream.Msg, subject, mailID, tag string) (*nats.Msg, string) {
	h := nats.Header{}
	copyHeaders(h, msg.Headers())
	var seq uint64
	if md, err := msg.Metadata(); err == nil {
		seq = md.Sequence.Stream
	}
	id := mailID + "." + tag + "." + strconv.FormatUint(seq, 10)
	h.Set(contracts.HeaderMailID, mailID)
	h.Set(contracts.HeaderMsgID, id)
	return &nats.Msg{Subject: subject, Header: h, Data: msg.Data()}, id
}

// copyHeaders copies the input's headers into h, less the server's atomic
// batch headers: a message the producer stored in a batch carries them,
// and a copy published with them would be refused as part of a batch.
func copyHeaders(h, from nats.Header) {
	for k, v := range from {
		if strings.HasPrefix(k, "Nats-Batch-") {
			continue
		}
		h[k] = append([]string(nil), v...)
	}
}
