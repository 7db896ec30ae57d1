package producer

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
)

// phase is where a connection's client stream is: command lines, a
// mail's content (after the 354 reply to DATA, up to the terminating
// dot), or a BDAT chunk.
type phase int

const (
	phaseCommand phase = iota
	phaseData
	phaseChunk
)

// States of the end-of-data scan, the same machine as go-smtp's DATA
// reader (v0.25.1 data.go), so that both agree on where the mail ends: a
// line is begun only after CRLF, and the mail ends at a line ".\r\n".
const (
	dotBeginLine = iota
	dotDot
	dotDotCR
	dotCR
	dotData
)

// guardConfig is what every guard of one server shares.
type guardConfig struct {
	maxCommandLine int
	dataTimeout    time.Duration
	idleTimeout    time.Duration
	writeTimeout   time.Duration
	domain         string
	// sizeLines maps go-smtp's EHLO SIZE line to the one to send (see
	// Producer.newServer).
	sizeLines map[string][]byte
	// event counts a refusal or timeout by its result.
	event func(result string)
}

// guard wraps one client connection for the SMTP limits go-smtp does not
// enforce itself. It follows the client's stream (command lines, DATA
// content from the 354 reply to the terminating dot, BDAT chunks), and:
//
//   - passes go-smtp only complete command lines of at most
//     maxCommandLine bytes; a longer line is discarded and answered
//     500 5.5.2, and the connection goes on;
//   - clamps read deadlines: go-smtp's per-command deadline while
//     commands are read, DataTimeout from the 354 (or a BDAT command)
//     to the end of the content, IdleTimeout since the connection began
//     or its last mail ended, whichever comes first; a passed deadline
//     is answered 421 4.4.2 and the connection closed;
//   - advertises SIZE as MaxSize (see Producer.newServer);
//   - frees its connection slot when closed.
//
// The phase follows the wire, not go-smtp's calls, so it is right even
// when go-smtp reads ahead. A client that sends mail content before the
// 354 (RFC 2920 forbids it) has those lines checked as commands.
type guard struct {
	net.Conn
	cfg     *guardConfig
	release func()
	closed  sync.Once

	rmu   sync.Mutex // one Read at a time
	buf   []byte     // read from the client, not yet passed on
	rerr  error      // the read error to report once buf is passed on
	reply string     // an answer to write before reading on

	// mu guards what Read, Write and SetReadDeadline share.
	mu         sync.Mutex
	ready      int // buf[:ready] is scanned and may be passed on
	phase      phase
	dot        int    // end-of-data scan state, in phaseData
	chunkLeft  uint64 // bytes left of the BDAT chunk, in phaseChunk
	chunkLast  bool   // the chunk is the mail's last
	discarding bool   // inside an over-long command line
	cmdDL      time.Time
	dataDL     time.Time
	idleDL     time.Time
	cause      string // the result of the deadline in force

	wmu sync.Mutex // one reply at a time
}

func newGuard(c net.Conn, cfg *guardConfig, release func()) *guard {
	g := &guard{Conn: c, cfg: cfg, release: release}
	g.mu.Lock()
	g.idleDL = time.Now().Add(cfg.idleTimeout)
	g.applyLocked()
	g.mu.Unlock()
	return g
}

// Read passes on the client's bytes once they are scanned.
func (g *guard) Read(p []byte) (int, error) {
	g.rmu.Lock()
	defer g.rmu.Unlock()
	var chunk [4096]byte
	for {
		g.mu.Lock()
		g.scanLocked()
		if g.ready > 0 {
			n := copy(p, g.buf[:g.ready])
			g.buf = g.buf[:copy(g.buf, g.buf[n:])]
			g.ready -= n
			g.mu.Unlock()
			return n, nil
		}
		cause := g.cause
		g.mu.Unlock()
		if g.reply != "" {
			reply := g.reply
			g.reply = ""
			if err := g.writeReply(reply); err != nil {
				return 0, err
			}
			continue
		}
		if g.rerr != nil {
			return 0, g.readFailed(g.rerr, cause)
		}
		n, err := g.Conn.Read(chunk[:])
		g.buf = append(g.buf, chunk[:n]...)
		g.rerr = err
	}
}

// readFailed ends the connection on a passed deadline, with the 421 RFC
// 5321 asks for, and returns err for go-smtp to end its session.
func (g *guard) readFailed(err error, cause string) error {
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		return err
	}
	what := map[string]string{resultCommandTimeout: "Timeout waiting for a command",
		resultDataTimeout: "Timeout reading the message", resultIdleTimeout: "Connection idle too long"}[cause]
	g.cfg.event(cause)
	g.writeReply(fmt.Sprintf("421 4.4.2 %s %s, closing connection\r\n", g.cfg.domain, what))
	// FIN right after the reply, so that a client still sending reads
	// the 421 before the reset its unread bytes cause on Close.
	if cw, ok := g.Conn.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	g.Conn.Close()
	return err
}

// scanLocked advances ready over buf, following the phase.
func (g *guard) scanLocked() {
	for g.ready < len(g.buf) && g.reply == "" {
		rest := g.buf[g.ready:]
		switch g.phase {
		case phaseData:
			i := g.scanData(rest)
			g.ready += i
			if g.phase == phaseData {
				return
			}
		case phaseChunk:
			n := min(uint64(len(rest)), g.chunkLeft)
			g.ready += int(n)
			g.chunkLeft -= n
			if g.chunkLeft > 0 {
				return
			}
			g.endContentLocked(g.chunkLast)
		case phaseCommand:
			if !g.scanCommand(rest) {
				return
			}
		}
	}
}

// scanData runs the end-of-data scan over b and returns how much of it
// is content (all of it, or up to and with the terminating ".\r\n").
func (g *guard) scanData(b []byte) int {
	for i := 0; i < len(b); i++ {
		if g.dot == dotData {
			// Inside a line only a CR matters: skip to it.
			j := bytes.IndexByte(b[i:], '\r')
			if j < 0 {
				return len(b)
			}
			i += j
		}
		c := b[i]
		switch g.dot {
		case dotBeginLine:
			switch c {
			case '.':
				g.dot = dotDot
			case '\r':
				g.dot = dotCR
			default:
				g.dot = dotData
			}
		case dotDot:
			if c == '\r' {
				g.dot = dotDotCR
			} else {
				g.dot = dotData
			}
		case dotDotCR:
			if c == '\n' {
				g.endContentLocked(true)
				return i + 1
			}
			g.dot = dotData
		case dotCR:
			if c == '\n' {
				g.dot = dotBeginLine
			} else {
				g.dot = dotData
			}
		case dotData:
			if c == '\r' {
				g.dot = dotCR
			}
		}
	}
	return len(b)
}

// scanCommand scans the command line at the start of b (which follows
// ready). It reports whether it made progress; an over-long line is
// only dealt with once go-smtp has taken every line before it, so that
// the 500 comes after their replies.
func (g *guard) scanCommand(b []byte) bool {
	max := g.cfg.maxCommandLine
	i := bytes.IndexByte(b, '\n')
	if g.discarding {
		if i < 0 {
			g.buf = g.buf[:g.ready]
			return false
		}
		g.buf = append(g.buf[:g.ready], b[i+1:]...)
		g.discarding = false
		g.tooLongLocked()
		return true
	}
	if i < 0 && len(b) <= max {
		return false // wait for the rest of the line
	}
	if i < 0 || i+1 > max {
		if g.ready > 0 {
			return false
		}
		if i < 0 {
			g.discarding = true
			g.buf = g.buf[:0]
			return false
		}
		g.buf = append(g.buf[:0], b[i+1:]...)
		g.tooLongLocked()
		return true
	}
	g.ready += i + 1
	if n, last, ok := bdatChunk(b[:i+1]); ok {
		if n == 0 {
			if last {
				g.endContentLocked(true)
			}
			return true
		}
		g.phase, g.chunkLeft, g.chunkLast = phaseChunk, n, last
		g.dataDL = time.Now().Add(g.cfg.dataTimeout)
		g.applyLocked()
	}
	return true
}

// tooLongLocked queues the answer to a discarded command line.
func (g *guard) tooLongLocked() {
	g.cfg.event(resultCommandTooLong)
	g.reply = fmt.Sprintf("500 5.5.2 Line too long (the limit is %d bytes)\r\n", g.cfg.maxCommandLine)
}

// endContentLocked returns to commands at the end of a mail's content
// or a BDAT chunk; the end of a mail restarts the idle clock. Until
// go-smtp sets the next command's deadline only the idle one holds.
func (g *guard) endContentLocked(mailEnded bool) {
	g.phase = phaseCommand
	g.dataDL, g.cmdDL = time.Time{}, time.Time{}
	if mailEnded {
		g.idleDL = time.Now().Add(g.cfg.idleTimeout)
	}
	g.applyLocked()
}

// applyLocked sets the earliest deadline that holds in the phase.
func (g *guard) applyLocked() {
	dl, cause := g.cmdDL, resultCommandTimeout
	if g.phase != phaseCommand {
		dl, cause = g.dataDL, resultDataTimeout
	}
	if dl.IsZero() || g.idleDL.Before(dl) {
		dl, cause = g.idleDL, resultIdleTimeout
	}
	g.cause = cause
	g.Conn.SetReadDeadline(dl)
}

// SetReadDeadline is go-smtp's per-command deadline; the guard keeps
// it no later than the idle deadline and ignores it while reading mail
// content, which has its own.
func (g *guard) SetReadDeadline(t time.Time) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.cmdDL = t
	g.applyLocked()
	return nil
}

// Write sends go-smtp's replies. A 354 starts the mail's content (set
// before the client can see it); the EHLO SIZE line is corrected.
func (g *guard) Write(p []byte) (int, error) {
	g.wmu.Lock()
	defer g.wmu.Unlock()
	if bytes.HasPrefix(p, []byte("354 ")) {
		g.mu.Lock()
		g.phase, g.dot = phaseData, dotBeginLine
		g.dataDL = time.Now().Add(g.cfg.dataTimeout)
		g.applyLocked()
		g.mu.Unlock()
	}
	if size, ok := g.cfg.sizeLines[string(p)]; ok {
		if _, err := g.Conn.Write(size); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	return g.Conn.Write(p)
}

// writeReply writes an answer of the guard's own.
func (g *guard) writeReply(s string) error {
	g.wmu.Lock()
	defer g.wmu.Unlock()
	g.Conn.SetWriteDeadline(time.Now().Add(g.cfg.writeTimeout))
	_, err := g.Conn.Write([]byte(s))
	return err
}

// Close closes the connection and frees its slot.
func (g *guard) Close() error {
	g.closed.Do(g.release)
	return g.Conn.Close()
}

// bdatChunk reports the chunk size of a BDAT command line, parsed as
// go-smtp v0.25.1 parses it (conn.go handleBdat): every command it
// parses this way is followed by exactly n bytes it consumes.
func bdatChunk(line []byte) (n uint64, last, ok bool) {
	s := strings.TrimRight(string(line), "\r\n")
	if len(s) < 6 || s[4] != ' ' || !strings.EqualFold(s[:4], "BDAT") {
		return 0, false, false
	}
	args := strings.Fields(s[5:])
	if len(args) == 0 || len(args) > 2 {
		return 0, false, false
	}
	if len(args) == 2 {
		if !strings.EqualFold(args[1], "LAST") {
			return 0, false, false
		}
		last = true
	}
	n, err := strconv.ParseUint(args[0], 10, 32)
	if err != nil {
		return 0, false, false
	}
	return n, last, true
}
