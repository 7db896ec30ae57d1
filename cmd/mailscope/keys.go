package main

import (
	"context"
	"flag"
	"fmt"
	"io"

	"github.com/mailscope/mailscope/access"
)

// runKeys makes (or reads) every role's NKey seed in a directory and
// prints each public key with the kubectl command that stores the pair
// as the role's Secret, as deploy/k8s expects it.
func runKeys(_ context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("keys", flag.ContinueOnError)
	dir := fs.String("dir", "", "directory of the seeds (ROLE.nk, mode 0600; made where missing, kept where present); required")
	ns := fs.String("namespace", "mailscope", "namespace of the Secrets in the printed kubectl commands")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: mailscope keys --dir DIR [--namespace NS]")
		fmt.Fprintln(fs.Output(), "Makes an NKey seed for every role (producer, worker, provisioner, operator, observer, service) in DIR where")
		fmt.Fprintln(fs.Output(), "none is, and prints each role's public key and the kubectl command that stores seed and public")
		fmt.Fprintln(fs.Output(), "key as the Secret mailscope-nats-ROLE (deploy/k8s mounts the seed; the NATS server reads the public")
		fmt.Fprintln(fs.Output(), "key). Keep DIR private: a seed is a role's password. Rotate a role by deleting its seed and rerunning.")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if *dir == "" || fs.NArg() != 0 {
		fs.Usage()
		return usageError{fmt.Errorf("keys: --dir is required and takes no arguments")}
	}
	keys, err := access.OpenKeyring(*dir, access.Roles()...)
	if err != nil {
		return err
	}
	for _, r := range access.Roles() {
		fmt.Fprintf(out, "%-12s %s\n", r, keys.PublicKey(r))
	}
	fmt.Fprintln(out)
	for _, r := range access.Roles() {
		fmt.Fprintf(out, "kubectl -n %s create secret generic mailscope-nats-%s --from-file=seed=%s --from-literal=public=%s\n",
			*ns, r, keys.SeedFile(r), keys.PublicKey(r))
	}
	return nil
}
