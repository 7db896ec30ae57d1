// Package keyserver is a small authoritative DNS server that serves TXT
// records from memory. Tests use it to publish real DKIM keys on
// 127.0.0.1 and exercise the resolver over real UDP and TCP, and
// "mailscope dev" uses it as its built-in DKIM key source.
//
// Names not set with [Server.SetTXT] get an authoritative NXDOMAIN. Fault
// modes ([Server.SetFault]) make a name time out, fail with SERVFAIL or
// answer only over TCP, so that callers can test their error handling.
package keyserver
