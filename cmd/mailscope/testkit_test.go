package main

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/auth"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/provision"
)

// testkit publish-key puts a key record into the staging key bucket, where
// the verifier's KV key source finds it, and deletes it again.
func TestTestkitPublishKey(t *testing.T) {
	const bucket = "mail_dkim_keys"
	srv := stagingServer(t, bucket)
	url, operator := srv.URL, srv.Keys.SeedFile(access.Operator)
	if err := provision.Run(t.Context(), srv.JetStream(t, access.Provisioner), provision.Config{Names: contracts.Names{KeyBucket: bucket}}); err != nil {
		t.Fatal(err)
	}
	// The keys are looked up as the worker does.
	kv, err := srv.JetStream(t, access.Worker).KeyValue(t.Context(), bucket)
	if err != nil {
		t.Fatal(err)
	}
	keys := auth.NewKVKeys(kv)
	dir := t.TempDir()
	r := ok(t, dir, nil, "testkit", "keygen", "--alg", "ed25519", "--out", "key.pem", "--domain", "example.com", "--selector", "s1")
	_, quoted, _ := strings.Cut(strings.TrimSpace(r.stdout), " IN TXT ")
	want, err := strconv.Unquote(quoted)
	if err != nil {
		t.Fatal(err)
	}

	// MAILSCOPE_BUCKET names the flag bucket for other commands; it must
	// not redirect keys.
	env := []string{"MAILSCOPE_BUCKET=mail_flags"}
	ok(t, dir, env, "testkit", "publish-key", "--nats", url, "--nats-nkey", operator, "--selector", "S1", "--domain", "Example.COM", "--key", "key.pem")
	if got, err := keys.LookupKey(t.Context(), "s1._domainkey.example.com"); err != nil || got != want {
		t.Errorf("bucket holds %q (%v), want the key's record %q", got, err, want)
	}

	ok(t, dir, nil, "testkit", "publish-key", "--nats", url, "--nats-nkey", operator, "--key-bucket", bucket,
		"--selector", "s2", "--domain", "example.com", "--txt", "v=DKIM1; k=rsa; p=")
	if got, err := keys.LookupKey(t.Context(), "s2._domainkey.example.com"); err != nil || got != "v=DKIM1; k=rsa; p=" {
		t.Errorf("bucket holds %q (%v) for s2", got, err)
	}

	ok(t, dir, nil, "testkit", "publish-key", "--nats", url, "--nats-nkey", operator, "--selector", "s1", "--domain", "example.com", "--delete")
	if _, err := keys.LookupKey(t.Context(), "s1._domainkey.example.com"); !errors.Is(err, auth.ErrNotFound) {
		t.Errorf("after --delete: %v, want not found", err)
	}

	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"--selector", "s1", "--domain", "example.com"}, 2},                                             // no key
		{[]string{"--selector", "s1", "--domain", "example.com", "--key", "key.pem", "--delete"}, 2},             // two sources
		{[]string{"--domain", "example.com", "--key", "key.pem"}, 2},                                             // no selector
		{[]string{"--selector", "s1", "--domain", "example.com", "--txt", "v=DKIM1; k=rsa"}, 2},                  // no p=
		{[]string{"--selector", "s1", "--domain", "example.com", "--key", "key.pem", "--key-bucket", "nope"}, 1}, // no bucket
	} {
		args := append([]string{"testkit", "publish-key", "--nats", url, "--nats-nkey", operator}, tc.args...)
		if r := run(t, dir, nil, nil, args...); r.code != tc.code {
			t.Errorf("%v: exit %d, want %d\nstderr: %s", tc.args, r.code, tc.code, r.stderr)
		}
	}
}
