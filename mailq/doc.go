// Package mailq is the operators' view of the mail that waits: the dead
// letters of the dead-letter stream and the held mail of the held stream,
// listed, shown and, for dead letters, retried. Like sendmail's mailq, it
// reads the queues as they are; it never takes mail from the workers'
// consumers. `mailscope dead` and `mailscope held` are its commands; they
// connect as the operator.
package mailq
