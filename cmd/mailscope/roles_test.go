package main

import (
	"flag"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/dev"
	"github.com/mailscope/mailscope/keyserver"
	"github.com/mailscope/mailscope/producer"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/testkit"
)

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start runs the binary in the background until the test ends, in
// environ(env) with warnings logged.
func start(t *testing.T, env []string, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), binary, args...)
	cmd.Env = environ(t, append([]string{"MAILSCOPE_LOG_LEVEL=warn"}, env...))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	})
}

// ready waits until a role's /readyz answers 200.
func ready(t *testing.T, addr string) {
	t.Helper()
	systest.WaitFor(t, "http://"+addr+"/readyz", func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// TestRolesAsProcesses runs the production roles as separate processes of
// the binary, configured only by flags and environment, against a NATS
// server with rules in its bucket: provision, producer, worker, each with
// its own role's credentials; then a signed mail over SMTP gets the
// outcome the rules say.
func TestRolesAsProcesses(t *testing.T) {
	srv := systest.Start(t)
	url := srv.URL
	keys, err := keyserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keys.Close() })
	key, err := testkit.GenerateKey("ed25519", 0)
	if err != nil {
		t.Fatal(err)
	}
	txt, err := testkit.TXTRecord(key)
	if err != nil {
		t.Fatal(err)
	}
	keys.SetTXT(testkit.DNSName("s1", "example.com"), 300, txt)

	ok(t, "", nil, "provision", "--nats", url, "--nats-nkey", srv.Keys.SeedFile(access.Provisioner))
	js := srv.JetStream(t, access.Operator) // writes the rules, reads the outcomes
	kv, err := js.KeyValue(t.Context(), "mail_flags")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.PutString(t.Context(), rules.FlagHandler, "trust:strong&rcpt:^ops@ 10 quarantine\ndefault 0 publish\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := kv.PutString(t.Context(), rules.FlagDKIMStrong, "dkim:example.com 10 on\n"); err != nil {
		t.Fatal(err)
	}

	smtpAddr, producerHTTP, workerHTTP := freeAddr(t), freeAddr(t), freeAddr(t)
	start(t, nil, "producer", "--nats", url, "--nats-nkey", srv.Keys.SeedFile(access.Producer),
		"--smtp", smtpAddr, "--lmtp", "-", "--http-addr", producerHTTP)
	// The environment sets what a flag would; the seed as deploy/k8s
	// gives it.
	start(t, []string{"MAILSCOPE_ENV=staging", "NATS_NKEY=" + srv.Keys.SeedFile(access.Worker)},
		"worker", "--nats", url, "--dns-server", keys.Addr(), "--http-addr", workerHTTP, "--name", "w1")
	ready(t, producerHTTP)
	ready(t, workerHTTP)

	outcomes := systest.NewOutcomes(t, js.Conn(), systest.ByRcpt)
	raw := testkit.SampleMail("Alice <alice@example.com>", "ops@example.org", "roles", "Hi.\r\n", time.Now(), "roles@example.com")
	signed, err := testkit.Sign(raw, testkit.SignOptions{Domain: "example.com", Selector: "s1", Key: key})
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.SendSMTP(smtpAddr, "alice@example.com", []string{"ops@example.org"}, signed); err != nil {
		t.Fatal(err)
	}
	o := outcomes.First(t, "ops@example.org")
	if o.Disposition != contracts.Quarantined || o.Auth.Trust != contracts.TrustStrong ||
		o.Worker.Name != "w1" || o.Worker.Env != "staging" || o.Envelope.Protocol != "smtp" {
		t.Errorf("outcome %+v", o)
	}
}

// TestProducerGroupCommitFlag: group commit is on unless --group-commit
// is false, by flag or by MAILSCOPE_GROUP_COMMIT.
func TestProducerGroupCommitFlag(t *testing.T) {
	t.Setenv("MAILSCOPE_GROUP_COMMIT", "") // restored at the end; set or unset per case below
	for _, c := range []struct {
		args    []string
		env     string
		wantOff bool
	}{
		{nil, "", false},
		{[]string{"--group-commit"}, "", false},
		{[]string{"--group-commit=false"}, "", true},
		{nil, "false", true},
		{[]string{"--group-commit=true"}, "false", false}, // a flag beats the environment
	} {
		if c.env != "" {
			os.Setenv("MAILSCOPE_GROUP_COMMIT", c.env)
		} else {
			os.Unsetenv("MAILSCOPE_GROUP_COMMIT")
		}
		fs := flag.NewFlagSet("producer", flag.ContinueOnError)
		var pc producer.Config
		addProducerFlags(fs, &pc)
		if err := parse(fs, c.args); err != nil {
			t.Fatalf("%q: %v", c.args, err)
		}
		if pc.Batch.Off != c.wantOff {
			t.Errorf("args %q, MAILSCOPE_GROUP_COMMIT=%q: Batch.Off %v, want %v", c.args, c.env, pc.Batch.Off, c.wantOff)
		}
	}
	var help strings.Builder
	fs := flag.NewFlagSet("producer", flag.ContinueOnError)
	fs.SetOutput(&help)
	addProducerFlags(fs, new(producer.Config))
	fs.PrintDefaults()
	if !strings.Contains(help.String(), "(default true)") {
		t.Errorf("help does not state group commit's default:\n%s", help.String())
	}
}

// TestWorkerWaitsForProvisioning: a worker started before provisioning
// (a rollout that beats the provisioning Job) stays alive and not ready,
// and takes mail once the streams exist, instead of crash-looping.
func TestWorkerWaitsForProvisioning(t *testing.T) {
	srv := systest.Start(t)
	workerHTTP := freeAddr(t)
	start(t, nil, "worker", "--nats", srv.URL, "--nats-nkey", srv.Keys.SeedFile(access.Worker), "--http-addr", workerHTTP)
	status := func(path string) int {
		resp, err := http.Get("http://" + workerHTTP + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	systest.WaitFor(t, "the waiting worker to answer /healthz", func() bool { return status("/healthz") == http.StatusOK })
	if got := status("/readyz"); got == http.StatusOK {
		t.Fatal("ready before anything was provisioned")
	}
	ok(t, "", nil, "provision", "--nats", srv.URL, "--nats-nkey", srv.Keys.SeedFile(access.Provisioner))
	ready(t, workerHTTP)
}
