package deploy_test

// KEDA scales the workers on what its nats-jetstream scaler reads from
// nats-server's monitoring endpoint (deploy/k8s/base/worker-scaledobject.yaml).
// The tests here read the lag the same way, with our own code, so that what
// the stream and consumer report is what KEDA will scale on.
//
// Written from pkg/scalers/nats_jetstream_scaler.go of
// github.com/kedacore/keda/v2 (v2.20.2; main at 8b4f083 has the same file).
// Function names in the comments are KEDA's.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/systest"
)

// jsz is what the scaler reads of GET /jsz (its jetStreamEndpointResponse):
// the fields that decide the result, and no others.
type jsz struct {
	MetaCluster struct {
		// ClusterSize is absent (0) on a server that is not clustered.
		ClusterSize int `json:"cluster_size"`
	} `json:"meta_cluster"`
	Accounts []struct {
		ID      string `json:"id"`
		Name    string `json:"name"`
		Streams []struct {
			Name      string        `json:"name"`
			Consumers []jszConsumer `json:"consumer_detail"`
		} `json:"stream_detail"`
	} `json:"account_details"`
}

// jszConsumer is one consumer_detail entry.
type jszConsumer struct {
	Name          string `json:"name"`
	NumPending    int64  `json:"num_pending"`
	NumAckPending int64  `json:"num_ack_pending"`
	Cluster       struct {
		Leader string `json:"leader"`
	} `json:"cluster"`
}

// find returns the named consumer of the named stream, in the account whose
// id or name is account (setNATSJetStreamMonitoringData and IsAccount; our
// helpers pass one string as both account and accountID, KEDA's default).
// Streams and consumers match on their name, not on config.durable_name.
func (j *jsz) find(account, stream, consumer string) (jszConsumer, bool) {
	for _, a := range j.Accounts {
		if a.ID != account && a.Name != account {
			continue
		}
		for _, s := range a.Streams {
			if s.Name != stream {
				continue
			}
			for _, c := range s.Consumers {
				if c.Name == consumer {
					return c, true
				}
			}
		}
	}
	return jszConsumer{}, false
}

// varz is what the scaler reads of GET /varz (jetStreamServerEndpointResponse).
type varz struct {
	ServerName string `json:"server_name"`
	// ConnectURLs lists the cluster's client URLs; nats-server fills it
	// only when the cluster advertises (no cluster.no_advertise).
	ConnectURLs []string `json:"connect_urls"`
	Cluster     struct {
		// URLs are the configured routes, as host:port.
		URLs []string `json:"urls"`
	} `json:"cluster"`
}

// kedaJszURL is getNATSJetStreamMonitoringURL: the /jsz URL on the
// trigger's natsServerMonitoringEndpoint (host:port, no scheme), with acc,
// consumers and config in url.Values' sorted, escaped encoding.
func kedaJszURL(useHTTPS bool, endpoint, account string) string {
	u := url.URL{Scheme: "http", Host: endpoint, Path: "/jsz"}
	if useHTTPS {
		u.Scheme = "https"
	}
	u.RawQuery = url.Values{
		"acc":       {account},
		"consumers": {"true"},
		"config":    {"true"},
	}.Encode()
	return u.String()
}

// kedaVarzURL is getNATSJetStreamMonitoringServerURL: /varz on the
// endpoint's host, or on host with the endpoint's port when host is set.
func kedaVarzURL(jszURL, host string) (string, error) {
	u, err := url.Parse(jszURL)
	if err != nil {
		return "", err
	}
	if host != "" {
		u.Host = withPort(host, u.Port())
	}
	return u.Scheme + "://" + u.Host + "/varz", nil
}

// kedaNodeURL is getNATSJetStreamMonitoringNodeURL: the same /jsz request
// on host (from connect_urls) with the endpoint's port.
func kedaNodeURL(jszURL, host string) (string, error) {
	u, err := url.Parse(jszURL)
	if err != nil {
		return "", err
	}
	u.Host = withPort(host, u.Port())
	u.RawQuery = u.Query().Encode()
	return u.String(), nil
}

// kedaNodeURLByNode is getNATSJetStreamMonitoringNodeURLByNode: the same
// /jsz request on <node>.<endpoint>, which names a pod only when the
// endpoint is a headless service (nats-0.nats-headless.ns.svc:8222).
func kedaNodeURLByNode(jszURL, node string) (string, error) {
	u, err := url.Parse(jszURL)
	if err != nil {
		return "", err
	}
	u.Host = node + "." + u.Host
	u.RawQuery = u.Query().Encode()
	return u.String(), nil
}

func withPort(host, port string) string {
	if port == "" {
		return host
	}
	return net.JoinHostPort(host, port)
}

// kedaNode is one candidate of the scaler's search for the consumer leader.
type kedaNode struct {
	// Name is the node's server name; "" until read from VarzURL.
	Name    string
	VarzURL string
	JszURL  string
}

// kedaNodes lists the candidates as getNATSJetstreamMonitoringData does
// from the endpoint's /varz. With connect_urls: each URL's host (the text
// before the first ':'), named by its own /varz server_name, at the
// endpoint's port. Without (cluster no_advertise, as the official NATS
// chart sets it): each route of cluster.urls, named by the text before its
// first '.', at <name>.<endpoint>.
func kedaNodes(jszURL string, v varz) ([]kedaNode, error) {
	var nodes []kedaNode
	if len(v.ConnectURLs) > 0 {
		for _, cu := range v.ConnectURLs {
			host, _, _ := strings.Cut(cu, ":")
			varzURL, err := kedaVarzURL(jszURL, host)
			if err != nil {
				return nil, err
			}
			nodeURL, err := kedaNodeURL(jszURL, host)
			if err != nil {
				return nil, err
			}
			nodes = append(nodes, kedaNode{VarzURL: varzURL, JszURL: nodeURL})
		}
		return nodes, nil
	}
	for _, route := range v.Cluster.URLs {
		name, _, _ := strings.Cut(route, ".")
		nodeURL, err := kedaNodeURLByNode(jszURL, name)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, kedaNode{Name: name, JszURL: nodeURL})
	}
	return nodes, nil
}

// kedaScaler reads as one nats-jetstream trigger does.
type kedaScaler struct {
	client                    *http.Client
	jszURL                    string
	account, stream, consumer string
}

func newKEDAScaler(endpoint, account, stream, consumer string) kedaScaler {
	return kedaScaler{
		client:   &http.Client{Timeout: 10 * time.Second},
		jszURL:   kedaJszURL(false, endpoint, account),
		account:  account,
		stream:   stream,
		consumer: consumer,
	}
}

// kedaReading is the consumer detail the lag is taken from, and the /jsz
// URL that gave it.
type kedaReading struct {
	Consumer jszConsumer
	From     string
}

// Lag is getMaxMsgLag: num_pending + num_ack_pending.
func (r kedaReading) Lag() int64 { return r.Consumer.NumPending + r.Consumer.NumAckPending }

// kedaActive is the activity GetMetricsAndActivity reports: strictly above
// activationLagThreshold (default 0).
func kedaActive(lag, activationLagThreshold int64) bool { return lag > activationLagThreshold }

// poll is what GetMetricsAndActivity → getNATSJetstreamMonitoringData does
// on a scaler that has nothing cached yet: GET /jsz at the endpoint; when
// meta_cluster.cluster_size > 1, GET /varz there and walk the nodes for the
// consumer leader. Not reproduced: the leader URL KEDA caches between polls
// (it re-queries it first, and walks again when the leader name changes or
// the consumer is gone), and the status code, which KEDA does not check.
func (s kedaScaler) poll(ctx context.Context) (kedaReading, error) {
	first, err := s.getJsz(ctx, s.jszURL)
	if err != nil {
		return kedaReading{}, err
	}
	if first.MetaCluster.ClusterSize <= 1 {
		c, ok := first.find(s.account, s.stream, s.consumer)
		if !ok {
			return kedaReading{}, fmt.Errorf("consumer %q not found in stream %q of account %q at %s", s.consumer, s.stream, s.account, s.jszURL)
		}
		return kedaReading{Consumer: c, From: s.jszURL}, nil
	}
	varzURL, err := kedaVarzURL(s.jszURL, "")
	if err != nil {
		return kedaReading{}, err
	}
	v, err := s.getVarz(ctx, varzURL)
	if err != nil {
		return kedaReading{}, err
	}
	nodes, err := kedaNodes(s.jszURL, *v)
	if err != nil {
		return kedaReading{}, err
	}
	return s.leader(ctx, nodes)
}

// leader walks nodes in order, as the loop of getNATSJetstreamMonitoringData
// does: the first node whose /jsz holds the consumer with cluster.leader
// equal to the node's name gives the reading; any failed request ends the
// walk.
func (s kedaScaler) leader(ctx context.Context, nodes []kedaNode) (kedaReading, error) {
	for _, n := range nodes {
		name := n.Name
		if name == "" {
			v, err := s.getVarz(ctx, n.VarzURL)
			if err != nil {
				return kedaReading{}, err
			}
			name = v.ServerName
		}
		j, err := s.getJsz(ctx, n.JszURL)
		if err != nil {
			return kedaReading{}, err
		}
		if c, ok := j.find(s.account, s.stream, s.consumer); ok && c.Cluster.Leader == name {
			return kedaReading{Consumer: c, From: n.JszURL}, nil
		}
	}
	return kedaReading{}, fmt.Errorf("leader node not found for consumer %s", s.consumer)
}

func (s kedaScaler) getJsz(ctx context.Context, u string) (*jsz, error) {
	var j jsz
	return &j, s.get(ctx, u, &j)
}

func (s kedaScaler) getVarz(ctx context.Context, u string) (*varz, error) {
	var v varz
	return &v, s.get(ctx, u, &v)
}

func (s kedaScaler) get(ctx context.Context, u string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("GET %s: %s: %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}

// kedaRead reads the consumer as one poll of KEDA's nats-jetstream scaler
// (GetMetricsAndActivity) does, from natsServerMonitoringEndpoint endpoint
// (host:port) with useHttps false; see kedaScaler.poll.
func kedaRead(t testing.TB, endpoint, account, stream, consumer string) (kedaReading, error) {
	t.Helper()
	return newKEDAScaler(endpoint, account, stream, consumer).poll(t.Context())
}

// kedaLag is the lag KEDA's nats-jetstream scaler scales on: getMaxMsgLag
// (num_pending + num_ack_pending) of the consumer detail that
// getNATSJetstreamMonitoringData selects (the endpoint's on a single
// server, the consumer leader's in a cluster).
func kedaLag(t testing.TB, endpoint, account, stream, consumer string) (int64, error) {
	t.Helper()
	r, err := kedaRead(t, endpoint, account, stream, consumer)
	if err != nil {
		return 0, err
	}
	return r.Lag(), nil
}

func TestKEDAURLs(t *testing.T) {
	const acc = "acc=%24G&config=true&consumers=true"
	for _, tc := range []struct{ got, want string }{
		{kedaJszURL(false, "nats.nats:8222", "$G"), "http://nats.nats:8222/jsz?" + acc},
		{kedaJszURL(true, "nats.nats:8222", "$G"), "https://nats.nats:8222/jsz?" + acc},
		{kedaJszURL(false, "nats:8222", "a&consumers=false"), "http://nats:8222/jsz?acc=a%26consumers%3Dfalse&config=true&consumers=true"},
		{must(kedaVarzURL("http://nats:8222/jsz?"+acc, "")), "http://nats:8222/varz"},
		{must(kedaVarzURL("http://nats:8222/jsz?"+acc, "10.1.2.3")), "http://10.1.2.3:8222/varz"},
		{must(kedaVarzURL("http://nats/jsz?"+acc, "10.1.2.3")), "http://10.1.2.3/varz"},
		{must(kedaNodeURL("https://nats:8222/jsz?"+acc, "10.1.2.3")), "https://10.1.2.3:8222/jsz?" + acc},
		{must(kedaNodeURLByNode("http://nats-headless.ns.svc:8222/jsz?"+acc, "nats-1")), "http://nats-1.nats-headless.ns.svc:8222/jsz?" + acc},
	} {
		if tc.got != tc.want {
			t.Errorf("got %s, want %s", tc.got, tc.want)
		}
	}
}

// TestKEDANodesNoAdvertise pins the shape the official NATS chart gives
// (cluster no_advertise: true, routes nats://nats-<i>.nats-headless:6222,
// server_name the pod name): KEDA asks <pod>.<endpoint>, which resolves in
// Kubernetes only when the endpoint is the headless service, as in KEDA's own
// e2e test for that chart (nats-headless.<ns>.svc.cluster.local:8222).
func TestKEDANodesNoAdvertise(t *testing.T) {
	var v varz
	v.Cluster.URLs = []string{"nats-0.nats-headless:6222", "nats-1.nats-headless:6222", "nats-2.nats-headless:6222"}
	for _, tc := range []struct{ endpoint, host string }{
		{"nats-headless.mailscope.svc.cluster.local:8222", "nats-%d.nats-headless.mailscope.svc.cluster.local:8222"},
		// A ClusterIP service gives no pod names: nothing answers here.
		{"nats.mailscope.svc.cluster.local:8222", "nats-%d.nats.mailscope.svc.cluster.local:8222"},
	} {
		nodes, err := kedaNodes(kedaJszURL(false, tc.endpoint, "MAILSCOPE"), v)
		if err != nil {
			t.Fatal(err)
		}
		var want []kedaNode
		for i := range 3 {
			want = append(want, kedaNode{
				Name:   "nats-" + strconv.Itoa(i),
				JszURL: "http://" + fmt.Sprintf(tc.host, i) + "/jsz?acc=MAILSCOPE&config=true&consumers=true",
			})
		}
		if !slices.Equal(nodes, want) {
			t.Errorf("endpoint %s: nodes %+v, want %+v", tc.endpoint, nodes, want)
		}
	}
}

func TestKEDANodesAdvertised(t *testing.T) {
	var v varz
	v.ConnectURLs = []string{"10.0.0.7:4222", "nats-1.nats-headless.ns.svc:4222"}
	v.Cluster.URLs = []string{"ignored:6222"}
	nodes, err := kedaNodes(kedaJszURL(false, "nats.ns.svc:8222", "$G"), v)
	if err != nil {
		t.Fatal(err)
	}
	const q = "/jsz?acc=%24G&config=true&consumers=true"
	want := []kedaNode{
		{VarzURL: "http://10.0.0.7:8222/varz", JszURL: "http://10.0.0.7:8222" + q},
		{VarzURL: "http://nats-1.nats-headless.ns.svc:8222/varz", JszURL: "http://nats-1.nats-headless.ns.svc:8222" + q},
	}
	if !slices.Equal(nodes, want) {
		t.Errorf("nodes %+v, want %+v", nodes, want)
	}
}

func must(s string, err error) string {
	if err != nil {
		panic(err)
	}
	return s
}

func TestKEDALagReadsPendingAndAckPending(t *testing.T) {
	env := systest.Start(t)
	js := env.Admin(t)
	cons := createMail(t, js, "MAIL", "mail.incoming", 1, nil)
	endpoint := strings.TrimPrefix(env.Server.MonitorURL(), "http://")
	const account, n, k = access.Account, 10, 4

	waitReading(t, endpoint, account, 0, 0)
	if lag := mustLag(t, endpoint, account); kedaActive(lag, 0) {
		t.Errorf("lag %d is active at activationLagThreshold 0", lag)
	}

	publish(t, js, "mail.incoming", n)
	waitReading(t, endpoint, account, n, 0)
	if lag := mustLag(t, endpoint, account); !kedaActive(lag, 0) || kedaActive(lag, n) {
		t.Errorf("lag %d: active at 0 %v, at %d %v", lag, kedaActive(lag, 0), n, kedaActive(lag, n))
	}

	// Fetched, not acked: still lag, now as num_ack_pending.
	msgs := fetch(t, cons, k)
	waitReading(t, endpoint, account, n-k, k)
	if lag := mustLag(t, endpoint, account); lag != n {
		t.Errorf("after fetching %d without ack: lag %d, want %d", k, lag, n)
	}

	ack(t, msgs)
	waitReading(t, endpoint, account, n-k, 0)
	if lag := mustLag(t, endpoint, account); lag != n-k {
		t.Errorf("after acking %d: lag %d, want %d", k, lag, n-k)
	}

	ack(t, fetch(t, cons, n-k))
	waitReading(t, endpoint, account, 0, 0)
	if lag := mustLag(t, endpoint, account); lag != 0 {
		t.Errorf("drained: lag %d, want 0", lag)
	}

	if _, err := kedaLag(t, endpoint, account, "MAIL", "nobody"); err == nil {
		t.Error("a missing consumer gave a lag")
	}
	// The roles' users live in access.Account: a trigger still on the
	// default account ("$G") finds no consumer.
	if _, err := kedaLag(t, endpoint, "$G", "MAIL", "workers"); err == nil {
		t.Error(`account "$G" gave a lag`)
	}
}

// TestKEDALagClusterAdvertised runs the scaler's cluster path end to end:
// three nodes on 127.0.0.1-3 with the same ports, like pods, so that the
// connect_urls hosts KEDA turns into http://<host>:<endpoint port> reach
// each node. The lag must come from the consumer leader, also after the
// leader steps down, and for a one-replica stream placed away from the
// endpoint's node.
func TestKEDALagClusterAdvertised(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, false)
	endpoint := nodes[0].MonitorAddr().String()
	js := connect(t, nodes[0].ClientURL())

	systest.WaitFor(t, "connect_urls to list the three nodes", func() bool {
		return len(getVarz(t, "http://"+endpoint+"/varz").ConnectURLs) == 3
	})

	const account, n = "$G", 7
	cons := createMail(t, js, "MAIL", "mail.incoming", 3, nil)
	publish(t, js, "mail.incoming", n)
	msgs := fetch(t, cons, 2)
	r := waitReading(t, endpoint, account, n-2, 2)
	assertFromLeader(t, js, "MAIL", r, nodes)

	old := r.Consumer.Cluster.Leader
	stepDown(t, js, "MAIL", "workers")
	systest.WaitFor(t, "a new consumer leader", func() bool {
		l := consumerLeader(t, js, "MAIL")
		return l != "" && l != old
	})
	// What the old leader had delivered stays pending on the new one.
	r = waitReading(t, endpoint, account, n-2, 2)
	assertFromLeader(t, js, "MAIL", r, nodes)
	ack(t, msgs)
	r = waitReading(t, endpoint, account, n-2, 0)
	assertFromLeader(t, js, "MAIL", r, nodes)

	// One replica, on n3: the endpoint's node (n1) holds no stream_detail.
	cons1 := createMail(t, js, "MAIL1", "mail.r1", 1, []string{"node:n3"})
	publish(t, js, "mail.r1", 3)
	r = waitReadingOf(t, endpoint, account, "MAIL1", 3, 0)
	if want := "http://" + nodes[2].MonitorAddr().String() + "/jsz"; !strings.HasPrefix(r.From, want) {
		t.Errorf("R1 lag read from %s, want %s", r.From, want)
	}
	ack(t, fetch(t, cons1, 3))
	waitReadingOf(t, endpoint, account, "MAIL1", 0, 0)
}

// TestKEDALagClusterNoAdvertise covers the path the official NATS chart
// (cluster no_advertise) sends KEDA down. nats-server then leaves /varz
// connect_urls empty and KEDA builds <route's first label>.<endpoint> from
// cluster.urls: a pod name under the headless service in Kubernetes, but
// "127" for the loopback routes here, which nothing can reproduce without
// DNS. So the test checks that fallback's inputs and URLs, then walks each
// node's own /jsz (named by its server_name) the way KEDA walks the
// <pod>.<endpoint> ones.
func TestKEDALagClusterNoAdvertise(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, true)
	endpoint := nodes[0].MonitorAddr().String()
	js := connect(t, nodes[0].ClientURL())

	v := getVarz(t, "http://"+endpoint+"/varz")
	if len(v.ConnectURLs) != 0 {
		t.Errorf("no_advertise: /varz connect_urls %v, want none", v.ConnectURLs)
	}
	if len(v.Cluster.URLs) != 3 {
		t.Fatalf("/varz cluster.urls %v, want the 3 routes", v.Cluster.URLs)
	}
	s := newKEDAScaler(endpoint, "$G", "MAIL", "workers")
	byName, err := kedaNodes(s.jszURL, *v)
	if err != nil {
		t.Fatal(err)
	}
	for _, kn := range byName {
		if kn.Name != "127" || !strings.HasPrefix(kn.JszURL, "http://127."+endpoint+"/jsz?") {
			t.Errorf("candidate %+v, want 127 at <127>.%s", kn, endpoint)
		}
	}

	const n = 5
	cons := createMail(t, js, "MAIL", "mail.incoming", 3, nil)
	publish(t, js, "mail.incoming", n)
	msgs := fetch(t, cons, 1)
	direct := make([]kedaNode, len(nodes))
	for i, srv := range nodes {
		direct[i] = kedaNode{Name: srv.Name(), JszURL: kedaJszURL(false, srv.MonitorAddr().String(), "$G")}
	}
	var r kedaReading
	systest.WaitFor(t, "the leader's reading", func() bool {
		r, err = s.leader(t.Context(), direct)
		return err == nil && r.Consumer.NumPending == n-1 && r.Consumer.NumAckPending == 1
	})
	assertFromLeader(t, js, "MAIL", r, nodes)
	ack(t, msgs)
	systest.WaitFor(t, "the leader's reading after the ack", func() bool {
		r, err = s.leader(t.Context(), direct)
		return err == nil && r.Consumer.NumPending == n-1 && r.Consumer.NumAckPending == 0
	})
}

// startCluster starts n1, n2, n3 on 127.0.0.1, .2, .3 with one route port
// and one monitoring port for all, routes to all three (itself included, as
// the NATS chart configures them), and waits for a JetStream meta leader.
func startCluster(t *testing.T, noAdvertise bool) []*server.Server {
	t.Helper()
	ips := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3"}
	routePort, httpPort := freePort(t, ips), freePort(t, ips)
	var routes []string
	for _, ip := range ips {
		routes = append(routes, "nats://"+net.JoinHostPort(ip, strconv.Itoa(routePort)))
	}
	var nodes []*server.Server
	for i, ip := range ips {
		name := "n" + strconv.Itoa(i+1)
		s, err := server.NewServer(&server.Options{
			ServerName: name,
			Host:       ip,
			Port:       -1,
			HTTPHost:   ip,
			HTTPPort:   httpPort,
			JetStream:  true,
			StoreDir:   t.TempDir(),
			Tags:       []string{"node:" + name},
			Cluster: server.ClusterOpts{
				Name:        "mailscope",
				Host:        ip,
				Port:        routePort,
				NoAdvertise: noAdvertise,
			},
			Routes: server.RoutesFromStr(strings.Join(routes, ",")),
			NoSigs: true,
			NoLog:  true,
		})
		if err != nil {
			t.Fatal(err)
		}
		go s.Start()
		t.Cleanup(func() {
			s.Shutdown()
			s.WaitForShutdown()
		})
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatalf("%s not ready", name)
		}
		nodes = append(nodes, s)
	}
	systest.WaitFor(t, "a JetStream meta leader with three peers", func() bool {
		leaders := 0
		for _, s := range nodes {
			if !s.JetStreamIsCurrent() {
				return false
			}
			// Only the leader answers with the peers.
			if s.JetStreamIsLeader() {
				if len(s.JetStreamClusterPeers()) != 3 {
					return false
				}
				leaders++
			}
		}
		return leaders == 1
	})
	return nodes
}

// freePort returns a TCP port free on every ip at the time of the call.
func freePort(t *testing.T, ips []string) int {
	t.Helper()
	for range 20 {
		l, err := net.Listen("tcp", net.JoinHostPort(ips[0], "0"))
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		ls := []net.Listener{l}
		for _, ip := range ips[1:] {
			if o, err := net.Listen("tcp", net.JoinHostPort(ip, strconv.Itoa(port))); err == nil {
				ls = append(ls, o)
			}
		}
		for _, l := range ls {
			l.Close()
		}
		if len(ls) == len(ips) {
			return port
		}
	}
	t.Fatalf("no port free on all of %v", ips)
	return 0
}

func connect(t *testing.T, clientURL string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(clientURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// createMail creates a work-queue stream on subject and its durable pull
// consumer "workers", retrying while a new cluster cannot place them yet.
// The ack wait outlasts the test, so nothing fetched is redelivered.
func createMail(t *testing.T, js jetstream.JetStream, stream, subject string, replicas int, tags []string) jetstream.Consumer {
	t.Helper()
	cfg := jetstream.StreamConfig{
		Name:      stream,
		Subjects:  []string{subject},
		Retention: jetstream.WorkQueuePolicy,
		Replicas:  replicas,
	}
	if tags != nil {
		cfg.Placement = &jetstream.Placement{Tags: tags}
	}
	var lastErr error
	systest.WaitFor(t, "stream "+stream, func() bool {
		_, lastErr = js.CreateOrUpdateStream(t.Context(), cfg)
		return lastErr == nil
	})
	cons, err := js.CreateOrUpdateConsumer(t.Context(), stream, jetstream.ConsumerConfig{
		Durable:   "workers",
		AckPolicy: jetstream.AckExplicitPolicy,
		AckWait:   time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	if replicas > 1 {
		systest.WaitFor(t, "a consumer leader", func() bool { return consumerLeader(t, js, stream) != "" })
	}
	return cons
}

func publish(t *testing.T, js jetstream.JetStream, subject string, n int) {
	t.Helper()
	for i := range n {
		if _, err := js.Publish(t.Context(), subject, []byte("mail "+strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
}

// fetch takes exactly k messages without acking them.
func fetch(t *testing.T, cons jetstream.Consumer, k int) []jetstream.Msg {
	t.Helper()
	var msgs []jetstream.Msg
	for len(msgs) < k {
		batch, err := cons.Fetch(k-len(msgs), jetstream.FetchMaxWait(systest.Wait))
		if err != nil {
			t.Fatal(err)
		}
		for m := range batch.Messages() {
			msgs = append(msgs, m)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			t.Fatal(err)
		}
	}
	return msgs
}

func ack(t *testing.T, msgs []jetstream.Msg) {
	t.Helper()
	for _, m := range msgs {
		if err := m.DoubleAck(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
}

func consumerLeader(t *testing.T, js jetstream.JetStream, stream string) string {
	t.Helper()
	cons, err := js.Consumer(t.Context(), stream, "workers")
	if err != nil {
		return ""
	}
	ci, err := cons.Info(t.Context())
	if err != nil || ci.Cluster == nil {
		return ""
	}
	return ci.Cluster.Leader
}

// stepDown asks the consumer's leader to step down (jetstream has no call
// for it; this is the API subject `nats consumer cluster step-down` uses).
func stepDown(t *testing.T, js jetstream.JetStream, stream, consumer string) {
	t.Helper()
	resp, err := js.Conn().RequestWithContext(t.Context(), "$JS.API.CONSUMER.LEADER.STEPDOWN."+stream+"."+consumer, nil)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		Success bool `json:"success"`
		Error   *struct {
			Description string `json:"description"`
		} `json:"error"`
	}
	if err := json.Unmarshal(resp.Data, &r); err != nil {
		t.Fatal(err)
	}
	if !r.Success {
		t.Fatalf("step-down: %+v", r.Error)
	}
}

// assertFromLeader checks that r came from the node that leads the consumer.
func assertFromLeader(t *testing.T, js jetstream.JetStream, stream string, r kedaReading, nodes []*server.Server) {
	t.Helper()
	leader := consumerLeader(t, js, stream)
	for _, s := range nodes {
		if s.Name() == leader {
			if want := "http://" + s.MonitorAddr().String() + "/jsz"; !strings.HasPrefix(r.From, want) {
				t.Errorf("read from %s; the leader %s is at %s", r.From, leader, want)
			}
			return
		}
	}
	t.Errorf("consumer leader %q is none of the nodes", leader)
}

func waitReading(t *testing.T, endpoint, account string, pending, ackPending int64) kedaReading {
	t.Helper()
	return waitReadingOf(t, endpoint, account, "MAIL", pending, ackPending)
}

// waitReadingOf polls as KEDA would until the consumer "workers" of stream
// reports pending and ackPending, and returns that reading.
func waitReadingOf(t *testing.T, endpoint, account, stream string, pending, ackPending int64) kedaReading {
	t.Helper()
	var r kedaReading
	var lastErr error
	systest.WaitFor(t, fmt.Sprintf("%s num_pending %d, num_ack_pending %d", stream, pending, ackPending), func() bool {
		var err error
		r, err = kedaRead(t, endpoint, account, stream, "workers")
		if err != nil {
			if lastErr == nil || err.Error() != lastErr.Error() {
				t.Logf("reading the lag: %v", err)
			}
			lastErr = err
			return false
		}
		return r.Consumer.NumPending == pending && r.Consumer.NumAckPending == ackPending
	})
	return r
}

func mustLag(t *testing.T, endpoint, account string) int64 {
	t.Helper()
	lag, err := kedaLag(t, endpoint, account, "MAIL", "workers")
	if err != nil {
		t.Fatal(err)
	}
	return lag
}

func getVarz(t *testing.T, u string) *varz {
	t.Helper()
	v, err := newKEDAScaler("", "", "", "").getVarz(t.Context(), u)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
