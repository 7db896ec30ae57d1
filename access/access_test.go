package access_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/contracts"
)

func TestKeyringKeepsAndRefuses(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "creds")
	k1, err := access.OpenKeyring(dir, access.Roles()...)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := access.OpenKeyring(dir, access.Roles()...)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range access.Roles() {
		pub := k1.PublicKey(r)
		if !strings.HasPrefix(pub, "U") || pub != k2.PublicKey(r) {
			t.Errorf("%s: key %q, then %q", r, pub, k2.PublicKey(r))
		}
		if seen[pub] {
			t.Errorf("%s shares a key with another role", r)
		}
		seen[pub] = true
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("keyring directory: %v %v, want mode 0700", fi.Mode().Perm(), err)
	}
	if err := os.WriteFile(k1.SeedFile(access.Worker), []byte("not a seed\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := access.OpenKeyring(dir, access.Worker); err == nil || !strings.Contains(err.Error(), "worker.nk") {
		t.Errorf("a broken seed: %v, want an error naming the file", err)
	}
	if got, _ := os.ReadFile(k1.SeedFile(access.Worker)); string(got) != "not a seed\n" {
		t.Error("a broken seed was replaced")
	}
}

// TestPermissionsFollowNames: renamed objects keep their protection, and
// a role that is not one may do nothing.
func TestPermissionsFollowNames(t *testing.T) {
	n := contracts.Names{MailSubject: "in.mail", FlagsBucket: "flags2", Consumer: "fleet"}
	if p := access.Producer.Permissions(n); p.Publish.Allow[0] != "in.mail" || slices.ContainsFunc(p.Publish.Allow[1:], func(s string) bool {
		return !strings.Contains(s, "OBJ_mail_claims") && !strings.HasPrefix(s, "$O.mail_claims.")
	}) {
		t.Errorf("producer publishes %q: the mail subject and the claim bucket only", p.Publish.Allow)
	}
	w := access.Worker.Permissions(n)
	for _, want := range []string{"$JS.API.CONSUMER.MSG.NEXT.MAIL.fleet", "$JS.API.DIRECT.GET.KV_flags2.>"} {
		if !slices.Contains(w.Publish.Allow, want) {
			t.Errorf("worker may not %s", want)
		}
	}
	if slices.Contains(w.Publish.Allow, "in.mail") || slices.Contains(w.Publish.Allow, "$KV.flags2.>") {
		t.Errorf("worker may publish mail or write rules: %q", w.Publish.Allow)
	}
	op := access.Operator.Permissions(n)
	if !slices.Contains(op.Publish.Allow, "$KV.flags2.>") || !slices.Contains(op.Publish.Deny, "$JS.API.CONSUMER.MSG.NEXT.MAIL.fleet") {
		t.Errorf("operator: %+v", op)
	}
	n.ServicePrefix = "ext.svc"
	if w := access.Worker.Permissions(n); !slices.Contains(w.Publish.Allow, "ext.svc.>") || w.Responses {
		t.Errorf("worker: requests on the service prefix, no responses: %+v", w)
	}
	if s := access.Service.Permissions(n); len(s.Publish.Allow) != 0 || !s.Responses ||
		!slices.Equal(s.Subscribe.Allow, []string{"ext.svc.>", "$SRV.>", "_INBOX_service.>"}) {
		t.Errorf("service: replies only, requests on the service prefix and discovery: %+v", s)
	}
	if op := access.Operator.Permissions(n); !slices.Contains(op.Publish.Allow, "$SRV.>") {
		t.Errorf("operator may not discover services: %+v", op.Publish.Allow)
	}
	none := access.Role("intruder").Permissions(n)
	if !slices.Equal(none.Publish.Deny, []string{">"}) || len(none.Publish.Allow) != 0 || !slices.Equal(none.Subscribe.Deny, []string{">"}) {
		t.Errorf("an unknown role may do %+v", none)
	}
	if _, err := access.ParseRole("admin"); err == nil {
		t.Error("admin parsed as a role")
	}
	if access.Worker.EnvVar() != "MAILSCOPE_WORKER_NKEY" || access.Observer.InboxPrefix() != "_INBOX_observer" {
		t.Error("EnvVar or InboxPrefix changed: deploy/k8s depends on them")
	}
}
