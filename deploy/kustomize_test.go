package deploy_test

// The manifests in deploy/k8s, rendered as `kubectl apply -k` renders
// them (kustomize's krusty, on disk), decoded strictly into the
// Kubernetes API's types, and checked against what the binary, the
// access package, the scaling model and the NATS chart values say.

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/deploy/scaling"
	"github.com/mailscope/mailscope/producer"
	"github.com/mailscope/mailscope/provision"
)

// overlay is one kustomize overlay and the NATS chart values installed
// beside it.
type overlay struct {
	name string
	// dir is the overlay, relative to this package.
	dir string
	// values are the chart values files, in `helm -f` order.
	values []string
}

var overlays = []overlay{
	{name: "dev", dir: "k8s/overlays/dev", values: []string{"k8s/nats/values.yaml", "k8s/nats/values-dev.yaml"}},
	{name: "prod", dir: "k8s/overlays/prod", values: []string{"k8s/nats/values.yaml", "k8s/nats/values-prod.yaml"}},
}

// The conventions of the manifests that the binary does not define.
const (
	image = "ghcr.io/mailscope/mailscope"
	// seedDir is where a pod mounts its role's Secret.
	seedDir = "/var/run/secrets/mailscope/nats"
	// roleLabel names a pod's role (the provision Job's: provisioner).
	roleLabel = "app.kubernetes.io/component"
)

// secretName is the Secret of role r's credentials (keys seed and public).
func secretName(r access.Role) string { return "mailscope-nats-" + string(r) }

// roleCommands are the roles that run in pods, and their command.
var roleCommands = map[access.Role]string{
	access.Producer:    "producer",
	access.Worker:      "worker",
	access.Provisioner: "provision",
}

// rendered is an overlay's output, decoded.
type rendered struct {
	deployments  []appsv1.Deployment
	services     []corev1.Service
	pdbs         []policyv1.PodDisruptionBudget
	jobs         []batchv1.Job
	policies     []networkingv1.NetworkPolicy
	scaledObject []scaledObject
}

// scaledObject is what the manifests use of KEDA's keda.sh/v1alpha1
// ScaledObject (pkg/apis/keda/v1alpha1/scaledobject_types.go); anything
// else in one is an error here.
type scaledObject struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       struct {
		ScaleTargetRef struct {
			APIVersion string `json:"apiVersion,omitempty"`
			Kind       string `json:"kind,omitempty"`
			Name       string `json:"name"`
		} `json:"scaleTargetRef"`
		PollingInterval *int32 `json:"pollingInterval,omitempty"`
		CooldownPeriod  *int32 `json:"cooldownPeriod,omitempty"`
		MinReplicaCount *int32 `json:"minReplicaCount,omitempty"`
		MaxReplicaCount *int32 `json:"maxReplicaCount,omitempty"`
		Fallback        *struct {
			FailureThreshold int32  `json:"failureThreshold"`
			Replicas         int32  `json:"replicas"`
			Behavior         string `json:"behavior,omitempty"`
		} `json:"fallback,omitempty"`
		Triggers []struct {
			Type     string            `json:"type"`
			Metadata map[string]string `json:"metadata"`
		} `json:"triggers"`
	} `json:"spec"`
}

// natsJetStreamMetadata are the nats-jetstream trigger's parameters
// (KEDA's docs, scalers/nats-jetstream). KEDA ignores any other key, so a
// misspelt one would silently fall back to a default.
var natsJetStreamMetadata = []string{
	"natsServerMonitoringEndpoint", "account", "stream", "consumer",
	"lagThreshold", "activationLagThreshold", "useHttps",
}

// render builds overlay dir as `kubectl apply -k` does and decodes every
// object strictly into its type.
func render(t *testing.T, dir string) rendered {
	t.Helper()
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	var out rendered
	for _, r := range m.Resources() {
		data, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		id := r.GetKind() + "/" + r.GetName()
		var typeMeta metav1.TypeMeta
		if err := json.Unmarshal(data, &typeMeta); err != nil {
			t.Fatal(err)
		}
		apiVersion, ok := map[string]string{
			"Deployment": "apps/v1", "Service": "v1", "PodDisruptionBudget": "policy/v1", "Job": "batch/v1",
			"NetworkPolicy": "networking.k8s.io/v1", "ScaledObject": "keda.sh/v1alpha1",
		}[typeMeta.Kind]
		if !ok {
			t.Errorf("%s: a kind the tests do not know", id)
			continue
		}
		if typeMeta.APIVersion != apiVersion {
			t.Errorf("%s: apiVersion %s, want %s", id, typeMeta.APIVersion, apiVersion)
		}
		var into any
		switch typeMeta.Kind {
		case "Deployment":
			out.deployments = append(out.deployments, appsv1.Deployment{})
			into = &out.deployments[len(out.deployments)-1]
		case "Service":
			out.services = append(out.services, corev1.Service{})
			into = &out.services[len(out.services)-1]
		case "PodDisruptionBudget":
			out.pdbs = append(out.pdbs, policyv1.PodDisruptionBudget{})
			into = &out.pdbs[len(out.pdbs)-1]
		case "Job":
			out.jobs = append(out.jobs, batchv1.Job{})
			into = &out.jobs[len(out.jobs)-1]
		case "NetworkPolicy":
			out.policies = append(out.policies, networkingv1.NetworkPolicy{})
			into = &out.policies[len(out.policies)-1]
		case "ScaledObject":
			out.scaledObject = append(out.scaledObject, scaledObject{})
			into = &out.scaledObject[len(out.scaledObject)-1]
		}
		if err := decodeStrict(data, into); err != nil {
			t.Errorf("%s: %v", id, err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return out
}

// decodeStrict decodes one JSON value into v, refusing unknown fields
// and trailing data.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the object")
	}
	return nil
}

// decodeYAMLStrict decodes one YAML document into v as decodeStrict does.
func decodeYAMLStrict(data []byte, v any) error {
	j, err := yaml.YAMLToJSON(data)
	if err != nil {
		return err
	}
	return decodeStrict(j, v)
}

// podTemplate is a workload's pod template, named for messages.
type podTemplate struct {
	id   string
	spec corev1.PodTemplateSpec
	// serves: a long-running server (probes), not a run to completion.
	serves bool
}

func (r rendered) pods() []podTemplate {
	var out []podTemplate
	for _, d := range r.deployments {
		out = append(out, podTemplate{"Deployment/" + d.Name, d.Spec.Template, true})
	}
	for _, j := range r.jobs {
		out = append(out, podTemplate{"Job/" + j.Name, j.Spec.Template, false})
	}
	return out
}

func (r rendered) deployment(t *testing.T, name string) appsv1.Deployment {
	t.Helper()
	for _, d := range r.deployments {
		if d.Name == name {
			return d
		}
	}
	t.Fatalf("no Deployment %s", name)
	return appsv1.Deployment{}
}

// pod returns the one pod template of role, and its container.
func (r rendered) pod(t *testing.T, role access.Role) (podTemplate, corev1.Container) {
	t.Helper()
	var found []podTemplate
	for _, p := range r.pods() {
		if p.spec.Labels[roleLabel] == string(role) {
			found = append(found, p)
		}
	}
	if len(found) != 1 || len(found[0].spec.Spec.Containers) != 1 {
		t.Fatalf("%s: want one pod template of one container, got %d", role, len(found))
	}
	return found[0], found[0].spec.Spec.Containers[0]
}

// theScaledObject returns the overlay's one ScaledObject and its one
// nats-jetstream trigger's metadata.
func (r rendered) theScaledObject(t *testing.T) (scaledObject, map[string]string) {
	t.Helper()
	if len(r.scaledObject) != 1 || len(r.scaledObject[0].Spec.Triggers) != 1 || r.scaledObject[0].Spec.Triggers[0].Type != "nats-jetstream" {
		t.Fatalf("want one ScaledObject with one nats-jetstream trigger, got %+v", r.scaledObject)
	}
	return r.scaledObject[0], r.scaledObject[0].Spec.Triggers[0].Metadata
}

// argValue returns the value of --name in args ("--name v" or
// "--name=v"), and whether it is there (more than once is an error).
func argValue(t *testing.T, args []string, name string) (string, bool) {
	t.Helper()
	var vals []string
	for i, a := range args {
		switch {
		case a == "--"+name && i+1 < len(args):
			vals = append(vals, args[i+1])
		case strings.HasPrefix(a, "--"+name+"="):
			vals = append(vals, strings.TrimPrefix(a, "--"+name+"="))
		}
	}
	if len(vals) > 1 {
		t.Errorf("--%s given %d times in %q", name, len(vals), args)
	}
	if len(vals) == 0 {
		return "", false
	}
	return vals[0], true
}

func mustArg(t *testing.T, args []string, name string) string {
	t.Helper()
	v, ok := argValue(t, args, name)
	if !ok {
		t.Fatalf("no --%s in %q", name, args)
	}
	return v
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// port returns the port of a listen address such as ":2525".
func port(t *testing.T, addr string) int32 {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return int32(mustInt(t, p))
}

// overlayNamespace is the namespace an overlay's kustomization sets.
func overlayNamespace(t *testing.T, dir string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		Namespace string `json:"namespace"`
	}
	if err := yaml.Unmarshal(data, &k); err != nil || k.Namespace == "" {
		t.Fatalf("%s: no namespace (%v)", dir, err)
	}
	return k.Namespace
}

// provisionConfig reads the provision Job's flags as `mailscope provision`
// does (cmd/mailscope addProvisionFlags, whose defaults provision.Config
// documents); a flag it does not know is an error, so a new one is
// noticed here.
func provisionConfig(t *testing.T, args []string) provision.Config {
	t.Helper()
	if len(args) == 0 || args[0] != roleCommands[access.Provisioner] {
		t.Fatalf("provision args %q", args)
	}
	var c provision.Config
	fs := flag.NewFlagSet("provision", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.String("nats", "", "")
	fs.String("nats-nkey", "", "")
	fs.IntVar(&c.Replicas, "replicas", 0, "")
	fs.IntVar(&c.MaxAckPending, "max-ack-pending", 0, "")
	fs.Int64Var(&c.MailMaxBytes, "mail-max-bytes", 0, "")
	fs.Int64Var(&c.OutcomeMaxBytes, "outcome-max-bytes", 0, "")
	fs.Int64Var(&c.DeadMaxBytes, "dead-max-bytes", 0, "")
	fs.Int64Var(&c.ClaimMaxBytes, "claim-max-bytes", 0, "")
	fs.Int64Var(&c.CommandMaxBytes, "command-max-bytes", 0, "")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() > 0 {
		t.Fatalf("provision args %q: %v", args, err)
	}
	return c
}

func TestOverlays(t *testing.T) {
	names := contracts.DefaultNames()
	model := scaling.Params{}.WithDefaults()
	for _, o := range overlays {
		t.Run(o.name, func(t *testing.T) {
			r := render(t, o.dir)
			chart := loadNATSValues(t, o.values...)
			ns := overlayNamespace(t, o.dir)

			t.Run("namespace", func(t *testing.T) {
				for _, p := range r.pods() {
					if ns := p.spec.Namespace; ns != "" {
						t.Errorf("%s: pod template namespace %q", p.id, ns)
					}
				}
				check := func(id string, m metav1.ObjectMeta) {
					if m.Namespace != ns {
						t.Errorf("%s: namespace %q, want the overlay's %q", id, m.Namespace, ns)
					}
				}
				for _, d := range r.deployments {
					check("Deployment/"+d.Name, d.ObjectMeta)
				}
				for _, s := range r.services {
					check("Service/"+s.Name, s.ObjectMeta)
				}
				for _, p := range r.pdbs {
					check("PodDisruptionBudget/"+p.Name, p.ObjectMeta)
				}
				for _, j := range r.jobs {
					check("Job/"+j.Name, j.ObjectMeta)
				}
				for _, p := range r.policies {
					check("NetworkPolicy/"+p.Name, p.ObjectMeta)
				}
				for _, s := range r.scaledObject {
					check("ScaledObject/"+s.Metadata.Name, s.Metadata)
				}
			})

			t.Run("containers", func(t *testing.T) {
				tags := map[string]bool{}
				for _, p := range r.pods() {
					ps := p.spec.Spec
					if len(ps.InitContainers) > 0 || len(ps.EphemeralContainers) > 0 {
						t.Errorf("%s: init or ephemeral containers", p.id)
					}
					if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
						t.Errorf("%s: mounts a service account token it never uses", p.id)
					}
					for _, c := range ps.Containers {
						id := p.id + " container " + c.Name
						tag, ok := strings.CutPrefix(c.Image, image+":")
						if !ok || tag == "" || tag == "latest" || strings.ContainsAny(tag, ":@/") {
							t.Errorf("%s: image %q, want %s at a pinned tag", id, c.Image, image)
						}
						tags[tag] = true
						checkSecurity(t, id, ps.SecurityContext, c.SecurityContext)
						checkResources(t, id, c.Resources)
						if p.serves {
							checkProbes(t, id, c)
						}
						if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Exec != nil {
							t.Errorf("%s: an exec preStop hook; the image has no shell", id)
						}
					}
				}
				if len(tags) != 1 {
					t.Errorf("image tags %v: want one release for every role", tags)
				}
			})

			t.Run("credentials", func(t *testing.T) { checkCredentials(t, r) })

			t.Run("nats", func(t *testing.T) {
				// Every role reaches the chart's client service.
				want := url.URL{Scheme: "nats", Host: net.JoinHostPort(chart.serviceName(), strconv.Itoa(chart.Config.Nats.Port))}
				for role := range roleCommands {
					_, c := r.pod(t, role)
					if got := mustArg(t, c.Args, "nats"); got != want.String() {
						t.Errorf("%s: --nats %s, want the chart's service %s", role, got, want.String())
					}
					if c.Args[0] != roleCommands[role] {
						t.Errorf("%s: runs %q", role, c.Args[0])
					}
				}
			})

			t.Run("ports", func(t *testing.T) {
				def := producer.Config{}.WithDefaults(0)
				_, c := r.pod(t, access.Producer)
				for _, l := range []struct{ name, flag, def string }{{"smtp", "smtp", def.SMTPAddr}, {"lmtp", "lmtp", def.LMTPAddr}} {
					p := port(t, mustArg(t, c.Args, l.flag))
					if want := port(t, l.def); p != want {
						t.Errorf("producer --%s port %d, want the binary's default port %d", l.flag, p, want)
					}
					if got := containerPort(c, l.name); got != p {
						t.Errorf("producer container port %s: %d, want %d", l.name, got, p)
					}
				}
				for role := range roleCommands {
					if role == access.Provisioner {
						continue
					}
					_, c := r.pod(t, role)
					p := port(t, mustArg(t, c.Args, "http-addr"))
					if got := containerPort(c, "metrics"); got != p {
						t.Errorf("%s: container port metrics %d, want --http-addr's %d", role, got, p)
					}
				}
				// The Service: SMTP on 25 and LMTP on 24, to the named ports.
				var svc *corev1.Service
				for i := range r.services {
					if r.services[i].Name == "mailscope-producer" {
						svc = &r.services[i]
					}
				}
				if svc == nil {
					t.Fatal("no Service mailscope-producer")
				}
				got := map[string]string{}
				for _, sp := range svc.Spec.Ports {
					got[sp.Name] = fmt.Sprintf("%d->%s", sp.Port, sp.TargetPort.String())
				}
				if want := map[string]string{"smtp": "25->smtp", "lmtp": "24->lmtp"}; !mapsEqual(got, want) {
					t.Errorf("producer Service ports %v, want %v", got, want)
				}
				if sel := labels.SelectorFromSet(svc.Spec.Selector); !sel.Matches(labels.Set(r.deployment(t, "mailscope-producer").Spec.Template.Labels)) {
					t.Error("the producer Service does not select the producer's pods")
				}
			})

			t.Run("producer shutdown", func(t *testing.T) {
				d := r.deployment(t, "mailscope-producer")
				c := d.Spec.Template.Spec.Containers[0]
				if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
					t.Fatal("no preStop sleep")
				}
				grace := d.Spec.Template.Spec.TerminationGracePeriodSeconds
				if sleep := c.Lifecycle.PreStop.Sleep.Seconds; sleep <= 0 || grace == nil || *grace <= sleep {
					t.Errorf("preStop sleep %ds, terminationGracePeriodSeconds %v: the grace must outlast the sleep", sleep, grace)
				}
			})

			t.Run("disruption budgets", func(t *testing.T) {
				for _, d := range r.deployments {
					n := 0
					for _, p := range r.pdbs {
						sel, err := metav1.LabelSelectorAsSelector(p.Spec.Selector)
						if err != nil {
							t.Fatal(err)
						}
						if sel.Matches(labels.Set(d.Spec.Template.Labels)) {
							n++
						}
					}
					if n != 1 {
						t.Errorf("Deployment/%s: %d PodDisruptionBudgets select its pods, want 1", d.Name, n)
					}
					if len(d.Spec.Template.Spec.TopologySpreadConstraints) == 0 {
						t.Errorf("Deployment/%s: no topologySpreadConstraints", d.Name)
					}
				}
			})

			t.Run("scaling", func(t *testing.T) {
				so, md := r.theScaledObject(t)
				for k := range md {
					if !slices.Contains(natsJetStreamMetadata, k) {
						t.Errorf("trigger metadata %q: not a nats-jetstream parameter", k)
					}
				}
				if k := so.Spec.ScaleTargetRef.Kind; k != "" && k != "Deployment" {
					t.Fatalf("scales a %s", k)
				}
				w := r.deployment(t, so.Spec.ScaleTargetRef.Name)
				if w.Spec.Replicas != nil {
					t.Errorf("Deployment/%s sets replicas (%d): KEDA owns them, and every apply would reset the fleet", w.Name, *w.Spec.Replicas)
				}
				if w.Spec.Template.Labels[roleLabel] != string(access.Worker) {
					t.Errorf("the ScaledObject scales %s, not the workers", w.Name)
				}
				if md["stream"] != names.MailStream || md["consumer"] != names.Consumer {
					t.Errorf("stream %q consumer %q, want the binary's %q %q", md["stream"], md["consumer"], names.MailStream, names.Consumer)
				}
				if md["account"] != access.Account {
					t.Errorf("account %q, want %q", md["account"], access.Account)
				}
				wantEndpoint := net.JoinHostPort(chart.headlessName()+"."+ns+".svc.cluster.local", strconv.Itoa(chart.Config.Monitor.Port))
				if got := md["natsServerMonitoringEndpoint"]; got != wantEndpoint {
					t.Errorf("natsServerMonitoringEndpoint %q, want the chart's headless service in the overlay's namespace, %q", got, wantEndpoint)
				}
				if md["useHttps"] == "true" {
					t.Error("useHttps, but the chart's monitoring port is plain HTTP")
				}

				_, wc := r.pod(t, access.Worker)
				concurrency := int(mustInt(t, mustArg(t, wc.Args, "concurrency")))
				prefetch := int(mustInt(t, mustArg(t, wc.Args, "prefetch")))
				inFlight := concurrency + prefetch
				lag := int(mustInt(t, md["lagThreshold"]))
				if want := scaling.RecommendedLagThreshold(scaling.MeasuredRate, inFlight, scaling.DrainTarget); lag != want {
					t.Errorf("lagThreshold %d, want docs/scaling.md's %d for %d in flight", lag, want, inFlight)
				}
				if lag <= inFlight {
					t.Errorf("lagThreshold %d at or under a worker's in-flight %d: in-flight mail alone scales up", lag, inFlight)
				}
				if a := md["activationLagThreshold"]; a != strconv.Itoa(model.ActivationLagThreshold) {
					t.Errorf("activationLagThreshold %q, want %d (docs/scaling.md)", a, model.ActivationLagThreshold)
				}
				if so.Spec.PollingInterval == nil || int(*so.Spec.PollingInterval) != model.PollingInterval ||
					so.Spec.CooldownPeriod == nil || int(*so.Spec.CooldownPeriod) != model.CooldownPeriod {
					t.Errorf("pollingInterval %v cooldownPeriod %v, want the model's %d %d", so.Spec.PollingInterval, so.Spec.CooldownPeriod, model.PollingInterval, model.CooldownPeriod)
				}
				if so.Spec.MinReplicaCount == nil || so.Spec.MaxReplicaCount == nil {
					t.Fatal("minReplicaCount and maxReplicaCount must be set")
				}
				minR, maxR := int(*so.Spec.MinReplicaCount), int(*so.Spec.MaxReplicaCount)
				if minR < 1 || maxR < minR {
					t.Errorf("replicas %d..%d", minR, maxR)
				}
				if o.name == "prod" && (minR != model.MinReplicas || maxR != model.MaxReplicas) {
					t.Errorf("prod replicas %d..%d, want docs/scaling.md's %d..%d", minR, maxR, model.MinReplicas, model.MaxReplicas)
				}
				if f := so.Spec.Fallback; f == nil || f.FailureThreshold < 1 || int(f.Replicas) < minR || int(f.Replicas) > maxR {
					t.Errorf("fallback %+v: want one within %d..%d", f, minR, maxR)
				}

				_, pc := r.pod(t, access.Provisioner)
				cfg := provisionConfig(t, pc.Args)
				if cfg.MaxAckPending == 0 {
					t.Fatal("the provision Job leaves --max-ack-pending at its default")
				}
				if need := scaling.SizedMaxAckPending(maxR, concurrency, prefetch); cfg.MaxAckPending < need {
					t.Errorf("--max-ack-pending %d < maxReplicaCount %d x (%d + %d) = %d: workers past %d idle",
						cfg.MaxAckPending, maxR, concurrency, prefetch, need, cfg.MaxAckPending/inFlight)
				}
			})

			t.Run("provisioning", func(t *testing.T) {
				if len(r.jobs) != 1 {
					t.Fatalf("%d Jobs", len(r.jobs))
				}
				j := r.jobs[0]
				if j.Spec.TTLSecondsAfterFinished == nil {
					t.Error("no ttlSecondsAfterFinished: the next apply could not recreate the Job (its template is immutable)")
				}
				if j.Spec.BackoffLimit == nil {
					t.Error("no backoffLimit")
				}
				if p := j.Spec.Template.Spec.RestartPolicy; p != corev1.RestartPolicyOnFailure {
					t.Errorf("restartPolicy %q", p)
				}
				_, pc := r.pod(t, access.Provisioner)
				cfg := provisionConfig(t, pc.Args).WithDefaults()
				if o.name == "prod" && cfg.Replicas != 3 {
					t.Errorf("prod provisions --replicas %d, want 3", cfg.Replicas)
				}
				if nodes := chart.nodes(); cfg.Replicas > nodes {
					t.Errorf("--replicas %d on a NATS of %d nodes", cfg.Replicas, nodes)
				}
				// Every stream's byte cap is reserved on every node that
				// holds a replica: all of them must fit one node's store.
				caps := cfg.MailMaxBytes + cfg.OutcomeMaxBytes + cfg.DeadMaxBytes + cfg.HeldMaxBytes + cfg.ClaimMaxBytes + cfg.CommandMaxBytes
				if store := chart.fileStoreBytes(t); caps > store {
					t.Errorf("stream byte caps %d exceed the JetStream file store of %d bytes", caps, store)
				}
			})

			t.Run("network policies", func(t *testing.T) { checkNetworkPolicies(t, r, chart) })
		})
	}
}

func containerPort(c corev1.Container, name string) int32 {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// checkSecurity checks the container's effective security context (the
// container's setting, else the pod's) against the restricted Pod
// Security Standard.
func checkSecurity(t *testing.T, id string, pod *corev1.PodSecurityContext, c *corev1.SecurityContext) {
	t.Helper()
	if pod == nil {
		pod = &corev1.PodSecurityContext{}
	}
	if c == nil {
		c = &corev1.SecurityContext{}
	}
	nonRoot := pod.RunAsNonRoot
	if c.RunAsNonRoot != nil {
		nonRoot = c.RunAsNonRoot
	}
	if nonRoot == nil || !*nonRoot {
		t.Errorf("%s: not runAsNonRoot", id)
	}
	if c.ReadOnlyRootFilesystem == nil || !*c.ReadOnlyRootFilesystem {
		t.Errorf("%s: root filesystem writable", id)
	}
	if c.AllowPrivilegeEscalation == nil || *c.AllowPrivilegeEscalation {
		t.Errorf("%s: privilege escalation allowed", id)
	}
	if c.Privileged != nil && *c.Privileged {
		t.Errorf("%s: privileged", id)
	}
	if c.Capabilities == nil || !slices.Contains(c.Capabilities.Drop, "ALL") || len(c.Capabilities.Add) > 0 {
		t.Errorf("%s: capabilities %+v, want drop ALL and add none", id, c.Capabilities)
	}
	seccomp := pod.SeccompProfile
	if c.SeccompProfile != nil {
		seccomp = c.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: seccomp profile %+v, want RuntimeDefault", id, seccomp)
	}
}

func checkResources(t *testing.T, id string, r corev1.ResourceRequirements) {
	t.Helper()
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okReq := r.Requests[name]
		lim, okLim := r.Limits[name]
		if !okReq || !okLim {
			t.Errorf("%s: %s request %v, limit %v: want both", id, name, okReq, okLim)
			continue
		}
		if req.Cmp(lim) > 0 {
			t.Errorf("%s: %s request %s above its limit %s", id, name, req.String(), lim.String())
		}
	}
}

// checkProbes: a server is checked alive on /healthz and ready on
// /readyz, on its --http-addr.
func checkProbes(t *testing.T, id string, c corev1.Container) {
	t.Helper()
	addr, ok := argValue(t, c.Args, "http-addr")
	if !ok {
		t.Errorf("%s: no --http-addr, so nothing to probe", id)
		return
	}
	p := port(t, addr)
	for _, pr := range []struct {
		kind, path string
		probe      *corev1.Probe
	}{{"liveness", "/healthz", c.LivenessProbe}, {"readiness", "/readyz", c.ReadinessProbe}} {
		if pr.probe == nil || pr.probe.HTTPGet == nil {
			t.Errorf("%s: no %s probe", id, pr.kind)
			continue
		}
		g := pr.probe.HTTPGet
		target := g.Port.IntVal
		if g.Port.StrVal != "" {
			target = containerPort(c, g.Port.StrVal)
		}
		if g.Path != pr.path || target != p {
			t.Errorf("%s: %s probe %s on port %s, want %s on %d", id, pr.kind, g.Path, g.Port.String(), pr.path, p)
		}
	}
}

// checkCredentials: each role's Secret is mounted, read-only and readable
// by its owner alone, by the pod of that role and by no other, which
// passes it as --nats-nkey; no Secret is rendered, and no seed is in the
// tree.
func checkCredentials(t *testing.T, r rendered) {
	t.Helper()
	mountedBy := map[access.Role][]string{}
	for _, p := range r.pods() {
		role := access.Role(p.spec.Labels[roleLabel])
		if _, ok := roleCommands[role]; !ok {
			t.Errorf("%s: role label %q is no role that runs in a pod", p.id, role)
			continue
		}
		var own []string
		for _, v := range p.spec.Spec.Volumes {
			if v.Secret == nil {
				continue
			}
			vr, ok := strings.CutPrefix(v.Secret.SecretName, "mailscope-nats-")
			if !ok {
				continue
			}
			mountedBy[access.Role(vr)] = append(mountedBy[access.Role(vr)], p.id)
			if access.Role(vr) != role {
				t.Errorf("%s (%s) mounts %s", p.id, role, v.Secret.SecretName)
				continue
			}
			if v.Secret.DefaultMode == nil || *v.Secret.DefaultMode != 0o400 {
				t.Errorf("%s: Secret volume mode %v, want 0400", p.id, v.Secret.DefaultMode)
			}
			own = append(own, v.Name)
		}
		if len(own) != 1 {
			t.Errorf("%s: %d volumes of its role's Secret %s, want 1", p.id, len(own), secretName(role))
			continue
		}
		c := p.spec.Spec.Containers[0]
		var mount *corev1.VolumeMount
		for i, m := range c.VolumeMounts {
			if m.Name == own[0] {
				mount = &c.VolumeMounts[i]
			}
		}
		if mount == nil || mount.MountPath != seedDir || !mount.ReadOnly || mount.SubPath != "" {
			t.Errorf("%s: Secret mounted as %+v, want read-only at %s", p.id, mount, seedDir)
		}
		if got := mustArg(t, c.Args, "nats-nkey"); got != seedDir+"/seed" {
			t.Errorf("%s: --nats-nkey %s, want %s/seed", p.id, got, seedDir)
		}
		for _, e := range c.Env {
			if e.Name == "NATS_NKEY" || (e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil) {
				t.Errorf("%s: credentials in the environment (%s)", p.id, e.Name)
			}
		}
	}
	for _, role := range access.Roles() {
		_, runs := roleCommands[role]
		if got := mountedBy[role]; runs && len(got) != 1 || !runs && len(got) != 0 {
			t.Errorf("%s's Secret is mounted by %q", role, got)
		}
	}
	// Seeds are made out of band; one committed here would be public.
	seed := regexp.MustCompile(`\bS[UOANC][A-Z2-7]{50,}\b`)
	err := filepath.WalkDir("k8s", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if seed.Match(data) {
			t.Errorf("%s holds what looks like an NKey seed", path)
		}
		if strings.HasSuffix(path, ".yaml") && regexp.MustCompile(`(?m)^kind:\s*Secret\s*$`).Match(data) {
			t.Errorf("%s defines a Secret: credentials are made out of band", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkNetworkPolicies: ingress is denied by default; every port a pod
// serves is let in by some policy; NATS takes clients only from
// mailscope's pods, routes only from its own, monitoring from KEDA.
func checkNetworkPolicies(t *testing.T, r rendered, chart *natsValues) {
	t.Helper()
	deny := false
	for _, p := range r.policies {
		if len(p.Spec.PodSelector.MatchLabels) == 0 && len(p.Spec.PodSelector.MatchExpressions) == 0 &&
			slices.Equal(p.Spec.PolicyTypes, []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}) && len(p.Spec.Ingress) == 0 {
			deny = true
		}
	}
	if !deny {
		t.Error("no default-deny ingress policy")
	}
	// allowed reports whether a policy selecting pods of podLabels lets
	// port in from a peer that peer accepts.
	allowed := func(podLabels map[string]string, port int32, peer func(networkingv1.NetworkPolicyPeer) bool) bool {
		for _, p := range r.policies {
			sel, err := metav1.LabelSelectorAsSelector(&p.Spec.PodSelector)
			if err != nil {
				t.Fatal(err)
			}
			if !sel.Matches(labels.Set(podLabels)) {
				continue
			}
			for _, rule := range p.Spec.Ingress {
				hasPort := false
				for _, rp := range rule.Ports {
					if rp.Port != nil && rp.Port.IntVal == port && (rp.Protocol == nil || *rp.Protocol == corev1.ProtocolTCP) {
						hasPort = true
					}
				}
				if !hasPort {
					continue
				}
				if len(rule.From) == 0 && peer(networkingv1.NetworkPolicyPeer{}) {
					return true
				}
				for _, f := range rule.From {
					if peer(f) {
						return true
					}
				}
			}
		}
		return false
	}
	anyone := func(networkingv1.NetworkPolicyPeer) bool { return true }
	for _, p := range r.pods() {
		for _, c := range p.spec.Spec.Containers {
			for _, cp := range c.Ports {
				if !allowed(p.spec.Labels, cp.ContainerPort, anyone) {
					t.Errorf("%s: port %d (%s) is let in by no policy", p.id, cp.ContainerPort, cp.Name)
				}
			}
		}
	}
	// A same-namespace pod peer whose selector matches these labels.
	podsOf := func(want map[string]string) func(networkingv1.NetworkPolicyPeer) bool {
		return func(f networkingv1.NetworkPolicyPeer) bool {
			if f.PodSelector == nil || f.NamespaceSelector != nil || f.IPBlock != nil {
				return false
			}
			sel, err := metav1.LabelSelectorAsSelector(f.PodSelector)
			return err == nil && sel.Matches(labels.Set(want))
		}
	}
	namespace := func(name string) func(networkingv1.NetworkPolicyPeer) bool {
		return func(f networkingv1.NetworkPolicyPeer) bool {
			if f.NamespaceSelector == nil || f.PodSelector != nil || f.IPBlock != nil {
				return false
			}
			sel, err := metav1.LabelSelectorAsSelector(f.NamespaceSelector)
			return err == nil && !sel.Empty() && sel.Matches(labels.Set{"kubernetes.io/metadata.name": name})
		}
	}
	natsPods := chart.podLabels()
	for _, p := range r.pods() {
		if !allowed(natsPods, int32(chart.Config.Nats.Port), podsOf(p.spec.Labels)) {
			t.Errorf("%s may not reach NATS on %d", p.id, chart.Config.Nats.Port)
		}
	}
	if allowed(natsPods, int32(chart.Config.Nats.Port), podsOf(map[string]string{"app": "anything-else"})) ||
		allowed(natsPods, int32(chart.Config.Nats.Port), func(f networkingv1.NetworkPolicyPeer) bool { return f.PodSelector == nil }) {
		t.Error("NATS clients are let in from beyond mailscope's pods")
	}
	if !allowed(natsPods, int32(chart.Config.Cluster.Port), podsOf(natsPods)) {
		t.Errorf("NATS routes (%d) between NATS pods are not let in", chart.Config.Cluster.Port)
	}
	if !allowed(natsPods, int32(chart.Config.Monitor.Port), namespace("keda")) {
		t.Errorf("KEDA may not read NATS monitoring (%d)", chart.Config.Monitor.Port)
	}
	if allowed(natsPods, int32(chart.Config.Monitor.Port), func(f networkingv1.NetworkPolicyPeer) bool {
		return f.PodSelector == nil && f.NamespaceSelector == nil
	}) {
		t.Error("NATS monitoring is open to anyone")
	}
}

// TestCPUHPAExtra: the documented alternative to the ScaledObject is a
// valid HPA of the workers, and no overlay applies it (two autoscalers on
// one Deployment fight).
func TestCPUHPAExtra(t *testing.T) {
	data, err := os.ReadFile("k8s/extras/worker-hpa-cpu.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var hpa autoscalingv2.HorizontalPodAutoscaler
	if err := decodeYAMLStrict(data, &hpa); err != nil {
		t.Fatal(err)
	}
	if hpa.APIVersion != "autoscaling/v2" || hpa.Kind != "HorizontalPodAutoscaler" || hpa.Spec.ScaleTargetRef.Name != "mailscope-worker" {
		t.Errorf("%s %s of %+v", hpa.APIVersion, hpa.Kind, hpa.Spec.ScaleTargetRef)
	}
	if len(hpa.Spec.Metrics) == 0 || hpa.Spec.Metrics[0].Resource == nil || hpa.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU {
		t.Errorf("metrics %+v, want CPU", hpa.Spec.Metrics)
	}
	err = filepath.WalkDir("k8s", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || d.Name() != "kustomization.yaml" {
			return err
		}
		k, err := os.ReadFile(path)
		if err == nil && bytes.Contains(k, []byte("worker-hpa-cpu")) {
			t.Errorf("%s applies the CPU HPA beside the ScaledObject", path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
