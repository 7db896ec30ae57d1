// Package faults is the system's fault suite: it runs the mailscope
// binary as real processes (mailscope server, alone or as a 3-node
// cluster, provision, producer and two workers), sends a few thousand
// mails through SMTP with senders that resend like an MTA, and kills
// parts of the system on the way: workers and the producer with
// SIGKILL, the nats-server with SIGTERM and SIGKILL on its data
// directory, and the leader of the mail stream of a cluster. Once the
// queues are drained it checks that every mail answered 250 has exactly
// one outcome (or dead letter) and no mail has two.
//
// The tests are behind the build tag "faults", so that go test ./...
// stays fast:
//
//	go test -tags faults -count=1 -timeout 10m ./faults -v
//
// docs/testing.md describes the modes, the flags (-faults.seed to
// replay the kill points of a run, -faults.mails, -faults.senders) and
// the table each mode prints.
package faults
