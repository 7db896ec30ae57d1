package groupcommit_test

import (
	"context"
	"errors"
	"log"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/groupcommit"
)

// A worker stores one outcome event per mail, with the mail's id as
// dedup id, from many goroutines at once; concurrent events share one
// atomic batch and its fsync.
func ExampleNew() {
	nc, err := nats.Connect(nats.DefaultURL)
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
