// Package groupcommit stores concurrent JetStream publishes to one stream
// as atomic batches sharing one fsync.
//
// With sync_interval always a single-node server fsyncs every stored
// message before it acknowledges it, one message after the other, so
// messages published one by one cost one fsync each however many callers
// wait at once. nats-server 2.12+ stores an atomic batch (headers
// Nats-Batch-Id, Nats-Batch-Sequence, Nats-Batch-Commit; stream setting
// AllowAtomicPublish) with one fsync of the stream for the whole batch,
// and acknowledges the batch as a unit. A [Publisher] commits messages as
// they come while a commit slot is free; the messages that arrive while
// the slots are busy wait and go as the next batch, so batches grow with
// the load. Each caller is answered once its batch is acknowledged; a
// batch that fails fails every message in it.
//
// The server refuses a whole batch when any message in it repeats a
// Nats-Msg-Id in the duplicate window (or in the batch): dedup does not
// work inside atomic batches, it rejects them. A retry of a batch whose
// acknowledgement was lost is refused that way, and so is a message the
// caller publishes again; the publisher then publishes the batch's
// messages one by one, where dedup works as ever (a repeated message is
// acknowledged as a duplicate of the stored one, PubAck.Duplicate).
//
// The server stores the batch headers with each message (it reads them on
// restart to complete a batch a crash interrupted). Whoever republishes a
// stored message with its headers (a dead letter, a held copy) must drop
// Nats-Batch-Id, Nats-Batch-Sequence and Nats-Batch-Commit, or the server
// takes the copy for part of a batch: refused on a stream without atomic
// publish (error 10174), an incomplete batch on one with it. A Publisher
// never sends batch headers a caller's message carries: it owns them.
//
// Whether batches pay depends on the server: on a single-node file stream
// an atomic batch has a fixed cost of its own (see Config.MinMsgs), and
// in a replicated cluster concurrent single publishes already share the
// Raft log's fsync. loadtest/README.md has the measurements.
package groupcommit
