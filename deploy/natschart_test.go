package deploy_test

// The NATS Helm chart's values in deploy/k8s/nats, turned into the
// nats-server configuration the chart would put in its ConfigMap, parsed
// and run by nats-server itself.
//
// What is emulated, from helm/charts/nats of github.com/nats-io/k8s
// (chart 2.14.2; the templates below are unchanged since 1.3.16 but for
// cluster.noAdvertise becoming a value):
//   - values: the chart's defaults that the emulation reads (chartDefaults),
//     then each `helm -f` file deep-merged over them, a null deleting a key;
//   - files/config/config.yaml: server_name "<< $SERVER_NAME >>", the lame
//     duck settings, pid_file, port, http_port when config.monitor is
//     enabled, the jetstream block (files/config/jetstream.yaml: store_dir,
//     max_file_store from fileStore.maxSize or the PVC's size,
//     max_memory_store 0 without a memory store) and the cluster block
//     (files/config/cluster.yaml: name, port, no_advertise, one route per
//     replica to <statefulset>-<i>.<headless service>);
//   - nats.loadMergePatch: each block's `merge` merged over it as sprig's
//     mergeOverwrite does (maps deeply; an empty value overwrites nothing);
//   - nats.formatConfig: the document as indented JSON without HTML escapes
//     (toPrettyRawJson), then every string "<< X >>" replaced by X unquoted.
//
// The values are decoded strictly into natsValues: a value the emulation
// does not know (a `patch`, TLS, a misspelt key the chart would ignore)
// fails the test rather than being silently left out.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nkeys"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"sigs.k8s.io/yaml"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/provision"
)

// release is the Helm release of NATS (`helm install nats ...`); the
// chart names its objects after it.
const release = "nats"

// chartDefaults are the chart's default values (values.yaml, 2.14.2) that
// the emulation reads.
const chartDefaults = `
config:
  cluster: {enabled: false, port: 6222, replicas: 3, noAdvertise: true}
  jetstream:
    enabled: false
    fileStore:
      enabled: true
      dir: /data
      pvc: {enabled: true, size: 10Gi}
    memoryStore: {enabled: false, maxSize: 1Gi}
  nats: {port: 4222}
  monitor: {enabled: true, port: 8222}
  serverNamePrefix: ""
natsBox: {enabled: true}
`

// natsValues are the chart values the emulation knows.
type natsValues struct {
	Config struct {
		Cluster struct {
			Enabled     bool           `json:"enabled"`
			Port        int            `json:"port"`
			Replicas    int            `json:"replicas"`
			NoAdvertise bool           `json:"noAdvertise"`
			Merge       map[string]any `json:"merge"`
		} `json:"cluster"`
		JetStream struct {
			Enabled   bool `json:"enabled"`
			FileStore struct {
				Enabled bool   `json:"enabled"`
				Dir     string `json:"dir"`
				MaxSize string `json:"maxSize"`
				PVC     struct {
					Enabled          bool   `json:"enabled"`
					Size             string `json:"size"`
					StorageClassName string `json:"storageClassName"`
				} `json:"pvc"`
			} `json:"fileStore"`
			MemoryStore struct {
				Enabled bool   `json:"enabled"`
				MaxSize string `json:"maxSize"`
			} `json:"memoryStore"`
			Merge map[string]any `json:"merge"`
		} `json:"jetstream"`
		Nats struct {
			Port int `json:"port"`
		} `json:"nats"`
		Monitor struct {
			Enabled bool `json:"enabled"`
			Port    int  `json:"port"`
		} `json:"monitor"`
		ServerNamePrefix string         `json:"serverNamePrefix"`
		Merge            map[string]any `json:"merge"`
	} `json:"config"`
	Container struct {
		// Env is the chart's env map: a string is a value, a map the rest
		// of an EnvVar.
		Env       map[string]json.RawMessage  `json:"env"`
		Resources corev1.ResourceRequirements `json:"resources"`
	} `json:"container"`
	PodTemplate struct {
		TopologySpreadConstraints map[string]corev1.TopologySpreadConstraint `json:"topologySpreadConstraints"`
	} `json:"podTemplate"`
	NatsBox struct {
		Enabled bool `json:"enabled"`
	} `json:"natsBox"`
	// PromExporter is the chart's prometheus-nats-exporter sidecar.
	PromExporter struct {
		Enabled    bool `json:"enabled"`
		Port       int  `json:"port"`
		PodMonitor struct {
			Enabled bool `json:"enabled"`
		} `json:"podMonitor"`
	} `json:"promExporter"`

	// raw is the merged values, as Helm holds them.
	raw map[string]any
}

// loadNATSValues merges the chart's defaults and files as `helm -f f1 -f
// f2` does, and decodes the result strictly.
func loadNATSValues(t *testing.T, files ...string) *natsValues {
	t.Helper()
	var raw map[string]any
	if err := yaml.Unmarshal([]byte(chartDefaults), &raw); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(data, &m); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		coalesce(raw, m)
	}
	v, err := decodeNATSValues(raw)
	if err != nil {
		t.Fatalf("%s: %v", strings.Join(files, " + "), err)
	}
	return v
}

func decodeNATSValues(raw map[string]any) (*natsValues, error) {
	data, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	v := &natsValues{raw: raw}
	if err := decodeStrict(data, v); err != nil {
		return nil, fmt.Errorf("values the chart emulation does not know: %w", err)
	}
	for _, m := range []map[string]any{v.Config.Merge, v.Config.JetStream.Merge, v.Config.Cluster.Merge} {
		if k := specialKey(m); k != "" {
			return nil, fmt.Errorf("merge key %q: not emulated", k)
		}
	}
	return v, nil
}

// specialKey returns a key of m, at any depth, that the chart treats
// specially ($include, $tplYaml) and the emulation does not.
func specialKey(m map[string]any) string {
	for k, v := range m {
		if strings.Contains(k, "$include") || strings.HasPrefix(k, "$tplYaml") {
			return k
		}
		if sub, ok := v.(map[string]any); ok {
			if k := specialKey(sub); k != "" {
				return k
			}
		}
	}
	return ""
}

// coalesce merges src into dst as Helm merges values files: maps deeply,
// anything else replaced, a null deleting the key.
func coalesce(dst, src map[string]any) {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
			continue
		}
		sm, sok := v.(map[string]any)
		dm, dok := dst[k].(map[string]any)
		if sok && dok {
			coalesce(dm, sm)
			continue
		}
		dst[k] = deepCopy(v)
	}
}

// mergeOverwrite merges src into dst as sprig's mergeOverwrite (mergo with
// override): maps deeply, other values replaced, except by an empty one.
func mergeOverwrite(dst, src map[string]any) {
	for k, v := range src {
		sm, sok := v.(map[string]any)
		dm, dok := dst[k].(map[string]any)
		switch {
		case sok && dok:
			mergeOverwrite(dm, sm)
		case isEmpty(v):
		default:
			dst[k] = deepCopy(v)
		}
	}
}

func isEmpty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case bool:
		return !v
	case string:
		return v == ""
	case float64:
		return v == 0
	case []any:
		return len(v) == 0
	case map[string]any:
		return len(v) == 0
	}
	return false
}

func deepCopy(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}

// fullName is the chart's nats.fullname for the release (no overrides).
func (v *natsValues) fullName() string {
	if strings.Contains(release, "nats") {
		return release
	}
	return release + "-nats"
}

// serviceName is the client Service; headlessName the headless one, by
// which pods (nats-0.nats-headless) and KEDA find the nodes.
func (v *natsValues) serviceName() string  { return v.fullName() }
func (v *natsValues) headlessName() string { return v.fullName() + "-headless" }

// podLabels are the labels of the NATS pods (nats.selectorLabels).
func (v *natsValues) podLabels() map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":      "nats",
		"app.kubernetes.io/instance":  release,
		"app.kubernetes.io/component": "nats",
	}
}

// nodes is the StatefulSet's replicas.
func (v *natsValues) nodes() int {
	if v.Config.Cluster.Enabled {
		return v.Config.Cluster.Replicas
	}
	return 1
}

// fileStoreSize is max_file_store as the chart writes it ("" for none).
func (v *natsValues) fileStoreSize() string {
	fs := v.Config.JetStream.FileStore
	switch {
	case fs.MaxSize != "":
		return fs.MaxSize
	case fs.PVC.Enabled:
		return fs.PVC.Size
	}
	return ""
}

func (v *natsValues) fileStoreBytes(t *testing.T) int64 {
	t.Helper()
	q, err := resource.ParseQuantity(v.fileStoreSize())
	if err != nil {
		t.Fatalf("file store size %q: %v", v.fileStoreSize(), err)
	}
	return q.Value()
}

// config is the configuration document the chart renders, before
// formatting.
func (v *natsValues) config() map[string]any {
	c := v.Config
	doc := map[string]any{
		"server_name":            "<< $SERVER_NAME >>",
		"lame_duck_grace_period": "10s",
		"lame_duck_duration":     "30s",
		"pid_file":               "/var/run/nats/nats.pid",
		"port":                   c.Nats.Port,
	}
	if c.Monitor.Enabled {
		doc["http_port"] = c.Monitor.Port
	}
	if c.Cluster.Enabled {
		var routes []any
		for i := range c.Cluster.Replicas {
			routes = append(routes, fmt.Sprintf("nats://%s-%d.%s:%d", v.fullName(), i, v.headlessName(), c.Cluster.Port))
		}
		cl := map[string]any{"name": v.fullName(), "port": c.Cluster.Port, "no_advertise": c.Cluster.NoAdvertise, "routes": routes}
		mergeOverwrite(cl, c.Cluster.Merge)
		doc["cluster"] = cl
	}
	if js := c.JetStream; js.Enabled {
		b := map[string]any{}
		if js.MemoryStore.Enabled {
			if js.MemoryStore.MaxSize != "" {
				b["max_memory_store"] = "<< " + js.MemoryStore.MaxSize + " >>"
			}
		} else {
			b["max_memory_store"] = 0
		}
		if js.FileStore.Enabled {
			b["store_dir"] = js.FileStore.Dir
			if s := v.fileStoreSize(); s != "" {
				b["max_file_store"] = "<< " + s + " >>"
			}
		} else {
			b["max_file_store"] = 0
		}
		mergeOverwrite(b, js.Merge)
		doc["jetstream"] = b
	}
	mergeOverwrite(doc, c.Merge)
	return doc
}

var unquote = regexp.MustCompile(`"<<\s+(.*?)\s+>>"`)

// natsConf is nats.conf as the chart's ConfigMap holds it.
func (v *natsValues) natsConf(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v.config()); err != nil {
		t.Fatal(err)
	}
	return unquote.ReplaceAll(b.Bytes(), []byte("$1"))
}

// serverEnv sets the environment the chart gives the nats container:
// SERVER_NAME (its prefix and the pod's name), and each role's public key
// as the Secret's `public` would; it returns the keyring.
func serverEnv(t *testing.T, v *natsValues) *access.Keyring {
	t.Helper()
	k, err := access.OpenKeyring(filepath.Join(t.TempDir(), "keys"), access.Roles()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SERVER_NAME", v.Config.ServerNamePrefix+v.fullName()+"-0")
	for _, r := range access.Roles() {
		t.Setenv(r.EnvVar(), k.PublicKey(r))
	}
	return k
}

// parseConf writes conf to a file and parses it as nats-server does.
func parseConf(t *testing.T, conf []byte) (*server.Options, string, error) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "nats.conf")
	if err := os.WriteFile(path, conf, 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(path)
	return opts, path, err
}

// chartConfig renders and parses the configuration of an overlay's values.
func chartConfig(t *testing.T, o overlay) (*natsValues, *server.Options, *access.Keyring) {
	t.Helper()
	v := loadNATSValues(t, o.values...)
	k := serverEnv(t, v)
	conf := v.natsConf(t)
	opts, _, err := parseConf(t, conf)
	if err != nil {
		t.Fatalf("nats-server refuses the chart's configuration: %v\n%s", err, conf)
	}
	return v, opts, k
}

func TestNATSChartConfig(t *testing.T) {
	names := contracts.DefaultNames()
	for _, o := range overlays {
		t.Run(o.name, func(t *testing.T) {
			v, opts, k := chartConfig(t, o)
			if !opts.JetStream || opts.StoreDir != v.Config.JetStream.FileStore.Dir {
				t.Errorf("JetStream %v in %q", opts.JetStream, opts.StoreDir)
			}
			if !opts.SyncAlways {
				t.Errorf("sync interval %v: want always (fsync before every acknowledgement)", opts.SyncInterval)
			}
			if opts.MaxPayload != 8<<20 {
				t.Errorf("max_payload %d, want %d", opts.MaxPayload, 8<<20)
			}
			if want := v.fileStoreBytes(t); opts.JetStreamMaxStore != want {
				t.Errorf("max_file_store %d, want %d", opts.JetStreamMaxStore, want)
			}
			if opts.Port != v.Config.Nats.Port || opts.HTTPPort != v.Config.Monitor.Port || opts.HTTPPort == 0 {
				t.Errorf("ports %d, monitoring %d", opts.Port, opts.HTTPPort)
			}
			if opts.ServerName != v.fullName()+"-0" {
				t.Errorf("server_name %q", opts.ServerName)
			}
			if opts.NoAuthUser != "" || len(opts.Users) > 0 {
				t.Errorf("no_auth_user %q, users %d: only NKey users", opts.NoAuthUser, len(opts.Users))
			}
			switch o.name {
			case "dev":
				if v.nodes() != 1 || opts.Cluster.Port != 0 || len(opts.Routes) != 0 {
					t.Errorf("dev: %d nodes, cluster port %d, %d routes: want one node", v.nodes(), opts.Cluster.Port, len(opts.Routes))
				}
			case "prod":
				if v.nodes() != 3 || opts.Cluster.Port != v.Config.Cluster.Port || len(opts.Routes) != 3 || opts.Cluster.Name != v.fullName() {
					t.Errorf("prod: %d nodes, cluster %q port %d, routes %v: want three", v.nodes(), opts.Cluster.Name, opts.Cluster.Port, opts.Routes)
				}
				if c, ok := v.PodTemplate.TopologySpreadConstraints["kubernetes.io/hostname"]; !ok || c.WhenUnsatisfiable != corev1.DoNotSchedule {
					t.Error("prod: the three nodes may share a host")
				}
			}

			// One NKey user per role, in the account, with its permissions.
			byKey := map[string]access.Role{}
			for _, r := range access.Roles() {
				byKey[k.PublicKey(r)] = r
			}
			seen := map[access.Role]bool{}
			for _, u := range opts.Nkeys {
				r, ok := byKey[u.Nkey]
				if !ok {
					t.Errorf("user %s is no role's", u.Nkey)
					continue
				}
				seen[r] = true
				if u.Account == nil || u.Account.Name != access.Account {
					t.Errorf("%s: account %v, want %s", r, u.Account, access.Account)
				}
				want := r.Permissions(names)
				if got := permissionsOf(u.Permissions); !reflect.DeepEqual(got, normalized(want)) {
					t.Errorf("%s: permissions\n%+v\nwant\n%+v", r, got, normalized(want))
				}
			}
			if len(seen) != len(access.Roles()) || len(opts.Nkeys) != len(access.Roles()) {
				t.Errorf("users of roles %v (%d users), want one per role of %v", slices.Collect(maps.Keys(seen)), len(opts.Nkeys), access.Roles())
			}

			// The container takes each role's public key from its Secret.
			for _, r := range access.Roles() {
				raw, ok := v.Container.Env[r.EnvVar()]
				if !ok {
					t.Errorf("container.env has no %s", r.EnvVar())
					continue
				}
				var e corev1.EnvVar
				if err := decodeStrict(raw, &e); err != nil {
					t.Errorf("container.env.%s: %v", r.EnvVar(), err)
					continue
				}
				want := corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
					LocalObjectReference: corev1.LocalObjectReference{Name: secretName(r)}, Key: "public"}}
				if e.Value != "" || e.ValueFrom == nil || !reflect.DeepEqual(*e.ValueFrom, want) {
					t.Errorf("container.env.%s: %s, want the key public of Secret %s", r.EnvVar(), raw, secretName(r))
				}
			}
			if v.NatsBox.Enabled {
				t.Error("natsBox enabled: with no anonymous user it has no credentials to act with")
			}
			// The dashboard's lag panel and the lag alert read the
			// exporter (deploy/observability), on the port the
			// NetworkPolicy admits.
			if !v.PromExporter.Enabled || v.PromExporter.Port != 7777 {
				t.Errorf("promExporter enabled %v port %d, want enabled on 7777", v.PromExporter.Enabled, v.PromExporter.Port)
			}
		})
	}
}

// subjects is a user's permissions in one direction, nil and empty alike.
type subjects struct{ Allow, Deny []string }

// userPermissions are a user's permissions both ways, and whether it
// may answer requests (allow_responses).
type userPermissions struct {
	Publish, Subscribe subjects
	Responses          bool
}

func permissionsOf(p *server.Permissions) userPermissions {
	var out userPermissions
	if p == nil {
		return out
	}
	for i, sp := range []*server.SubjectPermission{p.Publish, p.Subscribe} {
		if sp != nil {
			*[]*subjects{&out.Publish, &out.Subscribe}[i] = subjects{nonEmpty(sp.Allow), nonEmpty(sp.Deny)}
		}
	}
	out.Responses = p.Response != nil
	return out
}

func normalized(p access.Permissions) userPermissions {
	return userPermissions{
		Publish:   subjects{nonEmpty(p.Publish.Allow), nonEmpty(p.Publish.Deny)},
		Subscribe: subjects{nonEmpty(p.Subscribe.Allow), nonEmpty(p.Subscribe.Deny)},
		Responses: p.Responses,
	}
}

func nonEmpty(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	return s
}

// TestNATSValuesAccounts: the accounts in the values are exactly
// access.Accounts, keys by reference to the environment, so the chart's
// users can never drift from the code.
func TestNATSValuesAccounts(t *testing.T) {
	refs := map[access.Role]string{}
	for _, r := range access.Roles() {
		refs[r] = "<< $" + r.EnvVar() + " >>"
	}
	data, err := access.ConfigJSON(access.Accounts(contracts.DefaultNames(), refs))
	if err != nil {
		t.Fatal(err)
	}
	var want any
	if err := json.Unmarshal(data, &want); err != nil {
		t.Fatal(err)
	}
	for _, o := range overlays {
		v := loadNATSValues(t, o.values...)
		got := v.Config.Merge["accounts"]
		if !reflect.DeepEqual(got, want) {
			y, err := yaml.Marshal(map[string]any{"accounts": want})
			if err != nil {
				t.Fatal(err)
			}
			t.Errorf("%s: config.merge.accounts differs from access.Accounts; want (under config.merge):\n%s", strings.Join(o.values, " + "), y)
		}
	}
}

// TestNATSMaxPayloadNeedsUnquote: the chart renders config.merge as JSON,
// so `max_payload: 8MB` becomes the string "8MB", which nats-server
// refuses; `<< 8MB >>` is rendered unquoted, a size.
func TestNATSMaxPayloadNeedsUnquote(t *testing.T) {
	v := loadNATSValues(t, overlays[0].values...)
	serverEnv(t, v)
	if got := v.Config.Merge["max_payload"]; got != "<< 8MB >>" {
		t.Fatalf("config.merge.max_payload %v", got)
	}
	raw := deepCopy(v.raw).(map[string]any)
	raw["config"].(map[string]any)["merge"].(map[string]any)["max_payload"] = "8MB"
	quoted, err := decodeNATSValues(raw)
	if err != nil {
		t.Fatal(err)
	}
	conf := quoted.natsConf(t)
	line := 0
	for i, l := range strings.Split(string(conf), "\n") {
		if strings.Contains(l, `"max_payload": "8MB"`) {
			line = i + 1
		}
	}
	if line == 0 {
		t.Fatalf("the chart would not render max_payload as a string:\n%s", conf)
	}
	_, path, err := parseConf(t, conf)
	if err == nil {
		t.Fatal(`nats-server took max_payload "8MB"`)
	}
	if !strings.Contains(err.Error(), path+":"+strconv.Itoa(line)+":") {
		t.Errorf("the error is not about max_payload (line %d): %v", line, err)
	}
}

// TestNATSDevServer runs nats-server from the dev values' configuration
// (on loopback, free ports, a temporary store, no pid file) and uses it
// as the deployment would: every role connects with its seed, the
// provisioner provisions with the dev overlay's flags, mail goes through,
// KEDA reads the lag as the ScaledObject says; an anonymous client and an
// unknown key are refused.
func TestNATSDevServer(t *testing.T) {
	o := overlays[0]
	if o.name != "dev" {
		t.Fatal("overlays[0] is not dev")
	}
	_, opts, k := chartConfig(t, o)
	opts.Host, opts.Port = "127.0.0.1", -1
	opts.HTTPHost, opts.HTTPPort = "127.0.0.1", -1
	opts.StoreDir = t.TempDir()
	opts.PidFile = ""
	opts.Cluster, opts.Routes = server.ClusterOpts{}, nil
	opts.NoSigs, opts.NoLog = true, true
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	url := s.ClientURL()

	js := map[access.Role]jetstream.JetStream{}
	for _, r := range access.Roles() {
		o, err := k.Options(r)
		if err != nil {
			t.Fatal(err)
		}
		nc, err := nats.Connect(url, o...)
		if err != nil {
			t.Fatalf("%s: %v", r, err)
		}
		t.Cleanup(nc.Close)
		if js[r], err = jetstream.New(nc); err != nil {
			t.Fatal(err)
		}
	}
	if nc, err := nats.Connect(url); err == nil {
		nc.Close()
		t.Error("an anonymous client connected")
	} else if !strings.Contains(strings.ToLower(err.Error()), "authorization violation") {
		t.Errorf("anonymous: %v, want an authorization violation", err)
	}
	stranger, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := stranger.Seed()
	strangerFile := filepath.Join(t.TempDir(), "stranger.nk")
	if err := os.WriteFile(strangerFile, seed, 0o600); err != nil {
		t.Fatal(err)
	}
	strangerOpt, err := nats.NkeyOptionFromSeed(strangerFile)
	if err != nil {
		t.Fatal(err)
	}
	if nc, err := nats.Connect(url, strangerOpt); err == nil {
		nc.Close()
		t.Error("a key of no role connected")
	}

	ctx := t.Context()
	r := render(t, o.dir)
	_, pc := r.pod(t, access.Provisioner)
	cfg := provisionConfig(t, pc.Args)
	if err := provision.Run(ctx, js[access.Provisioner], cfg); err != nil {
		t.Fatalf("provision %q as the provisioner: %v", pc.Args, err)
	}
	cfg = cfg.WithDefaults()
	n := cfg.Names

	if _, err := js[access.Producer].Publish(ctx, n.MailSubject, []byte("mail")); err != nil {
		t.Fatalf("producer: %v", err)
	}
	_, md := r.theScaledObject(t)
	monitor := s.MonitorAddr().String()
	waitReadingOf(t, monitor, md["account"], md["stream"], 1, 0)

	if _, err := js[access.Observer].Consumer(ctx, n.MailStream, n.Consumer); err != nil {
		t.Errorf("observer: %v", err)
	}
	kv, err := js[access.Operator].KeyValue(ctx, n.FlagsBucket)
	if err != nil {
		t.Fatalf("operator: %v", err)
	}
	if _, err := kv.Put(ctx, "mail.handler", []byte("default 0 publish")); err != nil {
		t.Errorf("operator: %v", err)
	}
	cons, err := js[access.Worker].Consumer(ctx, n.MailStream, n.Consumer)
	if err != nil {
		t.Fatalf("worker: %v", err)
	}
	batch, err := cons.Fetch(1)
	if err != nil {
		t.Fatal(err)
	}
	got := 0
	for m := range batch.Messages() {
		if err := m.DoubleAck(ctx); err != nil {
			t.Fatal(err)
		}
		got++
	}
	if err := batch.Error(); err != nil || got != 1 {
		t.Fatalf("worker fetched %d: %v", got, err)
	}
	waitReadingOf(t, monitor, md["account"], md["stream"], 0, 0)

	info, err := js[access.Observer].Consumer(ctx, n.MailStream, n.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	if c := info.CachedInfo().Config; c.MaxAckPending != cfg.MaxAckPending {
		t.Errorf("consumer MaxAckPending %d, want the Job's %d", c.MaxAckPending, cfg.MaxAckPending)
	}
}
