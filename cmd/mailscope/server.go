package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/embedded"
)

// runServer runs the embedded nats-server alone, as its own process: what
// the load test starts so that the server's CPU is measured apart from
// the producer's and the worker's.
func runServer(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	dir := fs.String("data-dir", filepath.Join(os.TempDir(), "mailscope-server"), "JetStream file store directory (created if missing)")
	host := fs.String("host", "127.0.0.1", "address to listen on for clients")
	port := fs.Int("port", 4222, "client port; -1 picks a free one")
	creds := fs.String("credentials-dir", "", "NKey seeds of every role (ROLE.nk), made where missing and kept (default DATA-DIR/credentials)")
	monitor := fs.Int("monitor-port", 0, "monitoring port on --host (/jsz, what KEDA reads); 0: off, -1: any free port")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: mailscope server [--data-dir DIR] [--host ADDR] [--port N]")
		fmt.Fprintln(fs.Output(), "Runs the embedded nats-server with JetStream alone: file storage in --data-dir, every write")
		fmt.Fprintln(fs.Output(), "fsynced before it is acknowledged (sync_interval: always, as mailscope dev has it), max payload")
		fmt.Fprintln(fs.Output(), "8 MiB, one NKey user per role (package access; seeds in --credentials-dir) and no anonymous clients. Prints its client URL (nats://HOST:PORT) as the first line of standard output once it")
		fmt.Fprintln(fs.Output(), "accepts clients, and runs until SIGTERM or interrupt. For development and load tests; production")
		fmt.Fprintln(fs.Output(), "runs a NATS cluster (deploy/k8s).")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fs.Usage()
		return usageError{fmt.Errorf("unexpected arguments %q", fs.Args())}
	}
	if *port < -1 || *port > 65535 {
		return usageError{fmt.Errorf("--port %d: want -1 (a free port) or 0 to 65535", *port)}
	}
	if *port == 0 {
		*port = -1 // embedded reads 0 as its default, 4222; 0 here means any port
	}
	if *creds == "" {
		*creds = filepath.Join(*dir, "credentials")
	}
	keys, err := access.OpenKeyring(*creds, append(access.Roles(), access.LoadTest)...)
	if err != nil {
		return err
	}
	srv, err := embedded.Start(embedded.Config{Host: *host, Port: *port, HTTPPort: *monitor, StoreDir: *dir, Users: keys.PublicKeys()})
	if err != nil {
		return err
	}
	defer srv.Close()
	if _, err := fmt.Fprintln(out, srv.ClientURL()); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}
