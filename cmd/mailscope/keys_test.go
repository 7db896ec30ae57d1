package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestKeys: mailscope keys makes a seed per role, readable by its owner
// alone, keeps them on a second run, and prints the Secrets deploy/k8s
// mounts.
func TestKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	var first, second bytes.Buffer
	if err := runKeys(t.Context(), []string{"--dir", dir, "--namespace", "mail"}, &first); err != nil {
		t.Fatal(err)
	}
	if err := runKeys(t.Context(), []string{"--dir", dir, "--namespace", "mail"}, &second); err != nil {
		t.Fatal(err)
	}
	if first.String() != second.String() {
		t.Errorf("a second run changed the keys:\n%s\n%s", first.String(), second.String())
	}
	for _, r := range []string{"producer", "worker", "provisioner", "operator", "observer", "service"} {
		fi, err := os.Stat(filepath.Join(dir, r+".nk"))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s.nk mode %v, want 0600", r, fi.Mode().Perm())
		}
		if !strings.Contains(first.String(), "kubectl -n mail create secret generic mailscope-nats-"+r+" --from-file=seed="+filepath.Join(dir, r+".nk")+" --from-literal=public=U") {
			t.Errorf("no Secret command for %s in:\n%s", r, first.String())
		}
	}
	if err := runKeys(t.Context(), nil, &first); err == nil {
		t.Error("keys without --dir succeeded")
	}
}
