package producer

import (
	"bytes"
	"errors"
	"io"
	"net"

	"github.com/emersion/go-smtp"
)

// Replies to mail whose content breaks a limit. All are permanent: the
// mail can never be taken, so the MTA must bounce it rather than retry.
// The size limit keeps X.3.4 ("message too big for system", RFC 3463),
// the code RFC 1870 gives for mail over the advertised SIZE; the shape
// limits use X.6.0 ("other or undefined media error": something about the
// content makes the mail undeliverable), with 554, the RFC 5321 reply for
// a failed DATA. Not 500 5.5.2: that answers a command, not content.
var (
	errTooLarge = &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4},
		Message: "Message size exceeds fixed maximum message size"}
	errDataLineTooLong = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
		Message: "Message has a line longer than the server accepts"}
	errHeaderTooLarge = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
		Message: "Message header section is larger than the server accepts"}
	errTooManyHeaders = &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0},
		Message: "Message has more header fields than the server accepts"}
	// errReadFailed: the connection broke during DATA; the MTA retries.
	errReadFailed = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0},
		Message: "Error reading message"}
	// errDataTimeout: a deadline passed during DATA. The connection is
	// closed with it (see guard).
	errDataTimeout = &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 4, 2},
		Message: "Timeout reading message, closing connection"}
)

// dataLimits are the limits on one mail's content.
type dataLimits struct {
	maxSize         int64
	maxLine         int
	maxHeaderBytes  int
	maxHeaderFields int
}

func (c Config) dataLimits() dataLimits {
	return dataLimits{c.MaxSize, c.MaxDataLine, c.MaxHeaderBytes, c.MaxHeaderFields}
}

// limitedData reads a mail's content (dot-unstuffed, from go-smtp's DATA
// or BDAT reader) and fails with the reply for the first limit it breaks.
// It keeps nothing but counters, so an over-long line costs no memory.
// Lines end at LF (CRLF or a bare LF); lengths count the line end.
type limitedData struct {
	r   io.Reader
	lim dataLimits
	err error // sticky: the first limit broken

	size        int64
	lineLen     int  // bytes of the current line so far
	first       byte // the current line's first byte
	inHeader    bool // still in the header section
	headerBytes int  // header lines completed so far
	fields      int
}

func newLimitedData(r io.Reader, lim dataLimits) *limitedData {
	return &limitedData{r: r, lim: lim, inHeader: true}
}

func (d *limitedData) Read(p []byte) (int, error) {
	if d.err != nil {
		return 0, d.err
	}
	n, err := d.r.Read(p)
	b := p[:n]
	for i := 0; d.inHeader && i < len(b); i++ {
		if d.err = d.step(b[i]); d.err != nil {
			return i, d.err
		}
		if !d.inHeader {
			b = b[i+1:]
		}
	}
	if !d.inHeader {
		if d.err = d.body(b); d.err != nil {
			return 0, d.err
		}
	}
	return n, err
}

// body accounts for b, all of it after the header section: only the
// size and line lengths matter there, found a line at a time.
func (d *limitedData) body(b []byte) error {
	if d.size += int64(len(b)); d.size > d.lim.maxSize {
		return errTooLarge
	}
	for {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			d.lineLen += len(b)
			break
		}
		if d.lineLen+i+1 > d.lim.maxLine {
			return errDataLineTooLong
		}
		d.lineLen, b = 0, b[i+1:]
	}
	if d.lineLen > d.lim.maxLine {
		return errDataLineTooLong
	}
	return nil
}

// step accounts for one byte and returns the limit it breaks, if any.
func (d *limitedData) step(c byte) error {
	d.size++
	if d.size > d.lim.maxSize {
		return errTooLarge
	}
	d.lineLen++
	if d.lineLen == 1 {
		d.first = c
		if d.inHeader && c != ' ' && c != '\t' && c != '\r' && c != '\n' {
			d.fields++
			if d.fields > d.lim.maxHeaderFields {
				return errTooManyHeaders
			}
		}
	}
	if d.lineLen > d.lim.maxLine {
		return errDataLineTooLong
	}
	// The line that may still be the empty one ending the header section
	// ("\r\n" or "\n") is not counted until it is known not to be.
	blank := d.lineLen == 1 && (c == '\r' || c == '\n') || d.lineLen == 2 && d.first == '\r' && c == '\n'
	if d.inHeader && !blank && d.headerBytes+d.lineLen > d.lim.maxHeaderBytes {
		return errHeaderTooLarge
	}
	if c == '\n' {
		if d.inHeader {
			if blank {
				d.inHeader = false
			} else {
				d.headerBytes += d.lineLen
			}
		}
		d.lineLen = 0
	}
	return nil
}

// dataError is the reply to a mail whose content could not be read to
// its end, and the result it is counted as ("" when already counted): a
// broken limit is permanent
// (nothing stored, the transaction reset by go-smtp, the connection
// usable), a timeout closes the connection, and any other failure is
// temporary so the MTA retries.
func dataError(err error) (*smtp.SMTPError, string) {
	var se *smtp.SMTPError
	var ne net.Error
	switch {
	case errors.Is(err, errTooLarge), errors.Is(err, smtp.ErrDataTooLarge):
		// go-smtp's own limit (BDAT chunks over MaxSize+1) is the same.
		return errTooLarge, resultTooLarge
	case errors.Is(err, errDataLineTooLong):
		return errDataLineTooLong, resultLineTooLong
	case errors.Is(err, errHeaderTooLarge):
		return errHeaderTooLarge, resultHeaderTooLarge
	case errors.Is(err, errTooManyHeaders):
		return errTooManyHeaders, resultTooManyHeaders
	case errors.As(err, &ne) && ne.Timeout():
		return errDataTimeout, "" // counted by the guard, by its deadline
	case errors.As(err, &se):
		return se, resultReadError
	}
	return errReadFailed, resultReadError
}
