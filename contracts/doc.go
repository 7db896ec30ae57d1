// Package contracts holds everything that the producer, the workers and
// the operators' tools agree on: the names of streams, subjects, consumers
// and buckets; the headers that carry a mail's envelope; and the outcome
// event that workers publish for every mail; and the requests handlers
// send receivers: the webhook (WebhookRequest) and external services on
// NATS (ServiceRequest, answered by a ServiceReply).
//
// The contracts are versioned (see [OutcomeSchema]) and pinned by golden
// files in testdata/. Change a field and the golden test fails until the
// change is deliberate (go test ./contracts -update).
package contracts
