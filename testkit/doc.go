// Package testkit makes real DKIM material on demand: keys, their DNS TXT
// records, signatures made with github.com/emersion/go-msgauth/dkim, and
// sample mails to sign. Tests use it together with package keyserver to
// exercise verification end to end; "mailscope testkit" exposes it to
// operators for staging.
package testkit
