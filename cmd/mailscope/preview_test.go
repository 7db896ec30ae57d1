package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/preview"
	"github.com/mailscope/mailscope/provision"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/testkit"
)

// TestFlagsPreviewCommand: `mailscope flags preview` as the operator
// runs it, on the archive (mail published as the producer publishes it)
// and on .eml files: the report counts the mails the proposed rules move
// to another decision, by value and transition, as text and as JSON;
// rules that do not parse and an unknown flag are refused with exit
// status 1, and without an archive it says how to make one.
func TestFlagsPreviewCommand(t *testing.T) {
	srv := natsServer(t)
	operator := srv.Keys.SeedFile(access.Operator)
	dir := t.TempDir()
	for name, text := range map[string]string{
		"live.txt":     "rcpt:^carol@ 10 quarantine\ndefault 0 publish\n",
		"proposed.txt": "rcpt:^(bob|dave)@ 20 discard\nrcpt:^carol@ 10 quarantine\ndefault 0 publish\n",
		"broken.txt":   "rcpt:^bob@ 10 teleport\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	args := func(more ...string) []string {
		return append([]string{"flags", "preview", "--nats", srv.URL, "--nats-nkey", operator}, more...)
	}

	// No archive yet.
	if err := provision.Run(t.Context(), srv.JetStream(t, access.Provisioner), provision.Config{}); err != nil {
		t.Fatal(err)
	}
	r := run(t, dir, nil, nil, args(rules.FlagHandler, "proposed.txt")...)
	if r.code != 1 || !strings.Contains(r.stderr, "--archive-max-age") {
		t.Errorf("without an archive: exit %d, stderr %q; want 1 naming --archive-max-age", r.code, r.stderr)
	}
	if err := provision.Run(t.Context(), srv.JetStream(t, access.Provisioner), provision.Config{ArchiveMaxAge: time.Hour}); err != nil {
		t.Fatal(err)
	}
	js := srv.JetStream(t, access.Operator)
	kv, err := js.KeyValue(t.Context(), "mail_flags")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.PutString(t.Context(), rules.FlagHandler, "rcpt:^carol@ 10 quarantine\ndefault 0 publish\n"); err != nil {
		t.Fatal(err)
	}
	prod := srv.JetStream(t, access.Producer)
	for i, rcpt := range []string{"alice@example.org", "bob@example.org", "carol@example.org", "dave@example.org"} {
		raw := testkit.SampleMail("Eve <eve@example.com>", rcpt, "Hello", "Hi.\r\n", time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC), fmt.Sprintf("m%d@example.com", i))
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%d.eml", i)), raw, 0o600); err != nil {
			t.Fatal(err)
		}
		msg := nats.NewMsg("mail.incoming")
		contracts.Envelope{ID: fmt.Sprintf("mail-%d", i), MailFrom: "eve@example.com", RcptTo: []string{rcpt},
			ReceivedAt: time.Now(), Protocol: "smtp"}.Encode(msg.Header)
		msg.Data = raw
		if _, err := prod.PublishMsg(t.Context(), msg); err != nil {
			t.Fatal(err)
		}
	}
	systest.WaitFor(t, "4 mails archived", func() bool {
		s, err := js.Stream(t.Context(), "MAIL_ARCHIVE")
		if err != nil {
			t.Fatal(err)
		}
		i, err := s.Info(t.Context())
		return err == nil && i.State.Msgs == 4
	})

	r = ok(t, dir, nil, args("--dns-server", "127.0.0.1:1", rules.FlagHandler, "proposed.txt")...)
	for _, want := range []string{
		"mail.handler: 2 of 4 replayed mails would change decision (0 skipped)",
		`"discard" 2 2 mail-1, mail-3`,
		`"publish" 1 0`,
		`"quarantine" 1 0`,
		"publish discard 2 mail-1, mail-3",
	} {
		if !strings.Contains(squeeze(r.stdout), squeeze(want)) {
			t.Errorf("preview output lacks %q:\n%s", want, r.stdout)
		}
	}
	// The same from files, as JSON.
	r = ok(t, dir, nil, args("--json", rules.FlagHandler, "proposed.txt", "0.eml", "1.eml", "2.eml", "3.eml")...)
	var rep preview.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("--json output: %v\n%s", err, r.stdout)
	}
	if rep.Replayed != 4 || rep.Changed != 2 || len(rep.Transitions) != 1 || strings.Join(rep.Transitions[0].Examples, ",") != "1.eml,3.eml" {
		t.Errorf("report from files %+v", rep)
	}

	r = run(t, dir, nil, nil, args(rules.FlagHandler, "broken.txt")...)
	if r.code != 1 || !strings.Contains(r.stderr, "broken.txt: line 1:") {
		t.Errorf("broken rules: exit %d, stderr %q", r.code, r.stderr)
	}
	r = run(t, dir, nil, nil, args("mail.handlr", "proposed.txt")...)
	if r.code != 1 || !strings.Contains(r.stderr, "did you mean mail.handler?") {
		t.Errorf("unknown flag: exit %d, stderr %q", r.code, r.stderr)
	}
}
