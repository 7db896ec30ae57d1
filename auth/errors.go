package auth

import (
	"context"
	"errors"
	"net"
)

// ErrNotFound is wrapped by the error [Resolver.LookupTXT] returns when the
// name does not exist (NXDOMAIN) or has no TXT record. It is a permanent
// answer: go-msgauth turns it into a permerror ("no key for signature").
var ErrNotFound = errors.New("no TXT record")

// TempError is the error [Resolver.LookupTXT] returns when no server gave
// an answer: timeouts, SERVFAIL, REFUSED, network errors, a cancelled
// context. It implements net.Error with Temporary() true, and LookupTXT
// returns it bare (a *TempError, not wrapped), because go-msgauth asserts
// the type directly to decide that a key is only temporarily unavailable
// (temperror) rather than missing (permerror).
type TempError struct {
	// Name is the name looked up.
	Name string
	// Server is the last server asked; empty for the system resolver.
	Server string
	// Err is the last failure.
	Err error
}

var _ net.Error = (*TempError)(nil)

// Error describes the failure.
func (e *TempError) Error() string {
	s := "auth: lookup " + e.Name
	if e.Server != "" {
		s += " on " + e.Server
	}
	return s + ": " + e.Err.Error()
}

// Unwrap returns Err.
func (e *TempError) Unwrap() error { return e.Err }

// Timeout reports whether the last failure was a timeout.
func (e *TempError) Timeout() bool {
	var ne net.Error
	return errors.Is(e.Err, context.DeadlineExceeded) || (errors.As(e.Err, &ne) && ne.Timeout())
}

// Temporary is always true: a later lookup may succeed.
func (e *TempError) Temporary() bool { return true }
