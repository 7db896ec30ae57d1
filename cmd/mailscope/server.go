package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"

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
	name := fs.String("name", "", `server name, what a stream's cluster leader and replicas are named by (default "mailscope-dev"; required and unique with --cluster-name)`)
	clusterName := fs.String("cluster-name", "", "join a NATS cluster of this name, with clustered JetStream (streams of --replicas 3); needs --name, --cluster and --routes (default none: a server alone)")
	clusterAddr := fs.String("cluster", "", "with --cluster-name: HOST:PORT to listen on for routes from the other nodes; routes are not authenticated, so a private address only")
	routes := fs.String("routes", "", "with --cluster-name: every node's route URL, comma-separated (nats-route://HOST:PORT; the node's own is ignored)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: mailscope server [--data-dir DIR] [--host ADDR] [--port N] [--name N --cluster-name C --cluster HOST:PORT --routes URLS]")
		fmt.Fprintln(fs.Output(), "Runs the embedded nats-server with JetStream alone: file storage in --data-dir, every write")
		fmt.Fprintln(fs.Output(), "fsynced before it is acknowledged (sync_interval: always, as mailscope dev has it), max payload")
		fmt.Fprintln(fs.Output(), "8 MiB, one NKey user per role (package access; seeds in --credentials-dir) and no anonymous clients. Prints its client URL (nats://HOST:PORT) as the first line of standard output once it")
		fmt.Fprintln(fs.Output(), "accepts clients, and runs until SIGTERM or interrupt. With --cluster-name it is one node of a")
		fmt.Fprintln(fs.Output(), "cluster (each node its own --name and --data-dir, the same --credentials-dir seeds, --routes to")
		fmt.Fprintln(fs.Output(), "every node). For development, load tests and the fault suite; production runs a NATS cluster")
		fmt.Fprintln(fs.Output(), "(deploy/k8s).")
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
	cluster, err := clusterConfig(*clusterName, *clusterAddr, *routes, *name)
	if err != nil {
		return err
	}
	if *creds == "" {
		*creds = filepath.Join(*dir, "credentials")
	}
	keys, err := access.OpenKeyring(*creds, append(access.Roles(), access.LoadTest)...)
	if err != nil {
		return err
	}
	srv, err := embedded.Start(embedded.Config{Host: *host, Port: *port, HTTPPort: *monitor, StoreDir: *dir, Users: keys.PublicKeys(),
		ServerName: *name, Cluster: cluster})
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

// clusterConfig turns the cluster flags into the embedded server's
// cluster settings: none without --cluster-name, else a node that needs
// its name, its route address and the routes.
func clusterConfig(name, addr, routes, serverName string) (embedded.Cluster, error) {
	if name == "" {
		if addr != "" || routes != "" {
			return embedded.Cluster{}, usageError{errors.New("--cluster and --routes need --cluster-name")}
		}
		return embedded.Cluster{}, nil
	}
	if serverName == "" || addr == "" || routes == "" {
		return embedded.Cluster{}, usageError{errors.New("--cluster-name needs --name, --cluster and --routes")}
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return embedded.Cluster{}, usageError{fmt.Errorf("--cluster %q: %v", addr, err)}
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p > 65535 {
		return embedded.Cluster{}, usageError{fmt.Errorf("--cluster %q: want HOST:PORT with a port from 1 to 65535", addr)}
	}
	return embedded.Cluster{Name: name, Host: host, Port: p, Routes: splitList(routes)}, nil
}
