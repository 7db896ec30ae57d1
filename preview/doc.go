// Package preview replays recent mail against a proposed change of one
// flag's rules, with no side effect: each mail is evaluated as a worker
// would (workers.Pipeline.Verdict) under the live rules and under the
// live rules with the flag's key replaced, and the mails whose decision
// would change are counted, by the flag's proposed value, with a few
// example mail ids. The mail comes from the opt-in archive stream
// (contracts.Names.ArchiveStream; see Archive) or from .eml files
// (Files). `mailscope flags preview` prints a Report.
package preview
