package deploy_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/auth"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/dev"
	"github.com/mailscope/mailscope/keyserver"
	"github.com/mailscope/mailscope/producer"
	"github.com/mailscope/mailscope/provision"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/telemetry"
	"github.com/mailscope/mailscope/testkit"
	"github.com/mailscope/mailscope/workers"
)

// Files of deploy/observability.
const (
	dashboardFile      = "observability/grafana-dashboard.json"
	alertsFile         = "observability/alerts.yaml"
	prometheusRuleFile = "observability/prometheusrule.yaml"
	operationsDoc      = "../docs/operations.md"
)

// externalMetrics are the series the dashboard and the alerts read from
// outside mailscope: the NATS chart's exporter (prometheus-nats-exporter,
// promExporter.enabled, run by the chart with -prefix=nats -jsz=all),
// which names a consumer's field F of nats-server's /jsz
// nats_consumer_F, labelled stream_name, consumer_name and
// is_consumer_leader among others. mailscope exports no lag of its own:
// the lag is the server's count, the number KEDA scales on, and a
// worker's view of it would be one client's guess. The test checks that
// the embedded server's /jsz has each field for the workers consumer.
var externalMetrics = map[string]string{
	"nats_consumer_num_pending":     "num_pending",
	"nats_consumer_num_ack_pending": "num_ack_pending",
}

// targetLabels are labels Prometheus adds when it scrapes a pod (the
// Kubernetes service discovery of a ServiceMonitor or PodMonitor), which
// /metrics itself does not carry.
var targetLabels = map[string]bool{"namespace": true, "pod": true, "job": true, "instance": true, "container": true, "service": true, "endpoint": true}

// exprSite is a PromQL expression and where it is.
type exprSite struct{ where, expr string }

// dashboardExprs returns every PromQL expression of the dashboard, and
// the metric and label of each template variable's label_values query.
func dashboardExprs(t *testing.T) ([]exprSite, []promRef) {
	t.Helper()
	data, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	type target struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	}
	type panel struct {
		ID         int            `json:"id"`
		Type       string         `json:"type"`
		Title      string         `json:"title"`
		Datasource map[string]any `json:"datasource"`
		GridPos    *struct{ H, W, X, Y int }
		Targets    []target `json:"targets"`
		Panels     []panel  `json:"panels"`
	}
	var d struct {
		UID        string  `json:"uid"`
		Title      string  `json:"title"`
		Panels     []panel `json:"panels"`
		Templating struct {
			List []struct {
				Name  string `json:"name"`
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
		t.Fatalf("%s: uid %q, title %q, %d panels", dashboardFile, d.UID, d.Title, len(d.Panels))
	}
	var sites []exprSite
	ids := map[int]bool{}
	var walk func([]panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			if ids[p.ID] {
				t.Errorf("%s: panel id %d twice", dashboardFile, p.ID)
			}
			ids[p.ID] = true
			if p.GridPos == nil || p.GridPos.W == 0 || p.GridPos.H == 0 {
				t.Errorf("%s: panel %q has no size", dashboardFile, p.Title)
			}
			if p.Type != "row" {
				if p.Datasource["uid"] != "${datasource}" {
					t.Errorf("%s: panel %q: datasource %v, want the ${datasource} variable", dashboardFile, p.Title, p.Datasource)
				}
				if len(p.Targets) == 0 {
					t.Errorf("%s: panel %q has no query", dashboardFile, p.Title)
				}
			}
			for _, tg := range p.Targets {
				if tg.RefID == "" || strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("%s: panel %q: target %+v", dashboardFile, p.Title, tg)
				}
				sites = append(sites, exprSite{fmt.Sprintf("dashboard panel %q %s", p.Title, tg.RefID), tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	labelValues := regexp.MustCompile(`^label_values\((.+),\s*([a-zA-Z_][a-zA-Z0-9_]*)\)$`)
	var vars []promRef
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(string)
		if m, ok := v.Query.(map[string]any); ok {
			q, _ = m["query"].(string)
		}
		m := labelValues.FindStringSubmatch(q)
		if m == nil {
			t.Errorf("%s: variable %s: query %q is not label_values(METRIC, LABEL)", dashboardFile, v.Name, q)
			continue
		}
		refs, err := promRefs(m[1])
		if err != nil || len(refs) != 1 {
			t.Errorf("%s: variable %s: %q: %v %v", dashboardFile, v.Name, m[1], refs, err)
			continue
		}
		vars = append(vars, promRef{metric: refs[0].metric, matchers: []promMatcher{{label: m[2], op: "label_values"}}})
	}
	return sites, vars
}

// alertRule is one rule of the alert file, decoded strictly.
type alertRule struct {
	Alert       string            `json:"alert"`
	Expr        string            `json:"expr"`
	For         string            `json:"for"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// alertFile is a Prometheus rules file.
type alertFile struct {
	Groups []struct {
		Name  string      `json:"name"`
		Rules []alertRule `json:"rules"`
	} `json:"groups"`
}

var promDuration = regexp.MustCompile(`^([0-9]+(ms|s|m|h|d|w|y))+$`)

// alertExprs checks the alert file as Prometheus would load it (groups,
// each with a name and rules; each rule an alert with expr, for, labels
// and annotations, its severity, summary and runbook_url; no unknown
// field) and that the PrometheusRule carries the same groups, and
// returns every rule's expression.
func alertExprs(t *testing.T) []exprSite {
	t.Helper()
	data, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var f alertFile
	if err := yaml.UnmarshalStrict(data, &f); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	// Presence of every field Prometheus requires or we do, "for: 0m"
	// included: decoded again without types.
	var raw struct {
		Groups []struct {
			Rules []map[string]any `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.Unmarshal(data, &raw); err != nil {
		t.Fatal(err)
	}
	runbooks := operationsAnchors(t)
	var sites []exprSite
	names := map[string]bool{}
	if len(f.Groups) == 0 {
		t.Fatalf("%s: no groups", alertsFile)
	}
	for gi, g := range f.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("%s: group %d: name %q, %d rules", alertsFile, gi, g.Name, len(g.Rules))
		}
		for ri, r := range g.Rules {
			for _, field := range []string{"alert", "expr", "for", "labels", "annotations"} {
				if _, ok := raw.Groups[gi].Rules[ri][field]; !ok {
					t.Errorf("%s: group %s rule %d (%s): no %s", alertsFile, g.Name, ri, r.Alert, field)
				}
			}
			if r.Alert == "" || names[r.Alert] {
				t.Errorf("%s: rule %d of %s: alert name %q empty or twice", alertsFile, ri, g.Name, r.Alert)
			}
			names[r.Alert] = true
			if !promDuration.MatchString(r.For) {
				t.Errorf("%s: %s: for %q is not a Prometheus duration", alertsFile, r.Alert, r.For)
			}
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("%s: %s: severity %q", alertsFile, r.Alert, s)
			}
			if r.Annotations["summary"] == "" {
				t.Errorf("%s: %s: no summary", alertsFile, r.Alert)
			}
			anchor, ok := strings.CutPrefix(r.Annotations["runbook_url"], "docs/operations.md#")
			if !ok || !runbooks[anchor] {
				t.Errorf("%s: %s: runbook_url %q is no section of docs/operations.md", alertsFile, r.Alert, r.Annotations["runbook_url"])
			}
			sites = append(sites, exprSite{"alert " + r.Alert, r.Expr})
		}
	}
	for _, want := range []string{"MailscopeWorkerLagRising", "MailscopeDeadLetters", "MailscopeRefusedRuleKeys",
		"MailscopeDNSFailureRatio", "MailscopeProducer4xxRatio", "MailscopeWorkerNotReady"} {
		if !names[want] {
			t.Errorf("%s: no alert %s", alertsFile, want)
		}
	}

	pr, err := os.ReadFile(prometheusRuleFile)
	if err != nil {
		t.Fatal(err)
	}
	var rule struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
		Metadata   struct {
			Name   string            `json:"name"`
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
		Spec alertFile `json:"spec"`
	}
	if err := yaml.UnmarshalStrict(pr, &rule); err != nil {
		t.Fatalf("%s: %v", prometheusRuleFile, err)
	}
	if rule.APIVersion != "monitoring.coreos.com/v1" || rule.Kind != "PrometheusRule" || rule.Metadata.Name == "" {
		t.Errorf("%s: %s %s %q", prometheusRuleFile, rule.APIVersion, rule.Kind, rule.Metadata.Name)
	}
	if !reflect.DeepEqual(rule.Spec, f) {
		t.Errorf("%s: its groups are not those of %s", prometheusRuleFile, alertsFile)
	}
	return sites
}

// operationsAnchors returns the GitHub anchors of the headings of
// docs/operations.md.
func operationsAnchors(t *testing.T) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(operationsDoc)
	if err != nil {
		t.Fatal(err)
	}
	anchors := map[string]bool{}
	for line := range strings.SplitSeq(string(data), "\n") {
		title, ok := strings.CutPrefix(strings.TrimLeft(line, "#"), " ")
		if !ok || !strings.HasPrefix(line, "#") {
			continue
		}
		var b strings.Builder
		for _, r := range strings.ToLower(title) {
			switch {
			case r == ' ':
				b.WriteRune('-')
			case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
				b.WriteRune(r)
			}
		}
		anchors[b.String()] = true
	}
	return anchors
}

// exposition is what /metrics holds: for each sample name, each label's
// values.
type exposition map[string]map[string]map[string]bool

// parseExposition reads the Prometheus text format.
func parseExposition(t *testing.T, text string) exposition {
	t.Helper()
	e := exposition{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		end := strings.IndexAny(line, "{ ")
		if end <= 0 {
			t.Fatalf("/metrics line %q", line)
		}
		name := line[:end]
		labels := e[name]
		if labels == nil {
			labels = map[string]map[string]bool{}
			e[name] = labels
		}
		if line[end] != '{' {
			continue
		}
		ms, _, err := promMatchers(line, end)
		if err != nil {
			t.Fatalf("/metrics line %q: %v", line, err)
		}
		for _, m := range ms {
			if labels[m.label] == nil {
				labels[m.label] = map[string]bool{}
			}
			labels[m.label][m.value] = true
		}
	}
	return e
}

// TestDashboardAndAlertsFiles checks the files alone: the dashboard's
// shape, the alert file as Prometheus requires it, the PrometheusRule,
// and that every expression tokenizes to at least one metric.
func TestDashboardAndAlertsFiles(t *testing.T) {
	sites, vars := dashboardExprs(t)
	sites = append(sites, alertExprs(t)...)
	for _, s := range sites {
		refs, err := promRefs(s.expr)
		if err != nil || len(refs) == 0 {
			t.Errorf("%s: %q: %v, metrics %v", s.where, s.expr, err, refs)
		}
	}
	if len(vars) == 0 {
		t.Error("the dashboard has no namespace variable")
	}
}

// TestDashboardAndAlertMetricsExist runs the system, every part as its
// role (an embedded nats-server, the real SMTP producer, a worker asking
// a DNS server on loopback for DKIM keys, rules in the KV bucket,
// telemetry.Start serving /metrics), sends a known sequence of mail (DKIM
// pass twice, so the key cache hits; fail; none; a missing key; a key
// server that never answers; a mail rejected by rule, one quarantined,
// one held by mail.pause, one malformed; a refused rule key of each
// cause; a mail over the size limit and a bad recipient), and then checks
// that every metric the dashboard and the alert rules name is on
// /metrics, with each label their selectors match on and each exact value
// they match. Metrics from outside mailscope are externalMetrics. The
// worker's log is JSON: every outcome but the dead one has its one
// "outcome" line, and no line holds an address.
func TestDashboardAndAlertMetricsExist(t *testing.T) {
	sites, vars := dashboardExprs(t)
	sites = append(sites, alertExprs(t)...)

	srv, err := telemetry.Start("127.0.0.1:0", telemetry.ServiceName("worker"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })

	env := systest.Start(t)
	names := contracts.DefaultNames()
	if err := provision.Run(t.Context(), env.JetStream(t, access.Provisioner), provision.Config{}); err != nil {
		t.Fatal(err)
	}
	keys, err := keyserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { keys.Close() })
	newKey := func(alg, selector string) crypto.Signer {
		k, err := testkit.GenerateKey(alg, 0)
		if err != nil {
			t.Fatal(err)
		}
		txt, err := testkit.TXTRecord(k)
		if err != nil {
			t.Fatal(err)
		}
		keys.SetTXT(testkit.DNSName(selector, "example.com"), 300, txt)
		return k
	}
	rsa, ed := newKey("rsa", "s1"), newKey("ed25519", "slow")
	keys.SetFault(testkit.DNSName("slow", "example.com"), keyserver.FaultTimeout)

	ctx, stop := context.WithCancel(t.Context())
	defer stop()
	quiet := slog.New(slog.DiscardHandler)
	p, err := producer.New(producer.Config{SMTPAddr: "127.0.0.1:0", LMTPAddr: "-", Names: names, Logger: quiet, MaxSize: 64 << 10},
		env.Conn(t, access.Producer))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Listen(); err != nil {
		t.Fatal(err)
	}
	var workerLog lockedLog
	w, err := workers.New(ctx, workers.Config{Names: names, Name: "observability-test",
		Logger:      slog.New(telemetry.NewLogHandler(&workerLog, telemetry.LogJSON, nil)),
		MaxAttempts: 2, BackoffBase: time.Millisecond, BackoffMax: time.Millisecond,
		HoldDelay: 20 * time.Millisecond, DNSHoldMax: 300 * time.Millisecond,
		Auth: auth.Config{DNSServers: []string{keys.Addr()}, Timeout: 50 * time.Millisecond, Retries: -1}},
		env.Conn(t, access.Worker))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 2)
	go func() { done <- p.Run(ctx) }()
	go func() { done <- w.Run(ctx) }()
	defer func() {
		stop()
		for range 2 {
			if err := <-done; err != nil && ctx.Err() == nil {
				t.Error(err)
			}
		}
	}()

	// Rules, and two keys the workers refuse: one that does not parse,
	// one that names no flag.
	kv, err := env.JetStream(t, access.Operator).KeyValue(t.Context(), names.FlagsBucket)
	if err != nil {
		t.Fatal(err)
	}
	revs := map[string]uint64{}
	for flag, text := range map[string]string{
		rules.FlagHandler: "rcpt:^quarantine@ 10 quarantine\n",
		rules.FlagReject:  "rcpt:^reject@ 10 no such list\n",
		rules.FlagPause:   "rcpt:^paused@ 10 true\n",
		rules.FlagDryRun:  "default 10 maybe\n",
		"mail.handlr":     "default 10 discard\n",
	} {
		if revs[flag], err = kv.PutString(t.Context(), flag, text); err != nil {
			t.Fatal(err)
		}
	}
	systest.WaitFor(t, "the worker to hold the rules and refuse the two bad keys", func() bool {
		s := w.Status()
		return s.Rules[rules.FlagHandler] == revs[rules.FlagHandler] && s.Rules[rules.FlagReject] == revs[rules.FlagReject] &&
			s.Rules[rules.FlagPause] == revs[rules.FlagPause] && len(s.Problems) == 2 &&
			slices.ContainsFunc(s.Problems, func(p contracts.RuleProblem) bool { return p.Flag == rules.FlagDryRun && p.Cause == "parse" }) &&
			slices.ContainsFunc(s.Problems, func(p contracts.RuleProblem) bool { return p.Flag == "mail.handlr" && p.Cause == "unknown_flag" }) &&
			slices.Contains(s.Unknown, "mail.handlr")
	})

	outcomes := systest.NewOutcomes(t, env.Conn(t, access.Operator), systest.ByRcpt)
	send := func(rcpt string, raw []byte) {
		t.Helper()
		if err := dev.SendSMTP(p.Addr(false), "alice@example.com", []string{rcpt}, raw); err != nil {
			t.Fatalf("SMTP to %s: %v", rcpt, err)
		}
	}
	mail := func(rcpt string, key crypto.Signer, selector string) []byte {
		t.Helper()
		raw := testkit.SampleMail("Alice <alice@example.com>", rcpt, "observability", "Hello "+rcpt+".\r\n",
			time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC), strings.ReplaceAll(rcpt, "@", ".")+"@example.com")
		if key == nil {
			return raw
		}
		signed, err := testkit.Sign(raw, testkit.SignOptions{Domain: "example.com", Selector: selector, Key: key})
		if err != nil {
			t.Fatal(err)
		}
		return signed
	}
	want := map[string]contracts.Disposition{
		"pass@example.org":       contracts.Processed,
		"pass-again@example.org": contracts.Processed,
		"fail@example.org":       contracts.Processed,
		"none@example.org":       contracts.Processed,
		"nokey@example.org":      contracts.Processed,
		"timeout@example.org":    contracts.Processed,
		"reject@example.org":     contracts.Rejected,
		"quarantine@example.org": contracts.Quarantined,
		"malformed@example.org":  contracts.Dead,
	}
	send("pass@example.org", mail("pass@example.org", rsa, "s1"))
	outcomes.First(t, "pass@example.org") // the key is cached before the next mail asks for it
	send("pass-again@example.org", mail("pass-again@example.org", rsa, "s1"))
	send("fail@example.org", bytes.Replace(mail("fail@example.org", rsa, "s1"), []byte("Hello"), []byte("Hullo"), 1))
	send("none@example.org", mail("none@example.org", nil, ""))
	send("nokey@example.org", mail("nokey@example.org", rsa, "missing"))
	send("timeout@example.org", mail("timeout@example.org", ed, "slow"))
	send("reject@example.org", mail("reject@example.org", nil, ""))
	send("quarantine@example.org", mail("quarantine@example.org", nil, ""))
	send("malformed@example.org", []byte("Subject: no From, so not a mail a worker can take\r\n\r\nbody\r\n"))
	send("paused@example.org", mail("paused@example.org", nil, ""))
	if err := dev.SendSMTP(p.Addr(false), "alice@example.com", []string{"big@example.org"}, bytes.Repeat([]byte("x"), 65<<10)); err == nil {
		t.Error("a mail over the size limit was accepted")
	}
	if err := dev.SendSMTP(p.Addr(false), "alice@example.com", []string{"bob@exa<mple.org"}, mail("bob@example.org", nil, "")); err == nil {
		t.Error("a bad recipient was accepted")
	}
	for rcpt, d := range want {
		if o := outcomes.First(t, rcpt); o.Disposition != d {
			t.Errorf("%s: %s (%s), want %s", rcpt, o.Disposition, o.Reason, d)
		}
	}
	// Every mail settled: a worker counts a mail's metrics before it acks
	// or terms it, but after the outcome the test saw (a dead letter is
	// stored, and counted, after its outcome).
	systest.WaitDrained(t, env.Admin(t))
	systest.WaitFor(t, "the paused mail to be held", func() bool { return w.Held() == 1 })

	metrics := scrape(t, "http://"+srv.Addr()+"/metrics")

	// Every metric named, where it is named.
	where := map[string][]string{}
	var refs []promRef
	for _, s := range sites {
		rs, err := promRefs(s.expr)
		if err != nil {
			t.Errorf("%s: %v", s.where, err)
			continue
		}
		for _, r := range rs {
			where[r.metric] = append(where[r.metric], s.where)
		}
		refs = append(refs, rs...)
	}
	for _, v := range vars {
		where[v.metric] = append(where[v.metric], "dashboard variable")
	}
	refs = append(refs, vars...)
	var missing []string
	for m := range where {
		if _, ext := externalMetrics[m]; ext {
			continue
		}
		if metrics[m] == nil {
			missing = append(missing, m)
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Logf("%s, named by %s", m, strings.Join(slices.Compact(where[m]), "; "))
	}
	if len(missing) > 0 {
		t.Errorf("not on /metrics, though the dashboard or the alerts name them: %s", strings.Join(missing, " "))
	}
	// The labels and exact values the selectors match on.
	for _, r := range refs {
		labels := metrics[r.metric]
		if _, ext := externalMetrics[r.metric]; ext || labels == nil {
			continue
		}
		for _, m := range r.matchers {
			if targetLabels[m.label] {
				continue
			}
			if labels[m.label] == nil {
				t.Errorf("%s has no label %s (named by %s)", r.metric, m.label, strings.Join(slices.Compact(where[r.metric]), "; "))
				continue
			}
			if m.op == "=" && !labels[m.label][m.value] {
				t.Errorf("%s{%s=%q}: no such series; values seen %v", r.metric, m.label, m.value, keysOf(labels[m.label]))
			}
		}
	}

	// The external metrics' source: the consumer's fields in /jsz.
	resp, err := http.Get(env.Server.MonitorURL() + "/jsz?acc=" + access.Account + "&consumers=true&config=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var jsz struct {
		AccountDetails []struct {
			Streams []struct {
				Name      string           `json:"name"`
				Consumers []map[string]any `json:"consumer_detail"`
			} `json:"stream_detail"`
		} `json:"account_details"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&jsz); err != nil {
		t.Fatal(err)
	}
	var consumer map[string]any
	for _, a := range jsz.AccountDetails {
		for _, s := range a.Streams {
			for _, c := range s.Consumers {
				if s.Name == names.MailStream && c["name"] == names.Consumer {
					consumer = c
				}
			}
		}
	}
	for m, field := range externalMetrics {
		if len(where[m]) == 0 {
			t.Errorf("external metric %s is named by nothing: drop it from the list", m)
		}
		if _, ok := consumer[field]; !ok {
			t.Errorf("%s: /jsz has no field %s for consumer %s of %s (consumer %v)", m, field, names.Consumer, names.MailStream, consumer)
		}
	}

	// The worker's log: an outcome line per outcome stored, none for the
	// dead mail (its dead letter logs), no address anywhere.
	lines := workerLog.outcomeIDs(t)
	for rcpt, d := range want {
		o := outcomes.First(t, rcpt)
		n := lines[o.ID]
		if d == contracts.Dead && n != 0 || d != contracts.Dead && n != 1 {
			t.Errorf("%s (%s): %d outcome lines", rcpt, d, n)
		}
	}
	if text := workerLog.String(); strings.Contains(text, "@example.org") || strings.Contains(text, "alice@") {
		t.Errorf("the worker's log holds an address:\n%s", text)
	}
}

func keysOf(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// scrape reads url and parses it.
func scrape(t *testing.T, url string) exposition {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", url, resp.StatusCode, err)
	}
	return parseExposition(t, string(body))
}

// lockedLog is a log in memory, safe for the worker's goroutines.
type lockedLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// outcomeIDs counts the "outcome" lines of the JSON log by mail id.
func (l *lockedLog) outcomeIDs(t *testing.T) map[string]int {
	t.Helper()
	n := map[string]int{}
	for line := range strings.SplitSeq(strings.TrimSpace(l.String()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("worker log line not JSON: %q", line)
		}
		if rec["msg"] == "outcome" {
			id, _ := rec["id"].(string)
			n[id]++
		}
	}
	return n
}
