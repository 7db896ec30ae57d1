package keyserver

// Fault is a misbehaviour the server shows for one name, for testing how
// callers handle DNS failures.
type Fault int

const (
	// FaultNone answers normally. It is the default.
	FaultNone Fault = iota
	// FaultTimeout never answers, over UDP or TCP.
	FaultTimeout
	// FaultServFail answers SERVFAIL.
	FaultServFail
	// FaultTCPOnly answers over UDP with an empty, truncated (TC=1)
	// response, and fully over TCP, like a server whose answer does not
	// fit in a datagram.
	FaultTCPOnly
)

// String returns the fault's name.
func (f Fault) String() string {
	switch f {
	case FaultNone:
		return "none"
	case FaultTimeout:
		return "timeout"
	case FaultServFail:
		return "servfail"
	case FaultTCPOnly:
		return "tcp-only"
	}
	return "unknown"
}

// SetFault sets the fault mode of name (case-insensitive, with or without
// a trailing dot). FaultNone clears it. A fault applies whether or not
// the name has a record.
func (s *Server) SetFault(name string, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if f == FaultNone {
		delete(s.faults, canonical(name))
		return
	}
	s.faults[canonical(name)] = f
}
