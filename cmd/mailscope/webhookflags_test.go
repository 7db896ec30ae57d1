package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWebhookFlags: the worker refuses at start, with a usage error
// naming the endpoint, an endpoint URL that is not http or https, an
// endpoint without a secret, a timeout not below the handler timeout and
// a malformed NAME=VALUE; the secret is never printed.
func TestWebhookFlags(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("TOPSECRET-VALUE\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--webhook", "t=ftp://hooks.example/x", "--webhook-secret-file", "t=" + secret}, `webhook endpoint t: URL scheme "ftp", want http or https`},
		{[]string{"--webhook", "t=https:///x", "--webhook-secret-file", "t=" + secret}, "webhook endpoint t: URL has no host"},
		{[]string{"--webhook", "t=https://hooks.example/x"}, "webhook endpoint t: no secret"},
		{[]string{"--webhook-secret-file", "t=" + secret}, "webhook endpoint t: no URL"},
		{[]string{"--webhook", "t=https://hooks.example/x", "--webhook-secret-file", "t=" + secret, "--webhook-timeout", "t=30s"}, "webhook endpoint t: timeout 30s not below the handler timeout 30s"},
		{[]string{"--webhook", "https://hooks.example/x"}, "want NAME=VALUE"},
		{[]string{"--webhook", "t=https://hooks.example/x", "--webhook-secret-file", "t=" + secret + ".missing"}, "endpoint t: secret file"},
		{[]string{"--webhook", "bad name=https://hooks.example/x", "--webhook-secret-file", "bad name=" + secret}, `webhook endpoint name "bad name"`},
	} {
		r := run(t, "", nil, nil, append([]string{"worker", "--nats", "nats://127.0.0.1:1"}, c.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", c.args, r.code, r.stderr, c.want)
		}
		if strings.Contains(r.stderr+r.stdout, "TOPSECRET") {
			t.Errorf("%v: the secret was printed: %q", c.args, r.stderr)
		}
	}
}
