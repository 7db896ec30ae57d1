//go:build faults

package faults

import (
	"crypto"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/mailscope/mailscope/testkit"
)

// The signing domain of the suite's mail, its selector, and the domain
// of the recipients.
const (
	signDomain = "faults.test"
	selector   = "s1"
	rcptDomain = "rcpt.faults.test"
)

// mail is one logical mail: the same bytes and envelope every time it
// is sent, a Message-ID and a recipient of its own, so that the suite
// counts its outcomes whatever ids the system gives its copies.
type mail struct {
	n         int
	messageID string // without angle brackets
	from      string
	rcpt      string
	raw       []byte

	// Set by the sender that sends it.
	accepted    bool  // a 250 to the end of DATA
	failed      error // a 5xx, or the run ended before a 250
	sends       int   // transactions that reached DATA's end
	lostReplies int   // ... whose reply never came (connection lost, timeout)
	tempfails   int   // 4xx replies, at any step
}

// makeMails makes n logical mails of mode, DKIM-signed with key (the
// workers find its record on the suite's DNS server), of sizes from a
// few hundred bytes to 64 KiB.
func makeMails(t *testing.T, mode string, n int, key crypto.Signer, rng *rand.Rand) []*mail {
	t.Helper()
	date := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	mails := make([]*mail, n)
	for i := range mails {
		m := &mail{
			n:         i,
			messageID: fmt.Sprintf("%s.%d@%s", mode, i, signDomain),
			from:      fmt.Sprintf("sender%d@%s", i%7, signDomain),
			rcpt:      fmt.Sprintf("%s-%d@%s", mode, i, rcptDomain),
		}
		size := 200 + rng.IntN(2000)
		if i%20 == 0 {
			size = 16<<10 + rng.IntN(48<<10)
		}
		body := strings.Repeat(fmt.Sprintf("mail %d of the %s fault run.\n", i, mode), size/32+1)
		raw := testkit.SampleMail(m.from, m.rcpt, fmt.Sprintf("%s fault %d", mode, i), body, date, "<"+m.messageID+">")
		signed, err := testkit.Sign(raw, testkit.SignOptions{Domain: signDomain, Selector: selector, Key: key})
		if err != nil {
			t.Fatal(err)
		}
		m.raw = signed
		mails[i] = m
	}
	return mails
}
