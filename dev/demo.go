package dev

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/nats-io/nats.go"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/testkit"
)

// DemoDomain and DemoSelector name the key the demo signs with.
const (
	DemoDomain   = "example.com"
	DemoSelector = "demo"
)

// DemoRules are the flag rules the demo puts in the bucket, by key.
var DemoRules = map[string]string{
	rules.FlagHandler: "# demo: mail to review@ goes to the quarantine handler\n" +
		"rcpt:^review@ 10 quarantine\n" +
		"default 0 publish\n",
	rules.FlagReject: "# demo: refuse an obvious subject\n" +
		`mail_header:Subject:(?i)free\s+money 10 looks like spam` + "\n",
	rules.FlagDKIMStrong: "# demo: an aligned pass from example.com is strong authentication\n" +
		"dkim:example.com 10 true\n",
}

// demoMail is one mail of the demo and the outcome it must get.
type demoMail struct {
	name        string
	rcpt        string
	raw         []byte
	disposition contracts.Disposition
	dkim        string // expected result of the first signature
}

func demoMails() ([]demoMail, string, error) {
	key, err := testkit.GenerateKey("rsa", 2048)
	if err != nil {
		return nil, "", err
	}
	date := time.Now()
	mk := func(name, rcpt, subject string, sign bool) ([]byte, error) {
		raw := testkit.SampleMail("Alice <alice@example.com>", rcpt, subject,
			"Hello from the mailscope demo ("+name+").\r\n", date, name+"."+fmt.Sprint(date.UnixNano())+"@example.com")
		if !sign {
			return raw, nil
		}
		return testkit.Sign(raw, testkit.SignOptions{Domain: DemoDomain, Selector: DemoSelector, Key: key})
	}
	var ms []demoMail
	add := func(name, rcpt, subject string, sign bool, d contracts.Disposition, dkim string, mutate func([]byte) []byte) error {
		raw, err := mk(name, rcpt, subject, sign)
		if err != nil {
			return err
		}
		if mutate != nil {
			raw = mutate(raw)
		}
		ms = append(ms, demoMail{name: name, rcpt: rcpt, raw: raw, disposition: d, dkim: dkim})
		return nil
	}
	tamper := func(raw []byte) []byte { return bytes.Replace(raw, []byte("Hello"), []byte("Jello"), 1) }
	// A token per run keeps this run's outcomes apart from mail left in
	// the queue by an earlier run.
	run := fmt.Sprintf("run%x", date.UnixNano()&0xffffff)
	rcpt := func(local string) string { return local + "@" + run + ".example.org" }
	for _, err := range []error{
		add("good", rcpt("good"), "Signed and intact", true, contracts.Processed, contracts.ResultPass, nil),
		add("tampered", rcpt("tampered"), "Signed, body changed in transit", true, contracts.Processed, contracts.ResultFail, tamper),
		add("unsigned", rcpt("unsigned"), "No signature at all", false, contracts.Processed, contracts.ResultNone, nil),
		add("review", rcpt("review"), "Routed by an rcpt: rule", true, contracts.Quarantined, contracts.ResultPass, nil),
		add("spam", rcpt("spam"), "FREE  money inside", true, contracts.Rejected, contracts.ResultPass, nil),
	} {
		if err != nil {
			return nil, "", err
		}
	}
	ms = append(ms, demoMail{name: "broken", rcpt: rcpt("broken"),
		raw: []byte("this is not a mail header\r\n\r\nno From, no header block at all\r\n"), disposition: contracts.Dead})
	txt, err := testkit.TXTRecord(key)
	if err != nil {
		return nil, "", err
	}
	return ms, txt, nil
}

// Demo puts the demo rules in the bucket, publishes the demo key in the
// built-in key source, sends the demo mails over SMTP, and prints each
// outcome as one line on w. It returns an error when a mail's outcome is
// not the expected one, or when not every outcome arrived within timeout.
func (s *System) Demo(ctx context.Context, w io.Writer, timeout time.Duration) error {
	mails, demoKeyTXT, err := demoMails()
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	if s.Keys != nil {
		s.Keys.SetTXT(testkit.DNSName(DemoSelector, DemoDomain), 300, demoKeyTXT)
	} else {
		fmt.Fprintf(w, "demo: using DNS server %s; publish this key there for the signed mails to pass:\n  %s TXT %q\n",
			s.DNSServer, testkit.DNSName(DemoSelector, DemoDomain), demoKeyTXT)
	}
	kv, err := s.JS.KeyValue(ctx, s.Config.Worker.Names.FlagsBucket)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	for _, k := range []string{rules.FlagHandler, rules.FlagReject, rules.FlagDKIMStrong} {
		if _, err := kv.PutString(ctx, k, DemoRules[k]); err != nil {
			return fmt.Errorf("demo: put rule %s: %w", k, err)
		}
	}
	if err := s.waitRules(ctx, len(DemoRules), timeout); err != nil {
		return err
	}

	outcomes := make(chan *nats.Msg, 64)
	sub, err := s.Conn.ChanSubscribe(s.Config.Worker.Names.OutcomePrefix+".>", outcomes)
	if err != nil {
		return fmt.Errorf("demo: %w", err)
	}
	defer sub.Unsubscribe()
	if err := s.Conn.Flush(); err != nil {
		return fmt.Errorf("demo: %w", err)
	}

	byRcpt := make(map[string]demoMail)
	for _, m := range mails {
		byRcpt[m.rcpt] = m
		if err := SendSMTP(s.SMTPAddr, "alice@example.com", []string{m.rcpt}, m.raw); err != nil {
			return fmt.Errorf("demo: send %s: %w", m.name, err)
		}
	}
	fmt.Fprintf(w, "demo: sent %d mails over SMTP to %s; outcomes:\n", len(mails), s.SMTPAddr)

	var failures []string
	deadline := time.After(timeout)
	for seen := 0; seen < len(mails); {
		select {
		case msg := <-outcomes:
			var o contracts.Outcome
			if err := json.Unmarshal(msg.Data, &o); err != nil {
				return fmt.Errorf("demo: bad outcome on %s: %w", msg.Subject, err)
			}
			if len(o.Envelope.RcptTo) == 0 {
				continue
			}
			m, ok := byRcpt[o.Envelope.RcptTo[0]]
			if !ok {
				continue
			}
			delete(byRcpt, m.rcpt)
			seen++
			fmt.Fprintf(w, "  %-9s %s\n", m.name, OutcomeLine(&o))
			if o.Disposition != m.disposition {
				failures = append(failures, fmt.Sprintf("%s: disposition %s, want %s", m.name, o.Disposition, m.disposition))
			}
			if m.dkim != "" && (len(o.Auth.DKIM) == 0 || o.Auth.DKIM[0].Result != m.dkim) {
				failures = append(failures, fmt.Sprintf("%s: dkim %+v, want %s", m.name, o.Auth.DKIM, m.dkim))
			}
		case <-deadline:
			var missing []string
			for _, m := range byRcpt {
				missing = append(missing, m.name)
			}
			return fmt.Errorf("demo: no outcome after %s for: %s", timeout, strings.Join(missing, ", "))
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if len(failures) > 0 {
		return errors.New("demo: unexpected outcomes:\n  " + strings.Join(failures, "\n  "))
	}
	fmt.Fprintln(w, "demo: every outcome as expected")
	return nil
}

// waitRules waits until the worker's rule snapshot holds n rule sets, for
// at most timeout (the demo's).
func (s *System) waitRules(ctx context.Context, n int, timeout time.Duration) error {
	store := s.Worker.Rules()
	deadline := time.After(timeout)
	for {
		count := 0
		for _, f := range rules.Known() {
			if store.Snapshot().RuleSet(f.Name) != nil {
				count++
			}
		}
		if count >= n {
			return nil
		}
		select {
		case <-store.Changed():
		case <-deadline:
			return fmt.Errorf("demo: worker did not load the demo rules")
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// OutcomeLine renders an outcome as one readable line.
func OutcomeLine(o *contracts.Outcome) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%-11s", o.Disposition)
	if o.Handler != "" {
		fmt.Fprintf(&b, " handler=%s", o.Handler)
	}
	var sigs []string
	for _, d := range o.Auth.DKIM {
		if d.Domain != "" {
			sigs = append(sigs, d.Result+"("+d.Domain+")")
		} else {
			sigs = append(sigs, d.Result)
		}
	}
	if len(sigs) > 0 {
		fmt.Fprintf(&b, " dkim=%s trust=%s", strings.Join(sigs, ","), o.Auth.Trust)
	}
	for _, f := range o.Flags {
		if f.Rule != nil {
			fmt.Fprintf(&b, " %s=%q[rev %d line %d]", f.Flag, f.Value, f.Rule.Revision, f.Rule.Line)
		}
	}
	if o.Reason != "" {
		fmt.Fprintf(&b, " reason=%q", o.Reason)
	}
	if o.TraceID != "" {
		fmt.Fprintf(&b, " trace=%s", o.TraceID)
	}
	return b.String()
}

// SendSMTP sends one mail over plain SMTP on loopback and returns the
// server's verdict: nil after 250, an *smtp.SMTPError otherwise.
func SendSMTP(addr, from string, to []string, raw []byte) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SendMail(from, to, bytes.NewReader(raw)); err != nil {
		return err
	}
	return c.Quit()
}
