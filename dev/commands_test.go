package dev_test

import (
	"bytes"
	"crypto"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/dev"
	"github.com/mailscope/mailscope/provision"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/telemetry"
	"github.com/mailscope/mailscope/testkit"
	"github.com/mailscope/mailscope/workers"
)

// The rules of the commands tests: mail to bugs.example.org goes to the
// commands handler; example.com's aligned signatures are strong.
const (
	commandsHandlerRules = "rcpt:@bugs\\.example\\.org$ 10 commands\ndefault 0 publish\n"
	commandsStrongRules  = "dkim:example.com 10 true\n"
	commandsDryRules     = "rcpt:^dry- 10 true\n"
)

// event is one message of the command stream, as the operator reads it.
type event struct {
	subject, msgID, traceparent string
	data                        []byte
}

// commandEvents reads every event of the command stream through an
// ordered consumer of the operator's (the role operators read it with),
// and returns those of mail id, in stream order.
func commandEvents(t *testing.T, b *bundle, id string) []event {
	t.Helper()
	js := b.js(t, access.Operator)
	s, err := js.Stream(t.Context(), "MAIL_COMMANDS")
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.OrderedConsumer(t.Context(), jetstream.OrderedConsumerConfig{})
	if err != nil {
		t.Fatal(err)
	}
	var out []event
	for range info.State.Msgs {
		m, err := c.Next(jetstream.FetchMaxWait(wait))
		if err != nil {
			t.Fatalf("reading the command stream: %v", err)
		}
		e := event{subject: m.Subject(), msgID: m.Headers().Get(nats.MsgIdHdr), traceparent: m.Headers().Get("traceparent"), data: m.Data()}
		var head struct{ ID string }
		if err := json.Unmarshal(e.data, &head); err != nil {
			t.Fatalf("event on %s is not JSON: %v", e.subject, err)
		}
		if head.ID == id {
			out = append(out, e)
		}
	}
	return out
}

// commandsOf decodes events that must all be command events.
func commandsOf(t *testing.T, evs []event) []contracts.Command {
	t.Helper()
	var cs []contracts.Command
	for _, e := range evs {
		var c contracts.Command
		if err := json.Unmarshal(e.data, &c); err != nil || c.Schema != contracts.CommandSchema {
			t.Fatalf("event on %s is no command event (%v): %s", e.subject, err, e.data)
		}
		if e.subject != "mail.command."+c.Command || e.msgID != contracts.CommandMsgID(c.ID, c.Position) {
			t.Errorf("command %s at %d on subject %s with Nats-Msg-Id %q", c.Command, c.Position, e.subject, e.msgID)
		}
		cs = append(cs, c)
	}
	return cs
}

// replyOf decodes the one event of a mail, which must be its reply.
func replyOf(t *testing.T, evs []event) contracts.Reply {
	t.Helper()
	if len(evs) != 1 {
		t.Fatalf("%d events, want one reply: %v", len(evs), evs)
	}
	var r contracts.Reply
	if err := json.Unmarshal(evs[0].data, &r); err != nil || r.Schema != contracts.ReplySchema {
		t.Fatalf("event on %s is no reply (%v): %s", evs[0].subject, err, evs[0].data)
	}
	if evs[0].subject != "mail.reply" || evs[0].msgID != contracts.ReplyMsgID(r.ID) {
		t.Errorf("reply on %s with Nats-Msg-Id %q", evs[0].subject, evs[0].msgID)
	}
	return r
}

// commandMail is a mail from alice@example.com to rcpt with body,
// signed by key for domain (unsigned when key is nil).
func commandMail(t *testing.T, rcpt, body string, key crypto.Signer, domain, selector string, extra ...string) []byte {
	t.Helper()
	raw := testkit.SampleMail("Alice <alice@example.com>", rcpt, "Re: [Bug 1234] it crashes", body,
		time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC), strings.ReplaceAll(rcpt, "@", ".")+"@example.com")
	if len(extra) > 0 {
		raw = append([]byte(strings.Join(extra, "\r\n")+"\r\n"), raw...)
	}
	if key == nil {
		return raw
	}
	signed, err := testkit.Sign(raw, testkit.SignOptions{Domain: domain, Selector: selector, Key: key})
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// TestCommands: with rules in the bucket choosing the commands handler
// for bugs.example.org and trusting example.com's signatures, through
// the real wiring: a strongly authenticated mail's commands become one
// command event each, up to "done"; a weakly authenticated or unsigned
// mail's become a reply event and no command; unknown commands and bad
// arguments are refused line by line with a reply and no command at
// all; a mail without commands, or to a target that is not one, gets a
// reply; the null sender and automatic mail get none; mail.dry_run
// publishes nothing and the outcome says what it would have; a big
// mail's reply carries its header section only, marked truncated.
func TestCommands(t *testing.T) {
	specs, err := workers.ParseCommandSpecs("status=1, tag=1+, subscribe=0-1, summary=1+, close, link=2")
	if err != nil {
		t.Fatal(err)
	}
	var said []string
	for _, s := range specs {
		said = append(said, s.String())
	}
	if got := strings.Join(said, ","); got != "status=1,tag=1+,subscribe=0-1,summary=1+,close=0+,link=2" {
		t.Errorf("specs read back as %s", got)
	}
	srv, err := telemetry.Start("127.0.0.1:0", telemetry.ServiceName("dev"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	tp := sdktrace.NewTracerProvider() // every mail traced, so that events carry its trace
	t.Cleanup(func() { tp.Shutdown(t.Context()) })
	var cfg dev.Config
	cfg.Worker = workers.Config{TracerProvider: tp, Commands: workers.CommandsConfig{Commands: specs, OriginalLimit: 4096, MaxCommands: 12}}
	cfg.Producer.TracerProvider = tp
	b := setupDev(t, cfg)
	b.putRules(t, rules.FlagHandler, commandsHandlerRules)
	b.putRules(t, rules.FlagDKIMStrong, commandsStrongRules)
	b.putRules(t, rules.FlagDryRun, commandsDryRules)
	before := scrapeMetrics(t, srv)
	strong := func(rcpt, body string, extra ...string) []byte {
		return commandMail(t, rcpt, body, b.rsaKey, "example.com", "s1", extra...)
	}
	const commandsBody = " status fixed\r\n\r\n tag foo \"two \\\"words\\\"\"\r\n\tclose\r\ndone\r\n status invalid\r\nThanks for the fix.\r\n"

	t.Run("strong: one event per command, nothing after done", func(t *testing.T) {
		const rcpt = "1234@bugs.example.org"
		b.sendSMTP(t, strong(rcpt, commandsBody), rcpt)
		o := b.outcomes.First(t, rcpt)
		wantDisposition(t, o, contracts.Processed, "commands")
		if o.Auth.Trust != contracts.TrustStrong || o.DryRun || o.Summary == nil ||
			o.Reason != `published 3 command events for target 1234: status fixed; tag foo two "words"; close` {
			t.Errorf("trust %s dry_run %v summary %v reason %q", o.Auth.Trust, o.DryRun, o.Summary != nil, o.Reason)
		}
		evs := commandEvents(t, b, o.ID)
		cs := commandsOf(t, evs)
		if len(cs) != 3 {
			t.Fatalf("%d command events, want 3: %+v", len(cs), cs)
		}
		// Each event continues the mail's trace, for its consumer.
		for _, e := range evs {
			if o.TraceID == "" || !strings.HasPrefix(e.traceparent, "00-"+o.TraceID+"-") {
				t.Errorf("event on %s has traceparent %q, want the mail's trace %s", e.subject, e.traceparent, o.TraceID)
			}
		}
		want := []struct {
			name string
			args []string
			line int
		}{{"status", []string{"fixed"}, 1}, {"tag", []string{"foo", `two "words"`}, 3}, {"close", []string{}, 4}}
		for i, c := range cs {
			w := want[i]
			if c.Command != w.name || jsonOf(t, c.Args) != jsonOf(t, w.args) || c.Line != w.line || c.Position != i+1 || c.Count != 3 {
				t.Errorf("command %d: %s %q line %d position %d of %d, want %s %q line %d", i+1, c.Command, c.Args, c.Line, c.Position, c.Count, w.name, w.args, w.line)
			}
			if c.Target != "1234" || c.Recipient != rcpt || c.Sender != "alice@example.com" || c.MailFrom != "alice@example.com" ||
				c.Trust != contracts.TrustStrong || c.MessageID != o.MessageID || !c.ReceivedAt.Equal(o.ReceivedAt) ||
				c.Worker != o.Worker || c.TraceID != o.TraceID {
				t.Errorf("command %d: %+v, want the mail's (outcome %+v)", i+1, c, o)
			}
		}
	})

	t.Run("weak or unsigned: a reply, no command", func(t *testing.T) {
		for _, m := range []struct {
			rcpt, trust string
			raw         []byte
		}{
			// Signed by another domain than From's: a pass, not aligned.
			{"2000@bugs.example.org", contracts.TrustWeak, nil},
			{"2001@bugs.example.org", contracts.TrustNone, nil},
		} {
			if m.trust == contracts.TrustWeak {
				m.raw = commandMail(t, m.rcpt, commandsBody, b.edKey, "partner.example", "ed")
			} else {
				m.raw = commandMail(t, m.rcpt, commandsBody, nil, "", "")
			}
			b.sendSMTP(t, m.raw, m.rcpt)
			o := b.outcomes.First(t, m.rcpt)
			wantDisposition(t, o, contracts.Rejected, "commands")
			if o.Auth.Trust != m.trust || !strings.HasPrefix(o.Reason, "commands refused: not strongly authenticated (trust "+m.trust+")") ||
				!strings.HasSuffix(o.Reason, "; reply to alice@example.com published on mail.reply") {
				t.Errorf("%s: trust %s reason %q", m.rcpt, o.Auth.Trust, o.Reason)
			}
			r := replyOf(t, commandEvents(t, b, o.ID))
			if r.ID != o.ID || r.To != "alice@example.com" || r.From != "alice@example.com" || r.InReplyTo != o.MessageID ||
				r.Subject != "Re: [Bug 1234] it crashes" || r.Target != strings.TrimSuffix(m.rcpt, "@bugs.example.org") || r.Trust != m.trust ||
				!strings.HasPrefix(r.Reason, "not strongly authenticated") || len(r.Failures) != 0 || r.FailuresTruncated {
				t.Errorf("%s: reply %+v", m.rcpt, r)
			}
			if r.Truncated || r.OriginalSize != len(m.raw) || !bytes.Equal(r.Original, m.raw) {
				t.Errorf("%s: original %d bytes (truncated %v, size %d), want the mail's %d", m.rcpt, len(r.Original), r.Truncated, r.OriginalSize, len(m.raw))
			}
		}
	})

	t.Run("bad lines: a reply naming each, no command at all", func(t *testing.T) {
		const rcpt = "3000@bugs.example.org"
		body := " status fixed\r\n frobnicate now\r\n tag\r\n summary \"unterminated\r\n status fixed released\r\n subscribe a b\r\n" +
			" summary \x01\r\n summary " + strings.Repeat("x", 300) + "\r\n tag" + strings.Repeat(" t", 33) + "\r\n " + strings.Repeat("z", 40) + " now\r\n link a\r\n"
		b.sendSMTP(t, strong(rcpt, body), rcpt)
		o := b.outcomes.First(t, rcpt)
		wantDisposition(t, o, contracts.Rejected, "commands")
		if !strings.HasPrefix(o.Reason, `commands refused: 10 command lines failed; no command was carried out; line 2: unknown command "frobnicate"; line 3: tag takes at least 1 argument, not 0; line 4: unterminated quote; and 7 more; reply to`) {
			t.Errorf("reason %q", o.Reason)
		}
		r := replyOf(t, commandEvents(t, b, o.ID))
		want := []contracts.LineFailure{
			{Line: 2, Text: "frobnicate now", Error: `unknown command "frobnicate"`},
			{Line: 3, Text: "tag", Error: "tag takes at least 1 argument, not 0"},
			{Line: 4, Text: `summary "unterminated`, Error: "unterminated quote"},
			{Line: 5, Text: "status fixed released", Error: "status takes 1 argument, not 2"},
			{Line: 6, Text: "subscribe a b", Error: "subscribe takes 0 to 1 argument, not 2"},
			{Line: 7, Text: "summary \x01", Error: "control character U+0001"},
			{Line: 8, Text: ("summary " + strings.Repeat("x", 300))[:contracts.LineMax], Error: "an argument longer than 256 bytes"},
			{Line: 9, Text: "tag" + strings.Repeat(" t", 33), Error: "more than 32 arguments"},
			{Line: 10, Text: strings.Repeat("z", 40) + " now", Error: `unknown command "` + strings.Repeat("z", 32) + `..."`},
			{Line: 11, Text: "link a", Error: "link takes 2 arguments, not 1"},
		}
		if got, w := jsonOf(t, r.Failures), jsonOf(t, want); got != w {
			t.Errorf("failures\n got %s\nwant %s", got, w)
		}
		if r.Reason != "10 command lines failed; no command was carried out" || r.Trust != contracts.TrustStrong {
			t.Errorf("reply reason %q trust %s", r.Reason, r.Trust)
		}
	})

	t.Run("more failed lines than a reply holds, more commands than a mail may", func(t *testing.T) {
		const many, over = "3001@bugs.example.org", "3002@bugs.example.org"
		b.sendSMTP(t, strong(many, strings.Repeat(" frobnicate\r\n", contracts.ReplyMaxFailures+5)), many)
		b.sendSMTP(t, strong(over, strings.Repeat(" tag x\r\n", 13)), over)
		r := replyOf(t, commandEvents(t, b, b.outcomes.First(t, many).ID))
		if len(r.Failures) != contracts.ReplyMaxFailures || !r.FailuresTruncated || r.Reason != "105 command lines failed; no command was carried out" {
			t.Errorf("%d failures kept (truncated %v), reason %q", len(r.Failures), r.FailuresTruncated, r.Reason)
		}
		o := b.outcomes.First(t, over)
		r = replyOf(t, commandEvents(t, b, o.ID))
		if len(r.Failures) != 1 || r.Failures[0] != (contracts.LineFailure{Line: 13, Text: "tag x", Error: "more than 12 commands in one mail"}) {
			t.Errorf("failures %+v", r.Failures)
		}
	})

	t.Run("no commands, or no target: a reply", func(t *testing.T) {
		for _, m := range []struct{ rcpt, body, reason string }{
			{"4000@bugs.example.org", "Thanks, it works now.\r\n status fixed\r\n", "no commands: a command line starts with a space or a tab, before any other text"},
			{"x#y@bugs.example.org", " status fixed\r\n", `recipient "x#y@bugs.example.org": the local part is not a valid target (only letters, digits, '.', '-', '_' and '+')`},
			{strings.Repeat("n", 65) + "@bugs.example.org", " status fixed\r\n", "the local part names no target (want 1 to 64 bytes)"},
		} {
			b.sendSMTP(t, strong(m.rcpt, m.body), m.rcpt)
			o := b.outcomes.First(t, m.rcpt)
			wantDisposition(t, o, contracts.Rejected, "commands")
			r := replyOf(t, commandEvents(t, b, o.ID))
			if !strings.HasSuffix(r.Reason, m.reason) || !strings.Contains(o.Reason, m.reason) || len(r.Failures) != 0 {
				t.Errorf("%s: reply reason %q, outcome reason %q, want %q", m.rcpt, r.Reason, o.Reason, m.reason)
			}
		}
	})

	t.Run("the null sender and automatic mail: no reply", func(t *testing.T) {
		const bounce, auto = "5000@bugs.example.org", "5001@bugs.example.org"
		if err := dev.SendSMTP(b.sys.SMTPAddr, "", []string{bounce}, commandMail(t, bounce, commandsBody, nil, "", "")); err != nil {
			t.Fatal(err)
		}
		b.sendSMTP(t, strong(auto, "I am out of the office.\r\n", "Auto-Submitted: auto-replied"), auto)
		for rcpt, why := range map[string]string{bounce: "; no reply: the null sender", auto: "; no reply: an automatic mail (Auto-Submitted: auto-replied)"} {
			o := b.outcomes.First(t, rcpt)
			wantDisposition(t, o, contracts.Rejected, "commands")
			if !strings.HasSuffix(o.Reason, why) {
				t.Errorf("%s: reason %q, want it to end %q", rcpt, o.Reason, why)
			}
			if evs := commandEvents(t, b, o.ID); len(evs) != 0 {
				t.Errorf("%s: %d events, want none", rcpt, len(evs))
			}
		}
	})

	t.Run("dry run: nothing published, the outcome says what would have been", func(t *testing.T) {
		const good, weak, many = "dry-1234@bugs.example.org", "dry-2000@bugs.example.org", "dry-3000@bugs.example.org"
		b.sendSMTP(t, strong(good, commandsBody), good)
		b.sendSMTP(t, strong(many, strings.Repeat(" tag x\r\n", 12)), many)
		b.sendSMTP(t, commandMail(t, weak, commandsBody, nil, "", ""), weak)
		o := b.outcomes.First(t, good)
		wantDisposition(t, o, contracts.Processed, "commands")
		if !o.DryRun || o.Reason != `dry run: would publish 3 command events for target dry-1234: status fixed; tag foo two "words"; close; nothing published` {
			t.Errorf("dry_run %v reason %q", o.DryRun, o.Reason)
		}
		ow := b.outcomes.First(t, weak)
		wantDisposition(t, ow, contracts.Rejected, "commands")
		if !ow.DryRun || !strings.HasPrefix(ow.Reason, "dry run: commands refused: not strongly authenticated (trust none)") ||
			!strings.HasSuffix(ow.Reason, "; would publish a reply to alice@example.com; nothing published") {
			t.Errorf("dry_run %v reason %q", ow.DryRun, ow.Reason)
		}
		om := b.outcomes.First(t, many)
		if want := "dry run: would publish 12 command events for target dry-3000: " + strings.Repeat("tag x; ", 10) + "and 2 more; nothing published"; om.Reason != want {
			t.Errorf("reason %q, want %q", om.Reason, want)
		}
		for _, id := range []string{o.ID, ow.ID, om.ID} {
			if evs := commandEvents(t, b, id); len(evs) != 0 {
				t.Errorf("%d events published under dry run", len(evs))
			}
		}
	})

	t.Run("the operator reads them with the nats CLI; the observer cannot", func(t *testing.T) {
		op := newCLI(t, b)
		if out := op.run(t, "stream", "subjects", "MAIL_COMMANDS"); !strings.Contains(out, "mail.command.status") || !strings.Contains(out, "mail.reply") {
			t.Errorf("nats stream subjects MAIL_COMMANDS: %s", out)
		}
		out := op.run(t, "sub", "mail.command.>", "--stream", "MAIL_COMMANDS", "--all", "--raw", "--terminate-at-end")
		var got []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var c contracts.Command
			if err := json.Unmarshal([]byte(line), &c); err != nil {
				t.Fatalf("nats sub printed %q: %v", line, err)
			}
			got = append(got, c.Target+" "+c.Command)
		}
		if want := "1234 status,1234 tag,1234 close"; strings.Join(got, ",") != want {
			t.Errorf("nats sub read %v, want %s", got, want)
		}
		replies := strings.Split(strings.TrimSpace(op.run(t, "sub", "mail.reply", "--stream", "MAIL_COMMANDS", "--all", "--raw", "--terminate-at-end")), "\n")
		for _, line := range replies {
			var r contracts.Reply
			if err := json.Unmarshal([]byte(line), &r); err != nil || r.Schema != contracts.ReplySchema || r.To != "alice@example.com" {
				t.Errorf("nats sub mail.reply printed %q (%v)", line, err)
			}
		}
		if len(replies) != 8 { // two not strong, three with bad lines, three without commands or target
			t.Errorf("nats sub read %d replies, want the 8 published so far", len(replies))
		}
		wantCLIRefused(t, op, "stream", "rmm", "-f", "MAIL_COMMANDS", "1")
		wantCLIRefused(t, op, "stream", "purge", "-f", "MAIL_COMMANDS")
		obs := newCLIAs(t, b, access.Observer)
		obs.run(t, "stream", "info", "MAIL_COMMANDS")
		wantCLIRefused(t, obs, "stream", "get", "MAIL_COMMANDS", "1")
		wantCLIRefused(t, obs, "sub", "mail.reply", "--stream", "MAIL_COMMANDS", "--all", "--terminate-at-end")
	})

	t.Run("a big mail's reply: its header section, truncated", func(t *testing.T) {
		const rcpt = "6000@bugs.example.org"
		raw := commandMail(t, rcpt, "A long story.\r\n"+strings.Repeat("All work and no play.\r\n", 400), nil, "", "")
		b.sendSMTP(t, raw, rcpt)
		o := b.outcomes.First(t, rcpt)
		r := replyOf(t, commandEvents(t, b, o.ID))
		head, _, _ := bytes.Cut(raw, []byte("\r\n\r\n"))
		if !r.Truncated || r.OriginalSize != len(raw) || !bytes.Equal(r.Original, append(head, "\r\n\r\n"...)) {
			t.Errorf("original %q (truncated %v, size %d), want the header section of %d bytes", r.Original, r.Truncated, r.OriginalSize, len(raw))
		}
		// A header section larger than the limit: cut at its last whole
		// line within it.
		const bigHead = "6001@bugs.example.org"
		var filler []string
		for i := range 100 {
			filler = append(filler, fmt.Sprintf("X-Filler-%03d: %s", i, strings.Repeat("f", 50)))
		}
		raw = commandMail(t, bigHead, "No commands.\r\n", nil, "", "", filler...)
		b.sendSMTP(t, raw, bigHead)
		r = replyOf(t, commandEvents(t, b, b.outcomes.First(t, bigHead).ID))
		if want := raw[:bytes.LastIndex(raw[:4096], []byte("\n"))+1]; !r.Truncated || !bytes.Equal(r.Original, want) {
			t.Errorf("original of %d bytes (truncated %v), want the first %d of the header", len(r.Original), r.Truncated, len(want))
		}
	})

	t.Run("counted by result and kind", func(t *testing.T) {
		after := scrapeMetrics(t, srv)
		for l, want := range map[[2]string]float64{
			{"published", "false"}: 1, {"not_strong", "false"}: 5, {"bad_lines", "false"}: 3, {"no_commands", "false"}: 2,
			{"bad_target", "false"}: 2, {"published", "true"}: 2, {"not_strong", "true"}: 1, {"bad_lines", "true"}: 0,
		} {
			ls := labels("result", l[0], "dry_run", l[1])
			if got := after.value("mailscope_commands_mails_total", ls) - before.value("mailscope_commands_mails_total", ls); got != want {
				t.Errorf("mailscope_commands_mails_total%v moved by %v, want %v", l, got, want)
			}
		}
		for kind, want := range map[string]float64{"command": 3, "reply": 10} {
			ls := labels("kind", kind)
			if got := after.value("mailscope_commands_events_total", ls) - before.value("mailscope_commands_events_total", ls); got != want {
				t.Errorf("mailscope_commands_events_total{kind=%q} moved by %v, want %v", kind, got, want)
			}
		}
	})
}

// TestCommandsRetriedStoreEachOnce: a mail whose second command event
// the command stream refuses (full) is retried; its first event, stored
// by the first attempt, is not stored again by the retries, and once
// provisioning makes room every command is stored exactly once and the
// mail is processed; a reply refused alike is retried, then stored once.
// (And a worker told never to attach the original sends replies without
// it.)
func TestCommandsRetriedStoreEachOnce(t *testing.T) {
	srv, err := telemetry.Start("127.0.0.1:0", telemetry.ServiceName("dev"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	b := setupDev(t, dev.Config{
		Worker: workers.Config{MaxAttempts: 1000, BackoffBase: 5 * time.Millisecond, BackoffMax: 20 * time.Millisecond,
			Commands: workers.CommandsConfig{OriginalLimit: -1}},
		// Room for a small event, not for a large one.
		Provision: provision.Config{CommandMaxBytes: 4 << 10},
	})
	b.putRules(t, rules.FlagHandler, commandsHandlerRules)
	b.putRules(t, rules.FlagDKIMStrong, commandsStrongRules)
	before := scrapeMetrics(t, srv)
	const rcpt = "7000@bugs.example.org"
	long := strings.TrimSpace(strings.Repeat(strings.Repeat("w", 200)+" ", 30))
	b.sendSMTP(t, commandMail(t, rcpt, " status fixed\r\n summary "+long+"\r\n", b.rsaKey, "example.com", "s1"), rcpt)
	// And a mail whose reply, listing its long bad lines, does not fit.
	const bad = "7002@bugs.example.org"
	b.sendSMTP(t, commandMail(t, bad, strings.Repeat(" frobnicate "+strings.Repeat("f", 200)+"\r\n", 30), b.rsaKey, "example.com", "s1"), bad)

	cons, err := b.sys.JS.Consumer(t.Context(), "MAIL", "workers")
	if err != nil {
		t.Fatal(err)
	}
	systest.WaitFor(t, "both mails retried", func() bool {
		info, err := cons.Info(t.Context())
		return err == nil && info.NumRedelivered >= 2 && info.Delivered.Consumer >= 6
	})
	if n := b.streamCount(t, "MAIL_COMMANDS"); n != 1 {
		t.Fatalf("%d events stored while the stream has room for one, want 1", n)
	}
	if err := provision.Run(t.Context(), b.js(t, access.Provisioner), provision.Config{}); err != nil {
		t.Fatal(err)
	}
	o := b.outcomes.First(t, rcpt)
	wantDisposition(t, o, contracts.Processed, "commands")
	if want := "published 2 command events for target 7000: status fixed; summary " + strings.Repeat("w", 100-len("summary ")) + "..."; o.Reason != want {
		t.Errorf("reason %q, want %q", o.Reason, want)
	}
	if o.Attempt < 3 {
		t.Errorf("processed at attempt %d, want a retry after at least two refused", o.Attempt)
	}
	cs := commandsOf(t, commandEvents(t, b, o.ID))
	if len(cs) != 2 || cs[0].Command != "status" || cs[1].Command != "summary" || len(cs[1].Args) != 30 {
		t.Errorf("events %+v, want status then summary, once each", cs)
	}
	ob := b.outcomes.First(t, bad)
	wantDisposition(t, ob, contracts.Rejected, "commands")
	if r := replyOf(t, commandEvents(t, b, ob.ID)); len(r.Failures) != 30 || ob.Attempt < 3 {
		t.Errorf("reply with %d failures at attempt %d, want 30 after retries", len(r.Failures), ob.Attempt)
	}
	if n := b.streamCount(t, "MAIL_COMMANDS"); n != 3 {
		t.Errorf("%d events stored, want 3", n)
	}

	const unsigned = "7001@bugs.example.org"
	raw := commandMail(t, unsigned, " status fixed\r\n", nil, "", "")
	b.sendSMTP(t, raw, unsigned)
	r := replyOf(t, commandEvents(t, b, b.outcomes.First(t, unsigned).ID))
	if r.Original != nil || !r.Truncated || r.OriginalSize != len(raw) {
		t.Errorf("original of %d bytes (truncated %v, size %d), want none, truncated, size %d", len(r.Original), r.Truncated, r.OriginalSize, len(raw))
	}
	// Stored events are counted once, however often they were published.
	after := scrapeMetrics(t, srv)
	for kind, want := range map[string]float64{"command": 2, "reply": 2} {
		ls := labels("kind", kind)
		if got := after.value("mailscope_commands_events_total", ls) - before.value("mailscope_commands_events_total", ls); got != want {
			t.Errorf("mailscope_commands_events_total{kind=%q} moved by %v, want %v", kind, got, want)
		}
	}
}

// TestCommandsConfigRefused: a worker given command names or arities it
// cannot use does not start, and its error names every mistake.
func TestCommandsConfigRefused(t *testing.T) {
	for spec, want := range map[string]string{
		"":            "no command names",
		"tag=x":       `command tag: arguments "x": want N, N-M or N+`,
		"tag=x+":      `command tag: arguments "x+": want N, N-M or N+`,
		"tag=1-y":     `command tag: arguments "1-y": want N, N-M or N+`,
		"Status=1":    `command name "Status": want a lower-case letter`,
		"tag=2-1":     "command tag: arguments 2-1: want MIN, MIN-MAX or MIN+ with 0 <= MIN <= MAX",
		"tag,tag=1":   "command tag: configured twice",
		"mail.status": `command name "mail.status"`,
	} {
		if _, err := workers.ParseCommandSpecs(spec); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseCommandSpecs(%q): %v, want %q", spec, err, want)
		}
	}
	cfg := dev.Config{DataDir: t.TempDir(), NATSPort: -1, SMTPAddr: "127.0.0.1:0", LMTPAddr: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	cfg.Worker.Commands.Commands = []workers.CommandSpec{{Name: "status", MinArgs: 1, MaxArgs: 1}, {Name: "status"},
		{Name: strings.Repeat("x", 33)}, {Name: "tag", MinArgs: -1, MaxArgs: 1}, {Name: "many", MinArgs: 3, MaxArgs: 2}}
	sys, err := dev.Start(t.Context(), cfg)
	if err == nil {
		sys.Close()
		t.Fatal("started with commands it cannot use")
	}
	for _, want := range []string{
		"command status: configured twice",
		`command name "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx": want 1 to 32 bytes`,
		"command tag: arguments -1-1: want MIN",
		"command many: arguments 3-2: want MIN",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
}
