package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/provision"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/testkit"
)

func TestFlagsCheck(t *testing.T) {
	good := "# route\nrcpt:^review@ 10 quarantine\ndefault 0 publish\n"
	r := run(t, "", nil, []byte(good), "flags", "check", "mail.handler")
	if r.code != 0 || !strings.Contains(r.stdout, "mail.handler: 2 rules ok") {
		t.Errorf("good rules: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	bad := "rcpt:^a@ 10 quarantine\nrcpt:^b@ 10 publish\nmail_header:Subject:( 5 discard\ndefault 0 yes-please\n"
	r = run(t, "", nil, []byte(bad), "flags", "check", "mail.handler", "-")
	if r.code != 1 {
		t.Errorf("bad rules: exit %d, want 1", r.code)
	}
	for _, want := range []string{"mail.handler: line 2:", "mail.handler: line 3:", "mail.handler: line 4:"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "line 1:") {
		t.Errorf("line 1 is good but reported:\n%s", r.stderr)
	}
	// "off" is a bool's false, "maybe" is an error, and a file works too.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pause.txt"), []byte("default 0 off\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ok(t, dir, nil, "flags", "check", "mail.pause", "pause.txt")
	if r := run(t, "", nil, []byte("default 0 maybe\n"), "flags", "check", "mail.pause"); r.code != 1 {
		t.Errorf("bool 'maybe': exit %d, want 1", r.code)
	}
	// A FLAG that is not a known flag fails, naming the nearest one.
	dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rules.txt"), []byte("default 0 publish\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ flag, want string }{
		{"mail.handlr", "not a known flag: mail.handlr (did you mean mail.handler?)"},
		{"mail.future.thing", "not a known flag: mail.future.thing; workers refuse"},
	} {
		r := run(t, dir, nil, nil, "flags", "check", tc.flag, "rules.txt")
		if r.code != 1 || !strings.Contains(r.stderr, tc.want) || strings.Contains(r.stdout, "ok") {
			t.Errorf("flags check %s: exit %d, stdout %q, stderr %q; want 1 and %q", tc.flag, r.code, r.stdout, r.stderr, tc.want)
		}
	}
	// Without FLAG: scopes and priorities only.
	if r := run(t, "", nil, []byte("rcpt:^a@ 10 anything at all\n"), "flags", "check"); r.code != 0 || !strings.Contains(r.stdout, "1 rules ok") {
		t.Errorf("no FLAG, good rules: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	if r := run(t, "", nil, []byte("rcpt:^a@ 10 x\nrcpt:^b@ 10 y\n"), "flags", "check"); r.code != 1 || !strings.Contains(r.stderr, "rules: line 2:") {
		t.Errorf("no FLAG, duplicate priority: exit %d, %q", r.code, r.stderr)
	}
	// A term that can never match where it stands is a warning.
	r = run(t, "", nil, []byte("dkim:example.com 10 off\n"), "flags", "check", "mail.dkim.verify")
	if r.code != 0 || !strings.Contains(r.stderr, "line 1: warning:") {
		t.Errorf("dkim: in mail.dkim.verify: exit %d, stderr %q", r.code, r.stderr)
	}
	if r := run(t, "", nil, nil, "flags", "-h"); r.code != 0 || !strings.Contains(r.stdout, "explain") {
		t.Errorf("flags -h: exit %d, %q", r.code, r.stdout)
	}
	if r := run(t, "", nil, nil, "testkit", "-h"); r.code != 0 || !strings.Contains(r.stdout, "publish-key") {
		t.Errorf("testkit -h: exit %d, %q", r.code, r.stdout)
	}
}

func TestFlagsList(t *testing.T) {
	r := ok(t, "", nil, "flags", "list")
	for _, f := range rules.Known() {
		if !strings.Contains(r.stdout, f.Name) || !strings.Contains(r.stdout, f.Description) {
			t.Errorf("flags list lacks %s", f.Name)
		}
	}
	for _, k := range rules.ScopeKinds() {
		if !strings.Contains(r.stdout, k.Syntax) {
			t.Errorf("flags list lacks scope %s", k.Syntax)
		}
	}
}

// TestFlagsExplain explains a signed mail against live rules, with the
// key served from the staging key bucket.
func TestFlagsExplain(t *testing.T) {
	const keyBucket = "mail_dkim_keys"
	srv := stagingServer(t, keyBucket)
	url, operator := srv.URL, srv.Keys.SeedFile(access.Operator)
	if err := provision.Run(t.Context(), srv.JetStream(t, access.Provisioner), provision.Config{Names: contracts.Names{KeyBucket: keyBucket}}); err != nil {
		t.Fatal(err)
	}
	js := srv.JetStream(t, access.Operator) // writes the key and the rules
	key, err := testkit.GenerateKey("ed25519", 0)
	if err != nil {
		t.Fatal(err)
	}
	txt, err := testkit.TXTRecord(key)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := js.KeyValue(t.Context(), keyBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := keys.PutString(t.Context(), testkit.DNSName("s1", "example.com"), txt); err != nil {
		t.Fatal(err)
	}
	flags, err := js.KeyValue(t.Context(), "mail_flags")
	if err != nil {
		t.Fatal(err)
	}
	put := func(flag, text string) uint64 {
		rev, err := flags.PutString(t.Context(), flag, text)
		if err != nil {
			t.Fatal(err)
		}
		return rev
	}
	handlerRev := put(rules.FlagHandler, "trust:strong&rcpt:^bob@ 10 quarantine\ndefault 0 publish\n")
	put(rules.FlagDKIMStrong, "dkim:example.com 10 true\n")
	badRev := put(rules.FlagPause, "default 0 maybe\n")

	raw := testkit.SampleMail("Alice <alice@example.com>", "bob@example.org", "Hello", "Hi.\r\n",
		time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC), "explain@example.com")
	signed, err := testkit.Sign(raw, testkit.SignOptions{Domain: "example.com", Selector: "s1", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "mail.eml"), signed, 0o600); err != nil {
		t.Fatal(err)
	}
	r := ok(t, dir, nil, "flags", "explain", "--nats", url, "--nats-nkey", operator, "--key-bucket", keyBucket, "mail.eml")
	for _, want := range []string{
		"rcpt     bob@example.org",
		"dkim     pass d=example.com s=s1 a=ed25519-sha256",
		"trust    strong",
		`mail.handler "quarantine" rev ` + itoa(handlerRev) + " line 1: trust:strong&rcpt:^bob@ 10",
		`mail.reject "" default`,
		"mail.pause rev " + itoa(badRev) + ": line 1:",
	} {
		if !strings.Contains(squeeze(r.stdout), squeeze(want)) {
			t.Errorf("explain output lacks %q:\n%s", want, r.stdout)
		}
	}
	// The same mail with the rule-relevant recipient changed.
	r = ok(t, dir, nil, "flags", "explain", "--nats", url, "--nats-nkey", operator, "--key-bucket", keyBucket, "--to", "carol@example.org", "mail.eml")
	if !strings.Contains(squeeze(r.stdout), `mail.handler "publish" rev `+itoa(handlerRev)+" line 2: default 0") {
		t.Errorf("explain with --to carol:\n%s", r.stdout)
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }

// squeeze collapses runs of white space, so table alignment does not
// matter to the comparison.
func squeeze(s string) string { return strings.Join(strings.Fields(s), " ") }
