package contracts

import "time"

// StatusSchema is the version of the worker status format.
const StatusSchema = "mailscope.status.v1"

// WorkerStatus is what each worker keeps under its name in the status
// bucket, so operators see without reading logs which rules every worker
// runs and which keys it refused:
//
//	nats kv ls mail_status
//	nats kv get mail_status worker-0 --raw
//
// Entries of workers that stopped expire with the bucket's TTL.
type WorkerStatus struct {
	// Schema is always StatusSchema.
	Schema string `json:"schema"`
	// Worker says which worker this is.
	Worker WorkerInfo `json:"worker"`
	// Ready is true once the rules are loaded and the worker takes mail.
	Ready bool `json:"ready"`
	// UpdatedAt is when the entry was written; workers rewrite it on every
	// rule change and at least every heartbeat interval (30s).
	UpdatedAt time.Time `json:"updated_at"`
	// Rules maps each flag key with rules in force to its KV revision.
	Rules map[string]uint64 `json:"rules"`
	// Problems lists the keys the worker refused: values that do not
	// parse, which keep their last good rules (if they had any), and keys
	// that are not registered flags, never in force.
	Problems []RuleProblem `json:"problems"`
	// Unknown lists keys in the bucket that are not registered flags (a
	// typo in a key name shows up here); each is also in Problems, with
	// cause "unknown_flag", and its rules are never in force.
	Unknown []string `json:"unknown"`
}

// RuleProblem is a flag key whose current value the workers refused.
type RuleProblem struct {
	Flag     string `json:"flag"`
	Revision uint64 `json:"revision"`
	// Cause is "parse" (the value does not parse) or "unknown_flag" (the
	// key is not a registered flag).
	Cause string `json:"cause"`
	// Errors are "line N: message" strings; for unknown_flag, one message
	// naming the nearest known flag.
	Errors []string `json:"errors"`
	// KeptRevision is the revision still in force, 0 when none (the
	// flag's default applies).
	KeptRevision uint64 `json:"kept_revision"`
}
