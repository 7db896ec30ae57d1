package dev_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"runtime/metrics"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/dev"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/testkit"
	"github.com/mailscope/mailscope/workers"
)

// Rules of the malformed-mail test: header scopes read the fields that
// the malformed mails break (RFC 2047 words, 8-bit bytes, NULs, long
// values), so that evaluating them is part of each mail's processing.
// Line numbers are checked.
const (
	malformedHandler = `mail_header:Subject:(?i)^garbage 30 quarantine
mail_header:X-Long:^a+$ 20 discard
mail_header:X-Nul:zero 10 quarantine
default 0 publish
`
	malformedReject = "mail_header:Subject:(?i)free\\smoney 10 spam subject\n"
)

// malformedCase is one mail of the malformed corpus and its defined
// outcome: refused at SMTP time with code/enhanced, or processed into an
// outcome checked by check (disposition, handler, what the summary says).
type malformedCase struct {
	name string
	raw  []byte
	// code and enhanced: the producer's refusal (docs/smtp.md); 0 when
	// the mail is to be taken.
	code     int
	enhanced smtp.EnhancedCode
	check    func(t *testing.T, o contracts.Outcome)
}

// malformedHeader is the header of the corpus's mails, From first.
func malformedHeader(subject string) string {
	return "From: Alice <alice@example.com>\r\nTo: bob@example.org\r\nSubject: " + subject +
		"\r\nDate: Wed, 02 Dec 2026 12:00:00 +0000\r\nMessage-ID: <" + strings.ReplaceAll(subject, " ", ".") + "@example.com>\r\n"
}

// nestedMultipart is a mail whose body nests multipart/mixed depth deep,
// with a text part at the bottom.
func nestedMultipart(depth int) []byte {
	var b strings.Builder
	b.WriteString(malformedHeader("deep multipart"))
	b.WriteString("MIME-Version: 1.0\r\n")
	for i := range depth {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=\"b%d\"\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("Content-Type: text/plain\r\n\r\nthe bottom\r\n")
	for i := depth - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	return []byte(b.String())
}

// garbage returns n bytes of 8-bit garbage (0x80-0xff, CR and LF kept
// out), the same on every run.
func garbage(n int) []byte {
	r := rand.New(rand.NewPCG(1, 2))
	g := make([]byte, n)
	for i := range g {
		g[i] = byte(0x80 + r.IntN(0x80))
	}
	return g
}

// malformedCorpus makes the corpus; sign signs a mail with a key the
// test's DNS server publishes, so that DKIM verification reads some of
// the malformed mails too.
func malformedCorpus(sign func([]byte) []byte) []malformedCase {
	dead := func(reason string) func(*testing.T, contracts.Outcome) {
		return func(t *testing.T, o contracts.Outcome) {
			if o.Disposition != contracts.Dead || !strings.Contains(o.Reason, reason) || o.Attempt != 1 {
				t.Errorf("disposition %s attempt %d reason %q, want dead at once with %q", o.Disposition, o.Attempt, o.Reason, reason)
			}
		}
	}
	// processed: the handler the rule on line of malformedHandler names
	// took the mail; publish and quarantine summarize it.
	processed := func(handler string, line int, more func(*testing.T, contracts.Outcome)) func(*testing.T, contracts.Outcome) {
		return func(t *testing.T, o contracts.Outcome) {
			d := map[string]contracts.Disposition{"publish": contracts.Processed, "quarantine": contracts.Quarantined, "discard": contracts.Discarded}[handler]
			wantDisposition(t, o, d, handler)
			wantRule(t, o, rules.FlagHandler, handler, line)
			if handler != "discard" && o.Summary == nil {
				t.Fatalf("%s without a summary", d)
			}
			if more != nil {
				more(t, o)
			}
		}
	}
	dkimPass := func(t *testing.T, o contracts.Outcome) {
		t.Helper()
		wantDKIM(t, o, "example.com", "s1", "rsa-sha256", contracts.ResultPass)
	}
	refused := smtp.EnhancedCode{5, 6, 0}
	body := "Hello.\r\n"

	var cs []malformedCase
	add := func(c malformedCase) { cs = append(cs, c) }

	// Truncated headers.
	add(malformedCase{name: "truncated mid-field",
		raw:   []byte("From: Alice <alice@example.com>\r\nSubject: cut\r\nX-Cut-Here"),
		check: dead("malformed mail: header")})
	add(malformedCase{name: "truncated after a field, no empty line, no body",
		raw:   []byte(malformedHeader("no body")),
		check: processed("publish", 4, nil)})
	add(malformedCase{name: "no From field",
		raw:   []byte("To: bob@example.org\r\nSubject: anonymous\r\n\r\n" + body),
		check: dead("no From header field")})
	add(malformedCase{name: "continuation line first",
		raw:   []byte(" folded into nothing\r\n" + malformedHeader("continuation first") + "\r\n" + body),
		check: dead("malformed mail: header")})

	// 8-bit garbage, signed: headers and body of bytes no charset names.
	g := garbage(4096)
	add(malformedCase{name: "8-bit garbage in header and body",
		raw: sign([]byte(malformedHeader("garbage "+string(g[:200])) + "X-Garbage: " + string(g[200:400]) + "\r\n\r\n" +
			string(bytes.Join([][]byte{g[400:1400], g[1400:2400], g[2400:]}, []byte("\r\n"))) + "\r\n")),
		check: processed("quarantine", 1, dkimPass)})
	add(malformedCase{name: "8-bit garbage as header field names",
		raw:   []byte(string(g[:40]) + ": value\r\n" + malformedHeader("garbage names") + "\r\n" + body),
		check: dead("malformed MIME header key")})

	// Many header fields: the producer's limit is 1000 (docs/smtp.md).
	fields := func(n int) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, "X-Filler-%d: field %d\r\n", i, i)
		}
		return b.String()
	}
	add(malformedCase{name: "10,000 header fields",
		raw:  []byte(fields(10000) + malformedHeader("ten thousand") + "\r\n" + body),
		code: 554, enhanced: refused})
	add(malformedCase{name: "1000 header fields, the limit",
		raw:   sign([]byte(fields(994) + malformedHeader("one thousand") + "\r\n" + body)), // with From ... Message-ID and DKIM-Signature
		check: processed("publish", 4, dkimPass)})

	// Deep multipart: the summary walks 16 levels (workers.MaxMIMEDepth).
	add(malformedCase{name: "100-deep multipart",
		raw: sign(nestedMultipart(100)),
		check: processed("publish", 4, func(t *testing.T, o contracts.Outcome) {
			dkimPass(t, o)
			if !strings.Contains(o.Summary.Truncated, "MIME nesting deeper than") {
				t.Errorf("summary truncated %q, want the MIME depth", o.Summary.Truncated)
			}
		})})

	// Long header lines: content lines and header sections stop at 1 MiB.
	mib := strings.Repeat("a", 1<<20)
	add(malformedCase{name: "1 MiB header line",
		raw:  []byte(malformedHeader("long line") + "X-Long: " + mib + "\r\n\r\n" + body),
		code: 554, enhanced: refused})
	add(malformedCase{name: "1 MiB header field, folded",
		raw:  []byte(malformedHeader("long folded") + "X-Long: " + strings.Join(strings.SplitAfter(mib, strings.Repeat("a", 999)), "\r\n ") + "\r\n\r\n" + body),
		code: 554, enhanced: refused})
	add(malformedCase{name: "512 KiB header line, under the limits",
		raw:   sign([]byte(malformedHeader("half long") + "X-Long: " + mib[:512<<10] + "\r\n\r\n" + body)),
		check: processed("discard", 2, dkimPass)})

	// NUL bytes.
	add(malformedCase{name: "NUL bytes in a header field",
		raw:   []byte(malformedHeader("nul\x00inside") + "X-Nul: zero\x00byte\r\n\r\n" + body),
		check: processed("quarantine", 3, nil)})
	add(malformedCase{name: "NUL bytes in the body, signed",
		raw:   sign([]byte(malformedHeader("nul body") + "\r\nline\x00one\r\n\x00\x00\x00\r\n")),
		check: processed("publish", 4, dkimPass)})

	// Wrong charsets.
	add(malformedCase{name: "RFC 2047 word in an unknown charset",
		raw: []byte(malformedHeader("=?x-no-such-charset?Q?garbage?=") + "\r\n" + body),
		check: processed("publish", 4, func(t *testing.T, o contracts.Outcome) {
			if o.Summary.Subject != "=?x-no-such-charset?Q?garbage?=" {
				t.Errorf("subject %q, want the undecodable word as it is", o.Summary.Subject)
			}
		})})
	add(malformedCase{name: "RFC 2047 word that is not base64",
		raw:   []byte(malformedHeader("=?utf-8?B?!!!not*base64?=") + "\r\n" + body),
		check: processed("publish", 4, nil)})
	add(malformedCase{name: "RFC 2047 spam subject in ISO-8859-1",
		raw: []byte(malformedHeader("=?iso-8859-1?Q?Free_money_=E0_gogo?=") + "\r\n" + body),
		check: func(t *testing.T, o contracts.Outcome) {
			wantRule(t, o, rules.FlagReject, "spam subject", 1)
			if o.Disposition != contracts.Rejected {
				t.Errorf("disposition %s, want rejected", o.Disposition)
			}
		}})
	add(malformedCase{name: "body in a charset no one knows, signed",
		raw: sign([]byte(malformedHeader("klingon") + "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=x-klingon\r\n\r\n" +
			string(g[:300]) + "\r\n")),
		check: processed("publish", 4, dkimPass)})
	add(malformedCase{name: "Latin-1 body declared UTF-8",
		raw: []byte(malformedHeader("latin1") + "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nCaf\xe9 cr\xe8me br\xfbl\xe9e\r\n"),
		check: processed("publish", 4, func(t *testing.T, o contracts.Outcome) {
			if len(o.Summary.TextParts) != 1 || !strings.Contains(o.Summary.TextParts[0].Text, "Caf") {
				t.Errorf("text parts %+v, want the one text part", o.Summary.TextParts)
			}
		})})
	return cs
}

// TestMalformedCorpus sends mails that break RFC 5322 and MIME in the
// ways real traffic does (truncated headers, 8-bit garbage, 10,000
// header fields, 100-deep multipart, 1 MiB header lines, NUL bytes, wrong
// charsets) over SMTP through the whole system, with rules present whose
// scopes read the broken fields, one mail at a time. Each gets its
// defined outcome: refused by the producer at SMTP time with the code
// docs/smtp.md gives, dead-lettered at once as malformed, or processed.
// No wait is longer than systest.Wait, so a mail that hangs fails the
// test; and the heap the whole system allocates for each mail, and what
// it still holds after all of them, stay within bounds.
func TestMalformedCorpus(t *testing.T) {
	b := setup(t, workers.Config{})
	b.putRules(t, rules.FlagHandler, malformedHandler)
	b.putRules(t, rules.FlagReject, malformedReject)
	sign := func(raw []byte) []byte {
		signed, err := testkit.Sign(raw, testkit.SignOptions{Domain: "example.com", Selector: "s1", Key: b.rsaKey})
		if err != nil {
			t.Fatal(err)
		}
		return signed
	}
	cases := malformedCorpus(sign)

	// Warm up: the first mail pays for connections, caches and pools.
	b.sendSMTP(t, sign([]byte(malformedHeader("warm up")+"\r\nwarm\r\n")), "warmup@malformed.test")
	b.outcomes.First(t, "warmup@malformed.test")
	liveBefore := liveHeap()

	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rcpt := fmt.Sprintf("m%02d@malformed.test", i)
			before := allocated()
			err := dev.SendSMTP(b.sys.SMTPAddr, "alice@example.com", []string{rcpt}, c.raw)
			if c.code != 0 {
				var se *smtp.SMTPError
				if !errors.As(err, &se) || se.Code != c.code || se.EnhancedCode != c.enhanced {
					t.Fatalf("SMTP: %v, want %d %v", err, c.code, c.enhanced)
				}
			} else {
				if err != nil {
					t.Fatalf("SMTP: %v, want 250", err)
				}
				c.check(t, b.outcomes.First(t, rcpt))
			}
			// Bounded memory: what the whole system (producer, server,
			// worker) allocates for one mail is a small multiple of the
			// mail's size, plus a fixed cost.
			alloc := allocated() - before
			limit := uint64(malformedAllocPerByte*len(c.raw)) + malformedAllocFixed
			t.Logf("%d bytes, %d allocated (%.1f per byte of mail)", len(c.raw), alloc, float64(alloc)/float64(len(c.raw)))
			if alloc > limit {
				t.Errorf("the system allocated %d bytes for a mail of %d, over %d", alloc, len(c.raw), limit)
			}
		})
	}
	// Every mail taken has exactly one outcome, and the queue is drained.
	systest.WaitDrained(t, b.sys.JS)
	// Nothing of the corpus is kept: the live heap after it is the one
	// before, up to what the stream's caches and the outcome log hold.
	grown := int64(liveHeap()) - int64(liveBefore)
	t.Logf("live heap: %d bytes before the corpus, %+d after", liveBefore, grown)
	if grown > malformedLiveGrowth {
		t.Errorf("live heap grew by %d bytes over the corpus, more than %d", grown, malformedLiveGrowth)
	}
}

// Bounds of TestMalformedCorpus; the test logs what each mail took, and
// docs/testing.md ("Mail corpora") what was measured.
const (
	malformedAllocPerByte = 48
	malformedAllocFixed   = 8 << 20
	malformedLiveGrowth   = 16 << 20
)

// allocated returns the bytes allocated on the heap by the process so far.
func allocated() uint64 {
	s := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// liveHeap returns the heap's live bytes after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}
