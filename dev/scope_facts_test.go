package dev_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/dev"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/testkit"
	"github.com/mailscope/mailscope/workers"
)

// mail_header: scopes match the header as a reader sees it: unfolded and
// RFC 2047-decoded, adjacent encoded-words joined, and an encoded-word
// that cannot be decoded (unknown charset, broken syntax) kept as written
// while the rest of the value is decoded.
func TestHeaderScopesMatchDecodedValues(t *testing.T) {
	b := setup(t, workers.Config{})
	b.putRules(t, rules.FlagReject, strings.Join([]string{
		`mail_header:X-Topic:^Café\x20au\x20lait$ 40 topic matched`,
		`mail_header:X-Note:^=\?x-unknown\?Q\?abc\?=\x20and\x20éé\x20plus\x20=\?oops\x20=\?a\?bc\x20=\?a\?b\?c$ 30 note matched`,
		`mail_header:X-Gap:^=\?x-unknown\?q\?z\?=\x20=\?utf-8\?q\?a\x20b\?=\x20é$ 20 gap matched`,
		"",
	}, "\n"))

	cases := []struct{ rcpt, header, reason string }{
		// Two encoded-words folded onto two lines: the fold and the white
		// space between the words go.
		{"topic@example.org", "X-Topic: =?UTF-8?Q?Caf=C3=A9?=\r\n =?UTF-8?Q?_au_lait?=", "topic matched"},
		// An unknown charset, adjacent good words, and three things that
		// look like the start of a word but are not one.
		{"note@example.org", "X-Note: =?x-unknown?Q?abc?= and =?UTF-8?B?w6k=?= =?UTF-8?B?w6k=?= plus =?oops =?a?bc =?a?b?c", "note matched"},
		// Word by word (the first is in an unknown charset), a "word"
		// with white space inside is not an encoded-word.
		{"gap@example.org", "X-Gap: =?x-unknown?q?z?= =?utf-8?q?a b?= =?UTF-8?B?w6k=?=", "gap matched"},
		// A value that matches no rule: the mail is processed.
		{"plain@example.org", "X-Topic: Café au lait, folded\r\n\tand not only", ""},
	}
	for _, c := range cases {
		b.sendSMTP(t, mail(t, c.rcpt, "headers", b.rsaKey, "example.com", "s1", c.header), c.rcpt)
	}
	for _, c := range cases {
		o := b.outcomes.First(t, c.rcpt)
		if c.reason == "" {
			wantDisposition(t, o, contracts.Processed, "publish")
			wantRule(t, o, rules.FlagReject, "", 0)
			continue
		}
		if o.Disposition != contracts.Rejected || o.Reason != c.reason {
			t.Errorf("%s: disposition %s reason %q, want rejected %q", c.rcpt, o.Disposition, o.Reason, c.reason)
		}
	}
}

// sender_percent: picks senders by a stable hash of the lower-cased From
// address: the same sender is picked whatever the case of its address,
// and raising the percentage only adds senders.
func TestSenderPercentIsStableAndOnlyGrows(t *testing.T) {
	b := setup(t, workers.Config{})
	const senders = 12
	picked := func(round, pct string, upper bool) map[int]bool {
		t.Helper()
		b.putRules(t, rules.FlagReject, fmt.Sprintf("sender_percent:%s 10 picked at %s\n", pct, pct))
		var wg sync.WaitGroup
		rcpt := func(i int) string { return fmt.Sprintf("%s-%d@example.org", round, i) }
		for i := range senders {
			wg.Add(1)
			go func() {
				defer wg.Done()
				from := fmt.Sprintf("sender%d@example.net", i)
				if upper {
					from = strings.ToUpper(from)
				}
				raw := testkit.SampleMail("Sender <"+from+">", rcpt(i), "percent", "Hello.\r\n",
					time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), strings.ReplaceAll(rcpt(i), "@", ".")+"@example.net")
				if err := dev.SendSMTP(b.sys.SMTPAddr, from, []string{rcpt(i)}, raw); err != nil {
					t.Errorf("send %s: %v", rcpt(i), err)
				}
			}()
		}
		wg.Wait()
		out := map[int]bool{}
		for i := range senders {
			o := b.outcomes.First(t, rcpt(i))
			switch o.Disposition {
			case contracts.Rejected:
				if o.Reason != "picked at "+pct {
					t.Errorf("%s: reason %q", rcpt(i), o.Reason)
				}
				wantRule(t, o, rules.FlagReject, "picked at "+pct, 1)
				out[i] = true
			case contracts.Processed:
				wantRule(t, o, rules.FlagReject, "", 0)
			default:
				t.Errorf("%s: disposition %s", rcpt(i), o.Disposition)
			}
		}
		return out
	}
	half := picked("half", "50", false)
	if len(half) == 0 || len(half) == senders {
		t.Fatalf("sender_percent:50 picked %d of %d senders", len(half), senders)
	}
	halfUpper := picked("upper", "50", true)
	for i := range senders {
		if half[i] != halfUpper[i] {
			t.Errorf("sender %d: picked %v in lower case, %v in upper case", i, half[i], halfUpper[i])
		}
	}
	most := picked("most", "90.5", false)
	for i := range half {
		if !most[i] {
			t.Errorf("sender %d picked at 50%% but not at 90.5%%", i)
		}
	}
	if len(most) < len(half) {
		t.Errorf("raising the percentage picked fewer senders: %d then %d", len(half), len(most))
	}
	if none := picked("none", "0", false); len(none) != 0 {
		t.Errorf("sender_percent:0 picked %d senders", len(none))
	}
}

// The verification kill switch is decided before DKIM is verified: a
// dkim: or trust: term in its rules cannot match (the facts do not exist
// yet), so such a rule never switches verification off, and the mail is
// verified as the rule below it says.
func TestVerifySwitchIgnoresAuthScopes(t *testing.T) {
	b := setup(t, workers.Config{})
	b.putRules(t, rules.FlagDKIMVerify, "dkim:example.com 20 false\ntrust:strong 10 false\ndefault 0 true\n")
	b.sendSMTP(t, mail(t, "verify@example.org", "verify", b.rsaKey, "example.com", "s1"), "verify@example.org")
	o := b.outcomes.First(t, "verify@example.org")
	wantDisposition(t, o, contracts.Processed, "publish")
	wantDKIM(t, o, "example.com", "s1", "rsa-sha256", contracts.ResultPass)
	wantRule(t, o, rules.FlagDKIMVerify, "true", 3)
}
