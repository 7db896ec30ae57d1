package groupcommit_test

import (
	"context"
	"errors"
	"log"
	"os"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/groupcommit"
)

// A worker stores one outcome event per mail, with the mail's id as
// dedup id, from many goroutines at once; concurrent events share one
// atomic batch and its fsync. (It needs a running server, so it is
// compiled, not run.)
func ExampleNew() {
	// A mailscope server takes no anonymous clients: connect as the
	// worker, with its NKey seed (from NATS_NKEY, as `mailscope worker`
	// reads it) and its inbox prefix, the only inboxes it may read.
	seed, err := nats.NkeyOptionFromSeed(os.Getenv("NATS_NKEY"))
	if err != nil {
		log.Fatal(err)
	}
	nc, err := nats.Connect(nats.DefaultURL, seed, nats.CustomInboxPrefix(access.Worker.InboxPrefix()))
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		log.Fatal(err)
	}
	outcomes := groupcommit.New(js, groupcommit.Config{Name: "worker"})

	event := &nats.Msg{Subject: "mail.outcome.processed", Data: []byte(`{"schema":1}`)}
	ack, err := outcomes.Publish(context.Background(), event, "mail-id-1")
	switch {
	case errors.Is(err, groupcommit.ErrNotStored):
		log.Printf("outcome not stored, the mail is redelivered: %v", err)
	case ack.Duplicate:
		log.Printf("outcome already stored at %d", ack.Sequence)
	}
}
