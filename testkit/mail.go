package testkit

import (
	"mime"
	"strings"
	"time"
)

// SampleMail builds a plain-text RFC 5322 mail with CRLF line endings.
// A non-ASCII subject is RFC 2047-encoded; the body is sent as UTF-8 8bit
// with its line endings turned into CRLF. The Date header is left out when
// date is zero, the Message-ID header when messageID is empty; angle
// brackets are added to messageID when missing.
func SampleMail(from, to, subject, body string, date time.Time, messageID string) []byte {
	var b strings.Builder
	field := func(name, value string) {
		b.WriteString(name + ": " + value + "\r\n")
	}
	field("From", from)
	field("To", to)
	field("Subject", mime.QEncoding.Encode("utf-8", subject))
	if !date.IsZero() {
		field("Date", date.Format(time.RFC1123Z))
	}
	if messageID != "" {
		if !strings.HasPrefix(messageID, "<") {
			messageID = "<" + messageID + ">"
		}
		field("Message-ID", messageID)
	}
	field("MIME-Version", "1.0")
	field("Content-Type", "text/plain; charset=utf-8")
	field("Content-Transfer-Encoding", "8bit")
	b.WriteString("\r\n")
	b.WriteString(crlf(body))
	return []byte(b.String())
}

// crlf turns every line ending of s (LF or CRLF) into CRLF.
func crlf(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "\r\n", "\n"), "\n", "\r\n")
}
