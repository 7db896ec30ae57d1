package workers

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/mailscope/mailscope/auth"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/keyserver"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/testkit"
)

// pdfBytes is the decoded content of the test attachment: not a real PDF,
// but bytes of every value, so that a decoding slip changes the size.
var pdfBytes = func() []byte {
	b := []byte("%PDF-1.4\n")
	for i := range 3000 {
		b = append(b, byte(i*7))
	}
	return b
}()

// multipartMail is multipart/mixed: text/plain in ISO-8859-1 sent
// quoted-printable, text/html, and a PDF attachment in base64.
func multipartMail() []byte {
	enc := base64.StdEncoding.EncodeToString(pdfBytes)
	var b64 []string
	for len(enc) > 76 {
		b64 = append(b64, enc[:76])
		enc = enc[76:]
	}
	b64 = append(b64, enc)
	lines := []string{
		"From: Alice <alice@example.com>",
		"To: Bob <bob@example.org>",
		"Cc: carol@example.org",
		"Subject: =?ISO-8859-1?Q?Gr=FC=DFe_aus_K=F6ln?=",
		"Date: Thu, 26 Nov 2026 12:00:00 +0000",
		"Message-ID: <multi.1@example.com>",
		"MIME-Version: 1.0",
		`Content-Type: multipart/mixed; boundary="outer-boundary"`,
		"",
		"This is a multi-part message in MIME format.",
		"--outer-boundary",
		"Content-Type: text/plain; charset=ISO-8859-1",
		"Content-Transfer-Encoding: quoted-printable",
		"",
		"Gr=FC=DFe aus K=F6ln, caf=E9 =E0 la cr=E8me, =A31 =3D =A31.",
		"--outer-boundary",
		"Content-Type: text/html; charset=utf-8",
		"Content-Transfer-Encoding: 8bit",
		"",
		"<p>Grüße aus Köln</p>",
		"--outer-boundary",
		`Content-Type: application/pdf; name="report.pdf"`,
		`Content-Disposition: attachment; filename="report.pdf"`,
		"Content-Transfer-Encoding: base64",
		"",
	}
	lines = append(lines, b64...)
	lines = append(lines, "--outer-boundary--")
	return crlf(lines...)
}

func TestProcessMultipartSummary(t *testing.T) {
	b := setupPipeline(t, Config{})
	raw := b.sign(t, multipartMail(), selRSA)
	out, err := b.p.Process(t.Context(), snapshotOf(t, nil), envelope("multi-1", "bob@example.org"), raw, 1)
	if err != nil {
		t.Fatalf("Process: %v", err)
	}
	if out.Disposition != contracts.Processed || out.Handler != "publish" || out.Attempt != 1 {
		t.Errorf("disposition %s handler %q attempt %d, want processed by publish on attempt 1", out.Disposition, out.Handler, out.Attempt)
	}
	if out.ID != "multi-1" || out.MessageID != "multi.1@example.com" || out.Schema != contracts.OutcomeSchema {
		t.Errorf("id %q message id %q schema %q", out.ID, out.MessageID, out.Schema)
	}
	if out.ProcessedAt.IsZero() || out.Worker.Name != "test-worker" {
		t.Errorf("processed at %v by %+v", out.ProcessedAt, out.Worker)
	}
	if len(out.Auth.DKIM) != 1 || out.Auth.DKIM[0].Result != contracts.ResultPass || out.Auth.DKIM[0].Domain != "example.com" {
		t.Errorf("DKIM %+v, want one pass for example.com", out.Auth.DKIM)
	}
	// Aligned pass, but mail.auth.dkim_strong is off by default.
	if out.Auth.Trust != contracts.TrustWeak {
		t.Errorf("trust %s, want weak", out.Auth.Trust)
	}
	if !strings.Contains(out.Auth.AuthenticationResults, "dkim=pass") {
		t.Errorf("Authentication-Results %q", out.Auth.AuthenticationResults)
	}
	var consulted []string
	for _, f := range out.Flags {
		consulted = append(consulted, f.Flag)
		if f.Rule != nil {
			t.Errorf("%s decided by %+v with no rules", f.Flag, f.Rule)
		}
	}
	if len(consulted) != len(rules.Known()) {
		t.Errorf("flags consulted %v, want every known flag", consulted)
	}

	s := out.Summary
	if s == nil {
		t.Fatal("no summary")
	}
	if s.ParseError != "" {
		t.Errorf("parse error %q", s.ParseError)
	}
	if s.Subject != "Grüße aus Köln" {
		t.Errorf("subject %q", s.Subject)
	}
	if strings.Join(s.From, ",") != "alice@example.com" || strings.Join(s.To, ",") != "bob@example.org" ||
		strings.Join(s.Cc, ",") != "carol@example.org" {
		t.Errorf("from %v to %v cc %v", s.From, s.To, s.Cc)
	}
	if s.Size != len(raw) || s.MessageID != "multi.1@example.com" {
		t.Errorf("size %d message id %q, want %d", s.Size, s.MessageID, len(raw))
	}
	if len(s.TextParts) != 2 {
		t.Fatalf("text parts %+v, want 2", s.TextParts)
	}
	plain, html := s.TextParts[0], s.TextParts[1]
	if plain.ContentType != "text/plain" || strings.TrimRight(plain.Text, "\r\n") != "Grüße aus Köln, café à la crème, £1 = £1." {
		t.Errorf("text/plain part %+v, want the ISO-8859-1 text decoded to UTF-8", plain)
	}
	if html.ContentType != "text/html" || strings.TrimRight(html.Text, "\r\n") != "<p>Grüße aus Köln</p>" {
		t.Errorf("text/html part %+v", html)
	}
	for _, p := range s.TextParts {
		if p.Truncated || !utf8.ValidString(p.Text) {
			t.Errorf("part %s truncated %v valid UTF-8 %v", p.ContentType, p.Truncated, utf8.ValidString(p.Text))
		}
	}
	want := contracts.Attachment{Filename: "report.pdf", ContentType: "application/pdf", Size: len(pdfBytes)}
	if len(s.Attachments) != 1 || s.Attachments[0] != want {
		t.Errorf("attachments %+v, want [%+v]", s.Attachments, want)
	}
}

func TestProcessTruncatesText(t *testing.T) {
	const limit = 15
	b := setupPipeline(t, Config{TextLimit: limit})
	for _, tc := range []struct {
		name, body string
		want       string // the kept text
		truncated  bool
	}{
		// Two-byte runes: the limit falls in the middle of the 8th.
		{"cut in a rune", strings.Repeat("ä", 20), strings.Repeat("ä", 7), true},
		{"cut after a rune", "a" + strings.Repeat("ä", 20), "a" + strings.Repeat("ä", 7), true},
		{"four-byte runes", strings.Repeat("😀", 10), strings.Repeat("😀", 3), true},
		{"ascii", strings.Repeat("x", 40), strings.Repeat("x", limit), true},
		{"exactly the limit", strings.Repeat("y", limit), strings.Repeat("y", limit), false},
		{"short", "hi", "hi", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// The body has no line break, so SampleMail adds none to
			// count toward the limit.
			raw := plainMail("t@example.org", "long", tc.body)
			out, err := b.p.Process(t.Context(), nil, envelope("trunc", "t@example.org"), raw, 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(out.Summary.TextParts) != 1 {
				t.Fatalf("text parts %+v", out.Summary.TextParts)
			}
			p := out.Summary.TextParts[0]
			if p.Text != tc.want || p.Truncated != tc.truncated {
				t.Errorf("text %q truncated %v, want %q truncated %v", p.Text, p.Truncated, tc.want, tc.truncated)
			}
			if !utf8.ValidString(p.Text) || len(p.Text) > limit {
				t.Errorf("text %q: valid UTF-8 %v, %d bytes (limit %d)", p.Text, utf8.ValidString(p.Text), len(p.Text), limit)
			}
		})
	}
}

// TestTruncateKeepsTextAfterInvalidBytes pins a bug: a text part over the
// limit that is not valid UTF-8 (a Latin-1 body labelled UTF-8, common in
// the wild) was trimmed byte by byte until all of it was valid, which
// dropped all text after the first bad byte, re-validating the rest on
// every step: time quadratic in the limit.
func TestTruncateKeepsTextAfterInvalidBytes(t *testing.T) {
	const limit = 64 << 10
	head := strings.Repeat("lorem ipsum ", limit/2/12)
	body := head + "caf\xe9 " + strings.Repeat("dolor sit amet ", limit/15) // one bad byte, halfway
	raw := append(crlf(
		"From: alice@example.com",
		"To: bob@example.org",
		"Subject: mislabelled",
		"Content-Type: text/plain; charset=utf-8",
		"Content-Transfer-Encoding: 8bit",
		""), body...)
	m, err := ParseMail(envelope("latin1", "bob@example.org"), raw)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s := Summarize(t.Context(), m, limit)
	elapsed := time.Since(start)
	if len(s.TextParts) != 1 {
		t.Fatalf("text parts %+v", s.TextParts)
	}
	p := s.TextParts[0]
	if !p.Truncated || !utf8.ValidString(p.Text) {
		t.Errorf("truncated %v, valid UTF-8 %v", p.Truncated, utf8.ValidString(p.Text))
	}
	if !strings.HasPrefix(p.Text, head+"caf\uFFFD dolor sit amet") || len(p.Text) < limit-3 || len(p.Text) > limit+3 {
		t.Errorf("kept %d bytes, want ~%d with the bad byte replaced and the text after it kept", len(p.Text), limit)
	}
	t.Logf("summarized %d bytes in %v", len(body), elapsed)
}

func TestProcessMalformed(t *testing.T) {
	b := setupPipeline(t, Config{})
	for _, tc := range []struct {
		name string
		raw  []byte
	}{
		{"no From", crlf("To: bob@example.org", "Subject: who sent this?", "", "body")},
		{"garbage header block", crlf("this line is no header field", "", "body")},
		{"binary junk", []byte("\x00\x01\x02\xff\xfe\r\n\r\n")},
		{"leading continuation line", crlf(" folded: before any field", "From: a@example.com", "", "x")},
		{"bad field name", crlf("From: a@example.com", "Sub ject: x", "", "x")},
		{"empty", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := b.p.Process(t.Context(), nil, envelope("bad", "bob@example.org"), tc.raw, 1)
			if err == nil {
				t.Fatalf("processed as %s, want an error", out.Disposition)
			}
			if out != nil {
				t.Errorf("outcome %+v with the error", out)
			}
			if c := ClassOf(err); c != Malformed {
				t.Errorf("class %s of %v, want malformed", c, err)
			}
			if policyOf(Config{}.WithDefaults()).decide(event{step: stepProcessed, err: err, attempt: 1}).act != actDead {
				t.Errorf("%v is not dead-lettered at once", err)
			}
		})
	}
}

// A mail of header fields only, without the empty line, is RFC 5322
// (the body is optional) and must not be dead-lettered.
func TestProcessHeaderOnlyMail(t *testing.T) {
	b := setupPipeline(t, Config{})
	for _, raw := range [][]byte{
		[]byte("From: alice@example.com\r\nTo: bob@example.org\r\nSubject: no body\r\n"),
		[]byte("From: alice@example.com\r\nSubject: no body, no final CRLF"),
	} {
		out, err := b.p.Process(t.Context(), nil, envelope("headers", "bob@example.org"), raw, 1)
		if err != nil {
			t.Errorf("%q: %v", raw, err)
			continue
		}
		if out.Disposition != contracts.Processed || out.Summary == nil || out.Summary.From[0] != "alice@example.com" {
			t.Errorf("%q: %s summary %+v", raw, out.Disposition, out.Summary)
		}
	}
}

func TestProcessDNSTimeoutIsTransient(t *testing.T) {
	b := setupPipeline(t, Config{Auth: auth.Config{Timeout: 100 * time.Millisecond, FailureTTL: -1}})
	name := testkit.DNSName(selRSA, "example.com")
	b.ks.SetFault(name, keyserver.FaultTimeout)
	raw := b.sign(t, plainMail("slow@example.org", "slow", "hello"), selRSA)
	start := time.Now()
	out, err := b.p.Process(t.Context(), nil, envelope("slow", "slow@example.org"), raw, 1)
	if err == nil {
		t.Fatalf("processed as %s with DKIM %+v, want a temperror", out.Disposition, out.Auth.DKIM)
	}
	if c := ClassOf(err); c != DNS || !strings.Contains(err.Error(), "temperror") {
		t.Errorf("class %s error %q, want dns mentioning temperror", c, err)
	}
	if b.ks.Queries(name) == 0 {
		t.Error("the key server was never asked")
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("gave up after %v with a 100ms timeout", d)
	}

	// Healed, the same mail passes (failure caching is off here).
	b.ks.SetFault(name, keyserver.FaultNone)
	out, err = b.p.Process(t.Context(), nil, envelope("slow", "slow@example.org"), raw, 2)
	if err != nil {
		t.Fatal(err)
	}
	if out.Auth.DKIM[0].Result != contracts.ResultPass || out.Attempt != 2 {
		t.Errorf("after healing: DKIM %+v attempt %d", out.Auth.DKIM, out.Attempt)
	}
}

func TestProcessPauseHolds(t *testing.T) {
	b := setupPipeline(t, Config{})
	snap := snapshotOf(t, map[string]string{
		rules.FlagPause: `rcpt:@paused\.example$ 10 true` + "\n" + "default 0 false\n",
	})
	raw := b.sign(t, plainMail("x@paused.example", "hold me", "hello"), selEd)
	out, err := b.p.Process(t.Context(), snap, envelope("paused", "x@paused.example"), raw, 1)
	if err == nil {
		t.Fatalf("processed as %s, want held", out.Disposition)
	}
	if ClassOf(err) != Held || !errors.Is(err, errHeld) {
		t.Errorf("error %v of class %s, want held", err, ClassOf(err))
	}
	if policyOf(Config{MaxAttempts: 3}.WithDefaults()).decide(event{step: stepProcessed, err: err, attempt: 99}).act != actHold {
		t.Error("a held mail past the attempt limit is not held")
	}
	// Mail the rule does not match goes on.
	raw = b.sign(t, plainMail("x@example.org", "go on", "hello"), selEd)
	if out, err := b.p.Process(t.Context(), snap, envelope("unpaused", "x@example.org"), raw, 1); err != nil {
		t.Errorf("unpaused mail: %v", err)
	} else if out.Disposition != contracts.Processed {
		t.Errorf("unpaused mail: %s", out.Disposition)
	}
}

func TestProcessRejectRule(t *testing.T) {
	b := setupPipeline(t, Config{})
	snap := snapshotOf(t, map[string]string{
		rules.FlagReject: "# refuse an obvious subject\n" + `mail_header:Subject:(?i)free\s+money 10 looks like spam` + "\n",
	})
	raw := b.sign(t, plainMail("x@example.org", "FREE  money inside", "hello"), selEd)
	out, err := b.p.Process(t.Context(), snap, envelope("spam", "x@example.org"), raw, 1)
	if err != nil {
		t.Fatal(err)
	}
	if out.Disposition != contracts.Rejected || out.Reason != "looks like spam" || out.Handler != "" || out.Summary != nil {
		t.Errorf("disposition %s reason %q handler %q summary %v, want rejected with the rule's value and no handler",
			out.Disposition, out.Reason, out.Handler, out.Summary != nil)
	}
	if out.ProcessedAt.IsZero() || out.Auth.DKIM[0].Result != contracts.ResultPass {
		t.Errorf("processed at %v, DKIM %+v", out.ProcessedAt, out.Auth.DKIM)
	}
	var found bool
	for _, f := range out.Flags {
		if f.Flag == rules.FlagReject {
			found = true
			if f.Value != "looks like spam" || f.Rule == nil || f.Rule.Line != 2 || f.Rule.Revision != 1 {
				t.Errorf("mail.reject decision %+v rule %+v, want line 2 of revision 1", f, f.Rule)
			}
		}
	}
	if !found {
		t.Errorf("mail.reject not recorded in %+v", out.Flags)
	}

	raw = b.sign(t, plainMail("x@example.org", "Quarterly report", "hello"), selEd)
	out, err = b.p.Process(t.Context(), snap, envelope("ham", "x@example.org"), raw, 1)
	if err != nil || out.Disposition != contracts.Processed || out.Reason != "" {
		t.Errorf("ham: %v %+v", err, out)
	}
}

// TestProcessHandlerPanic: a handler panic is recovered into a transient
// error, and the pipeline goes on with the next mail.
func TestProcessHandlerPanic(t *testing.T) {
	b := setupPipeline(t, Config{})
	publish := b.p.handlers["publish"]
	b.p.handlers["publish"] = HandlerFunc(func(ctx context.Context, m *Mail, dryRun bool) (HandlerResult, error) {
		if m.Env.RcptTo[0] == "boom@example.org" {
			var rcpts []string
			_ = rcpts[len(m.Env.RcptTo)] // index out of range: a runtime panic, as a real bug would make
		}
		return publish.Handle(ctx, m, dryRun)
	})
	raw := b.sign(t, plainMail("boom@example.org", "boom", "hello"), selEd)
	out, err := b.p.Process(t.Context(), nil, envelope("boom", "boom@example.org"), raw, 1)
	if err == nil {
		t.Fatalf("processed as %s, want the panic as an error", out.Disposition)
	}
	if out != nil {
		t.Errorf("outcome %+v returned with the panic", out)
	}
	if ClassOf(err) != Transient || !strings.Contains(err.Error(), "panic") {
		t.Errorf("error %q of class %s, want transient mentioning the panic", err, ClassOf(err))
	}

	for i, rcpt := range []string{"next@example.org", "boom@example.org", "after@example.org"} {
		raw := b.sign(t, plainMail(rcpt, "hello", "hello"), selEd)
		out, err := b.p.Process(t.Context(), nil, envelope(rcpt, rcpt), raw, 1)
		if rcpt == "boom@example.org" {
			if ClassOf(err) != Transient {
				t.Errorf("mail %d: %v, want the panic again", i, err)
			}
			continue
		}
		if err != nil || out.Disposition != contracts.Processed || out.Summary == nil {
			t.Errorf("mail %d to %s after a panic: %v %+v", i, rcpt, err, out)
		}
	}
}

func TestProcessHandlerErrorIsTransient(t *testing.T) {
	b := setupPipeline(t, Config{HandlerTimeout: 50 * time.Millisecond})
	b.p.handlers["publish"] = HandlerFunc(func(ctx context.Context, m *Mail, dryRun bool) (HandlerResult, error) {
		<-ctx.Done() // a handler stuck on a slow backend
		return HandlerResult{}, ctx.Err()
	})
	raw := plainMail("slow@example.org", "slow handler", "hello")
	_, err := b.p.Process(t.Context(), nil, envelope("slow-handler", "slow@example.org"), raw, 1)
	if ClassOf(err) != Transient || !strings.Contains(err.Error(), "handler publish: context deadline exceeded") {
		t.Errorf("error %v of class %s, want a transient handler timeout", err, ClassOf(err))
	}
}

func TestProcessRulesRouteAndSkip(t *testing.T) {
	b := setupPipeline(t, Config{Env: "test"})
	snap := snapshotOf(t, map[string]string{
		rules.FlagHandler:    "rcpt:^review@ 20 quarantine\nenv:test&rcpt:^drop@ 10 discard\ndefault 0 publish\n",
		rules.FlagDKIMVerify: "rcpt:^noverify@ 10 false\n",
		rules.FlagDKIMStrong: "dkim:example.com 10 true\n",
		rules.FlagDryRun:     "rcpt:^review@ 10 true\n",
	})
	for _, tc := range []struct {
		rcpt    string
		d       contracts.Disposition
		handler string
		dkim    string
		trust   string
		dryRun  bool
	}{
		{"review@example.org", contracts.Quarantined, "quarantine", contracts.ResultPass, contracts.TrustStrong, true},
		{"drop@example.org", contracts.Discarded, "discard", contracts.ResultPass, contracts.TrustStrong, false},
		{"noverify@example.org", contracts.Processed, "publish", contracts.ResultNone, contracts.TrustNone, false},
		{"other@example.org", contracts.Processed, "publish", contracts.ResultPass, contracts.TrustStrong, false},
	} {
		raw := b.sign(t, plainMail(tc.rcpt, "route", "hello"), selEd)
		out, err := b.p.Process(t.Context(), snap, envelope(tc.rcpt, tc.rcpt), raw, 1)
		if err != nil {
			t.Errorf("%s: %v", tc.rcpt, err)
			continue
		}
		if out.Disposition != tc.d || out.Handler != tc.handler || out.DryRun != tc.dryRun ||
			out.Auth.DKIM[0].Result != tc.dkim || out.Auth.Trust != tc.trust {
			t.Errorf("%s: %s by %q dry run %v, DKIM %+v trust %s; want %s by %q dry run %v, %s, %s", tc.rcpt,
				out.Disposition, out.Handler, out.DryRun, out.Auth.DKIM, out.Auth.Trust, tc.d, tc.handler, tc.dryRun, tc.dkim, tc.trust)
		}
	}
	if n := b.ks.Queries(testkit.DNSName(selEd, "example.com")); n != 1 {
		t.Errorf("%d key lookups for 3 verified mails, want 1 (cached)", n)
	}
}

// TestEncodeOutcomeBounded: an outcome whose summary is too large loses
// its text, then its summary, never the mail.
func TestEncodeOutcomeBounded(t *testing.T) {
	big := strings.Repeat("<&>", 20000)
	out := &contracts.Outcome{ID: "x", Summary: &contracts.Summary{
		TextParts:   []contracts.TextPart{{ContentType: "text/html", Text: big}},
		Attachments: []contracts.Attachment{{Filename: "a.pdf", ContentType: "application/pdf", Size: 1}},
	}}
	data, err := encodeOutcome(out, 1<<20)
	if err != nil || !bytes.Contains(data, []byte(big)) {
		t.Fatalf("a fitting outcome changed (HTML must not be escaped): %v", err)
	}
	data, err = encodeOutcome(out, 10000)
	if err != nil || len(data) > 10000 || out.Summary == nil || len(out.Summary.TextParts) != 0 ||
		len(out.Summary.Attachments) != 1 || !strings.Contains(out.Summary.Truncated, "text parts dropped") {
		t.Fatalf("%d bytes, %v, summary %+v", len(data), err, out.Summary)
	}
	many := make([]contracts.Attachment, 5000)
	out.Summary.Attachments = many
	data, err = encodeOutcome(out, 10000)
	if err != nil || len(data) > 10000 || out.Summary != nil || !strings.Contains(out.Note, "summary dropped") {
		t.Fatalf("%d bytes, %v, note %q", len(data), err, out.Note)
	}
}

// TestSummarizeDeepNesting: MIME nested far deeper than anyone sends is
// summarized quickly down to MaxMIMEDepth, and says what it left out.
func TestSummarizeDeepNesting(t *testing.T) {
	var b strings.Builder
	b.WriteString("From: a@example.com\r\nTo: b@example.org\r\nSubject: deep\r\nMIME-Version: 1.0\r\n")
	const depth = 3000
	for i := range depth {
		fmt.Fprintf(&b, "Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n", i, i)
	}
	b.WriteString("Content-Type: text/plain\r\n\r\ninnermost\r\n")
	for i := depth - 1; i >= 0; i-- {
		fmt.Fprintf(&b, "--b%d--\r\n", i)
	}
	m, err := ParseMail(contracts.Envelope{ID: "deep", RcptTo: []string{"b@example.org"}}, []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	s := Summarize(t.Context(), m, 1024)
	if !strings.Contains(s.Truncated, "nesting deeper") || len(s.TextParts) != 0 {
		t.Errorf("truncated %q, text parts %d", s.Truncated, len(s.TextParts))
	}
}

// TestExplainAgreesWithEvaluateOnPause: with a pause rule that needs
// verified facts (an exception for a signer), explain reports the pause
// the worker applies: decided after verification, not before.
func TestExplainAgreesWithEvaluateOnPause(t *testing.T) {
	b := setupPipeline(t, Config{})
	snap := snapshotOf(t, map[string]string{
		rules.FlagPause: "dkim:example.com 20 false\ndefault 10 true\n",
	})
	for _, tc := range []struct {
		name   string
		raw    []byte
		paused bool
	}{
		{"signed by the excepted domain", b.sign(t, plainMail("x@example.org", "partner", "hello"), selEd), false},
		{"unsigned", plainMail("y@example.org", "anyone", "hello"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := envelope("explain-pause", "x@example.org")
			_, err := b.p.Evaluate(t.Context(), snap, env, tc.raw, 1)
			if held := ClassOf(err) == Held && err != nil; held != tc.paused {
				t.Fatalf("Evaluate: held %v (%v), want %v", held, err, tc.paused)
			}
			e, err := b.p.Explain(t.Context(), snap, env, tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			for _, f := range e.Flags {
				if f.Flag == rules.FlagPause && (f.Value == "true") != tc.paused {
					t.Errorf("explain: %s = %s (rule %+v), want paused %v", f.Flag, f.Value, f.Rule, tc.paused)
				}
			}
		})
	}
}
