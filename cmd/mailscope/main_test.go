package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/auth"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/embedded"
	"github.com/mailscope/mailscope/keyserver"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/testkit"
)

// wait bounds every run of the binary; a safety net against hangs.
const wait = 60 * time.Second

// binary is the mailscope binary TestMain builds.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "mailscope-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "mailscope")
	build := exec.Command("go", "build", "-o", binary, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "go build:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// result is one run of the binary.
type result struct {
	stdout, stderr string
	code           int
}

// environ is the environment of a run of the binary: the test's own
// without MAILSCOPE_* and NATS_* (a developer's NATS_URL or NATS_NKEY),
// with HOME and XDG_CONFIG_HOME in a directory of the test's (no nats
// CLI context or configuration of the developer's is read or written),
// then env.
func environ(t *testing.T, env []string) []string {
	t.Helper()
	home := t.TempDir()
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "MAILSCOPE_") || strings.HasPrefix(name, "NATS_") || name == "HOME" || name == "XDG_CONFIG_HOME" {
			continue
		}
		out = append(out, kv)
	}
	out = append(out, "HOME="+home, "XDG_CONFIG_HOME="+filepath.Join(home, ".config"))
	return append(out, env...)
}

// run runs the binary with args in dir (the test's temp dir when empty),
// in environ(env).
func run(t *testing.T, dir string, env []string, stdin []byte, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	if dir == "" {
		dir = t.TempDir()
	}
	cmd.Dir = dir
	cmd.Env = environ(t, env)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	err := cmd.Run()
	r := result{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	default:
		t.Fatalf("mailscope %s: %v", strings.Join(args, " "), err)
	}
	if ctx.Err() != nil {
		t.Fatalf("mailscope %s did not finish within %s", strings.Join(args, " "), wait)
	}
	return r
}

// ok runs the binary and fails the test unless it exits 0.
func ok(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	r := run(t, dir, env, nil, args...)
	if r.code != 0 {
		t.Fatalf("mailscope %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// natsServer starts an embedded nats-server with every role's
// credentials (systest.Start): the binary's commands connect to it as
// their roles, with the role's seed given by --nats-nkey or NATS_NKEY.
func natsServer(t *testing.T) *systest.Env {
	t.Helper()
	return systest.Start(t)
}

// stagingServer is natsServer for a system with the staging key bucket
// named keyBucket, whose permissions cover the bucket as a staging
// deployment's do: the operator writes keys, the worker reads them.
func stagingServer(t *testing.T, keyBucket string) *systest.Env {
	t.Helper()
	keys, err := access.OpenKeyring(t.TempDir(), append(access.Roles(), access.LoadTest)...)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := embedded.Start(embedded.Config{Port: -1, StoreDir: t.TempDir(), Users: keys.PublicKeys(),
		Names: contracts.Names{KeyBucket: keyBucket}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return &systest.Env{Server: srv, URL: srv.ClientURL(), Keys: keys}
}

// writeMail writes a sample mail into dir and returns its path and bytes.
func writeMail(t *testing.T, dir string) (string, []byte) {
	t.Helper()
	raw := testkit.SampleMail("Alice <alice@example.com>", "bob@example.org", "Hello",
		"Hi Bob.\n.dot line\n", time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC), "cmd-test@example.com")
	path := filepath.Join(dir, "mail.eml")
	if err := os.WriteFile(path, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, raw
}

// stored returns the message with the given stream sequence and its
// envelope.
func stored(t *testing.T, js jetstream.JetStream, seq uint64) (*jetstream.RawStreamMsg, contracts.Envelope) {
	t.Helper()
	s, err := js.Stream(t.Context(), contracts.DefaultNames().MailStream)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := s.GetMsg(t.Context(), seq)
	if err != nil {
		t.Fatalf("message %d: %v", seq, err)
	}
	env, err := contracts.DecodeEnvelope(msg.Header)
	if err != nil {
		t.Fatalf("message %d: %v", seq, err)
	}
	return msg, env
}

var storedLine = regexp.MustCompile(`: (?:already )?stored as (\S+) \(stream (\S+) seq (\d+)\)`)

// storedSeqs parses publish's output lines into sequence numbers.
func storedSeqs(t *testing.T, out string) []uint64 {
	t.Helper()
	var seqs []uint64
	for _, m := range storedLine.FindAllStringSubmatch(out, -1) {
		n, err := strconv.ParseUint(m[3], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, n)
	}
	if len(seqs) == 0 {
		t.Fatalf("publish printed no stored line: %q", out)
	}
	return seqs
}

func TestVersion(t *testing.T) {
	r := ok(t, "", nil, "version")
	if !strings.HasPrefix(r.stdout, "mailscope ") {
		t.Errorf("version printed %q", r.stdout)
	}
}

func TestHelp(t *testing.T) {
	r := ok(t, "", nil, "help")
	for _, name := range []string{"dev", "producer", "worker", "provision", "publish", "testkit", "version"} {
		if !strings.Contains(r.stdout, name) {
			t.Errorf("usage does not list %s:\n%s", name, r.stdout)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	mail, _ := writeMail(t, dir)
	for _, tc := range []struct {
		name   string
		env    []string
		args   []string
		stderr string
	}{
		{name: "no command", stderr: "usage: mailscope COMMAND"},
		{name: "unknown command", args: []string{"frobnicate"}, stderr: `unknown command "frobnicate"`},
		{name: "publish without --to", args: []string{"publish", mail}, stderr: "need --to"},
		{name: "publish without a file", args: []string{"publish", "--to", "bob@example.org"}, stderr: "need --to"},
		{name: "publish unknown flag", args: []string{"publish", "--bogus", mail}, stderr: "bogus"},
		{name: "publish bad recipient", args: []string{"publish", "--to", "bob", mail}, stderr: `"bob"`},
		{name: "publish bad sender", args: []string{"publish", "--to", "bob@example.org", "--from", "<>", mail}, stderr: `"<>"`},
		// An empty recipient (a trailing comma) must not slip through as
		// "the null sender is allowed": workers would dead-letter the mail.
		{name: "publish empty recipient", args: []string{"publish", "--to", "bob@example.org,", mail}, stderr: `""`},
		{name: "publish bad env value", env: []string{"MAILSCOPE_TO=bob"}, args: []string{"publish", mail}, stderr: `"bob"`},
		{name: "producer bad env value", env: []string{"MAILSCOPE_MAX_SIZE=big"}, args: []string{"producer"}, stderr: "MAILSCOPE_MAX_SIZE"},
		{name: "testkit without subcommand", args: []string{"testkit"}, stderr: "keygen|sign"},
		{name: "testkit unknown subcommand", args: []string{"testkit", "frob"}, stderr: `"frob"`},
		{name: "testkit keygen bad alg", args: []string{"testkit", "keygen", "--alg", "dsa"}, stderr: "dsa"},
		{name: "testkit sign without key", args: []string{"testkit", "sign", "--domain", "example.com", "--selector", "s1", mail}, stderr: "need --key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, dir, tc.env, nil, tc.args...)
			if r.code != 2 {
				t.Errorf("exit %d, want 2\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("stderr %q does not contain %q", r.stderr, tc.stderr)
			}
		})
	}
}

func TestTestkitKeygenSign(t *testing.T) {
	dir := t.TempDir()
	mail, raw := writeMail(t, dir)
	r := ok(t, dir, nil, "testkit", "keygen", "--alg", "ed25519", "--out", "key.pem", "--domain", "example.com", "--selector", "s1")

	// The output is one zone-file line: NAME. IN TXT "record".
	name, quoted, found := strings.Cut(strings.TrimSpace(r.stdout), " IN TXT ")
	if !found || strings.Count(r.stdout, "\n") != 1 {
		t.Fatalf("keygen printed %q, want one TXT record line", r.stdout)
	}
	if name != "s1._domainkey.example.com." {
		t.Errorf("record name %q", name)
	}
	txt, err := strconv.Unquote(quoted)
	if err != nil {
		t.Fatalf("record value %s: %v", quoted, err)
	}
	if !strings.HasPrefix(txt, "v=DKIM1; k=ed25519; p=") {
		t.Errorf("record %q", txt)
	}
	fi, err := os.Stat(filepath.Join(dir, "key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("private key file mode %v, want no access for group and others", fi.Mode().Perm())
	}

	signArgs := []string{"testkit", "sign", "--key", "key.pem", "--domain", "example.com", "--selector", "s1"}
	signed := []byte(ok(t, dir, nil, append(signArgs, mail)...).stdout)
	if !bytes.HasPrefix(signed, []byte("DKIM-Signature:")) {
		t.Fatalf("sign output starts %q", signed[:min(len(signed), 40)])
	}
	if !bytes.HasSuffix(signed, raw) {
		t.Errorf("signed mail does not end with the original mail unchanged")
	}

	// Verified with the printed record, as DNS would serve it.
	lookup := func(domain string) ([]string, error) {
		if domain+"." == name {
			return []string{txt}, nil
		}
		return nil, fmt.Errorf("no TXT record for %s", domain)
	}
	vs, err := dkim.VerifyWithOptions(bytes.NewReader(signed), &dkim.VerifyOptions{LookupTXT: lookup})
	if err != nil {
		t.Fatal(err)
	}
	if len(vs) != 1 || vs[0].Err != nil || vs[0].Domain != "example.com" {
		t.Fatalf("verifications %+v, want one pass for example.com", vs)
	}

	// And through the project's own resolver and verifier, with the key
	// published by a DNS server on loopback.
	ks, err := keyserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	ks.SetTXT(strings.TrimSuffix(name, "."), 300, txt)
	cfg := auth.Config{DNSServers: []string{ks.Addr()}}
	res, err := auth.NewVerifier(cfg, auth.NewResolver(cfg)).Verify(t.Context(), signed)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Signatures) != 1 || res.Signatures[0].Result != contracts.ResultPass {
		t.Errorf("auth verification %+v, want one pass", res.Signatures)
	}

	// Signing stdin gives a signature that verifies as well.
	in := run(t, dir, nil, raw, append(signArgs, "-")...)
	if in.code != 0 {
		t.Fatalf("sign -: exit %d: %s", in.code, in.stderr)
	}
	vs, err = dkim.VerifyWithOptions(strings.NewReader(in.stdout), &dkim.VerifyOptions{LookupTXT: lookup})
	if err != nil || len(vs) != 1 || vs[0].Err != nil {
		t.Errorf("stdin-signed mail: %+v, %v", vs, err)
	}
}

func TestProvisionTwice(t *testing.T) {
	srv := natsServer(t)
	for i := range 2 {
		r := ok(t, "", nil, "provision", "--nats", srv.URL, "--nats-nkey", srv.Keys.SeedFile(access.Provisioner))
		if !strings.HasPrefix(r.stdout, "provisioned: stream MAIL") {
			t.Errorf("provision #%d printed %q", i+1, r.stdout)
		}
	}
	// What provisioning made, as the observer sees it.
	js := srv.JetStream(t, access.Observer)
	names := contracts.DefaultNames()
	for _, s := range []string{names.MailStream, names.OutcomeStream, names.DeadStream} {
		if _, err := js.Stream(t.Context(), s); err != nil {
			t.Errorf("stream %s: %v", s, err)
		}
	}
	if _, err := js.Consumer(t.Context(), names.MailStream, names.Consumer); err != nil {
		t.Errorf("consumer %s: %v", names.Consumer, err)
	}
	if _, err := js.KeyValue(t.Context(), names.FlagsBucket); err != nil {
		t.Errorf("bucket %s: %v", names.FlagsBucket, err)
	}
}

func TestPublish(t *testing.T) {
	srv := natsServer(t)
	url, producerKey := srv.URL, srv.Keys.SeedFile(access.Producer)
	ok(t, "", nil, "provision", "--nats", url, "--nats-nkey", srv.Keys.SeedFile(access.Provisioner))
	js := srv.JetStream(t, access.Operator) // reads the stored mail
	dir := t.TempDir()
	mail, raw := writeMail(t, dir)

	r := ok(t, dir, nil, "publish", "--nats", url, "--nats-nkey", producerKey, "--from", "alice@example.com",
		"--to", "bob@example.org,carol@example.net", mail)
	seqs := storedSeqs(t, r.stdout)
	if len(seqs) != 1 {
		t.Fatalf("one file, %d stored lines: %q", len(seqs), r.stdout)
	}
	msg, env := stored(t, js, seqs[0])
	if !bytes.Equal(msg.Data, raw) {
		t.Errorf("stored mail differs from the file")
	}
	if want := []string{"bob@example.org", "carol@example.net"}; !slices.Equal(env.RcptTo, want) {
		t.Errorf("RcptTo = %q, want %q", env.RcptTo, want)
	}
	if env.MailFrom != "alice@example.com" || env.Protocol != "publish" || env.ID == "" {
		t.Errorf("envelope %+v", env)
	}
	if m := storedLine.FindStringSubmatch(r.stdout); m[1] != env.ID || m[2] != "MAIL" {
		t.Errorf("printed id %s stream %s, stored id %s", m[1], m[2], env.ID)
	}

	// Several files, and - for stdin, with the null sender. The same
	// bytes to the same envelope are one mail (its content id): stored
	// once, unless --new-id asks for another copy.
	in := run(t, dir, nil, raw, "publish", "--nats", url, "--nats-nkey", producerKey, "--to", "dave@example.com", mail, "-")
	if in.code != 0 {
		t.Fatalf("publish FILE -: exit %d: %s", in.code, in.stderr)
	}
	seqs = storedSeqs(t, in.stdout)
	if len(seqs) != 2 || seqs[0] != seqs[1] || !strings.Contains(in.stdout, "already stored as") {
		t.Fatalf("the same mail twice: stored lines %v, want one sequence twice, the second already stored: %q", seqs, in.stdout)
	}
	again := run(t, dir, nil, raw, "publish", "--nats", url, "--nats-nkey", producerKey, "--to", "dave@example.com", "--new-id", mail, "-")
	if again.code != 0 {
		t.Fatalf("publish --new-id FILE -: exit %d: %s", again.code, again.stderr)
	}
	seqs = append(seqs, storedSeqs(t, again.stdout)...)
	if len(seqs) != 4 || seqs[2] == seqs[3] || seqs[2] == seqs[0] || strings.Contains(again.stdout, "already") {
		t.Fatalf("--new-id: sequences %v, want two new copies: %q", seqs, again.stdout)
	}
	for _, seq := range seqs {
		msg, env := stored(t, js, seq)
		if !bytes.Equal(msg.Data, raw) || env.MailFrom != "" || !slices.Equal(env.RcptTo, []string{"dave@example.com"}) {
			t.Errorf("seq %d: envelope %+v, data equal %v", seq, env, bytes.Equal(msg.Data, raw))
		}
	}
}

func TestPublishNoServer(t *testing.T) {
	dir := t.TempDir()
	mail, _ := writeMail(t, dir)
	// Nothing listens on port 1 of loopback: a runtime failure, exit 1.
	r := run(t, dir, nil, nil, "publish", "--nats", "nats://127.0.0.1:1", "--to", "bob@example.org", mail)
	if r.code != 1 || !strings.Contains(r.stderr, "connect to NATS") {
		t.Errorf("exit %d, stderr %q; want 1 and a connection error", r.code, r.stderr)
	}
}

// TestEnvironment: every flag can be given as MAILSCOPE_<FLAG>; a flag on
// the command line wins over the environment. NATS_URL and NATS_NKEY are
// the defaults of --nats and --nats-nkey, as deploy/k8s sets them.
func TestEnvironment(t *testing.T) {
	srv := natsServer(t)
	url, js := srv.URL, srv.JetStream(t, access.Operator)
	ok(t, "", []string{"NATS_URL=" + url, "NATS_NKEY=" + srv.Keys.SeedFile(access.Provisioner)}, "provision")
	dir := t.TempDir()
	mail, _ := writeMail(t, dir)
	producerKey := "NATS_NKEY=" + srv.Keys.SeedFile(access.Producer)

	r := ok(t, dir, []string{"MAILSCOPE_NATS=" + url, "MAILSCOPE_NATS_NKEY=" + srv.Keys.SeedFile(access.Producer),
		"MAILSCOPE_TO=erin@example.com,frank@example.com"}, "publish", mail)
	_, env := stored(t, js, storedSeqs(t, r.stdout)[0])
	if want := []string{"erin@example.com", "frank@example.com"}; !slices.Equal(env.RcptTo, want) {
		t.Errorf("MAILSCOPE_TO: RcptTo = %q, want %q", env.RcptTo, want)
	}

	// Spaces after the commas are tolerated, not stored.
	r = ok(t, dir, []string{"NATS_URL=" + url, producerKey}, "publish", "--to", "erin@example.com, frank@example.com", mail)
	_, env = stored(t, js, storedSeqs(t, r.stdout)[0])
	if want := []string{"erin@example.com", "frank@example.com"}; !slices.Equal(env.RcptTo, want) {
		t.Errorf("--to with spaces: RcptTo = %q, want %q", env.RcptTo, want)
	}

	r = ok(t, dir, []string{"NATS_URL=" + url, producerKey, "MAILSCOPE_TO=erin@example.com", "MAILSCOPE_FROM=alice@example.com"},
		"publish", "--to", "grace@example.com", mail)
	_, env = stored(t, js, storedSeqs(t, r.stdout)[0])
	if !slices.Equal(env.RcptTo, []string{"grace@example.com"}) || env.MailFrom != "alice@example.com" {
		t.Errorf("--to with MAILSCOPE_TO set: envelope %+v, want the flag's recipient and the env's sender", env)
	}
}
