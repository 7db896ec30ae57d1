package dev_test

import (
	"context"
	"errors"
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/mailscope/mailscope/auth"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/keyserver"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/telemetry"
	"github.com/mailscope/mailscope/testkit"
	"github.com/mailscope/mailscope/version"
	"github.com/mailscope/mailscope/workers"
)

// exposition is one scrape of /metrics, parsed.
type exposition map[string]*dto.MetricFamily

// scrapeMetrics reads and parses /metrics of srv.
func scrapeMetrics(t *testing.T, srv *telemetry.Server) exposition {
	t.Helper()
	resp, err := http.Get("http://" + srv.Addr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %v", resp.StatusCode, err)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

// matches reports whether m has every label of want; a label wanted
// with the empty value must be absent.
func matches(m *dto.Metric, want map[string]string) bool {
	have := map[string]string{}
	for _, l := range m.GetLabel() {
		have[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// value sums the series of family name that have the labels of want: a
// counter's or gauge's value, a histogram's count.
func (e exposition) value(name string, want map[string]string) float64 {
	var sum float64
	for _, m := range e[name].GetMetric() {
		if !matches(m, want) {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

// bucket is the cumulative count of the bucket le of the histogram series
// of name with the labels of want.
func (e exposition) bucket(name string, want map[string]string, le float64) uint64 {
	var n uint64
	for _, m := range e[name].GetMetric() {
		if !matches(m, want) || m.Histogram == nil {
			continue
		}
		for _, b := range m.GetHistogram().GetBucket() {
			if b.GetUpperBound() == le {
				n += b.GetCumulativeCount()
			}
		}
	}
	return n
}

// labels makes a label set of name, value pairs.
func labels(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

// moved is what one series of a family is expected to have moved by.
type moved struct {
	labels map[string]string
	by     float64
}

// TestMetricsAfterKnownSequence runs the whole system with the telemetry
// endpoint, rules in the bucket and the test's DNS server, sends a known
// sequence of mail (a good signed mail, one whose DKIM fails, one a
// mail.reject rule rejects, one retried once by its handler, one
// dead-lettered, one whose key server never answers) with two refused
// rule keys (a typo'd flag name and a value that does not parse) in the
// bucket, and checks that every counter and histogram on /metrics moved
// by exactly what that sequence makes, that histograms in seconds have
// the agreed buckets, and that the runtime, process, build and resource
// series are there.
func TestMetricsAfterKnownSequence(t *testing.T) {
	srv, err := telemetry.Start("127.0.0.1:0", telemetry.ServiceName("dev"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })

	// The handler of the rule "rcpt:^h- quarantine": asks once for a retry
	// of h-retry@, refuses h-bad@ as unprocessable.
	var mu sync.Mutex
	calls := map[string]int{}
	publish := workers.Handlers(64 << 10)["publish"]
	picky := workers.HandlerFunc(func(ctx context.Context, m *workers.Mail, dryRun bool) (workers.HandlerResult, error) {
		rcpt := m.Env.RcptTo[0]
		mu.Lock()
		calls[rcpt]++
		n := calls[rcpt]
		mu.Unlock()
		switch {
		case strings.HasPrefix(rcpt, "h-retry@") && n == 1:
			return workers.HandlerResult{}, workers.RetryLater(errors.New("backend busy"), 10*time.Millisecond)
		case strings.HasPrefix(rcpt, "h-bad@"):
			return workers.HandlerResult{}, workers.Unprocessable(errors.New("no list address in the mail"))
		}
		return publish.Handle(ctx, m, dryRun)
	})
	// A DNS failure waits BackoffBase (an hour) for its retry: the mail
	// whose key server never answers is tried once within the test.
	b := setup(t, workers.Config{
		MaxAttempts: 5, BackoffBase: time.Hour, BackoffMax: time.Hour,
		Handlers: map[string]workers.Handler{"quarantine": picky},
		Auth:     auth.Config{Timeout: 100 * time.Millisecond, Retries: -1},
	})
	b.keys.SetNegativeTTL(300) // the no-DMARC answer stays cached for the whole test
	dead := newKey(t, "ed25519", b.keys, "dead", "example.com")
	b.keys.SetFault(testkit.DNSName("dead", "example.com"), keyserver.FaultTimeout)

	rejectRev := b.putRules(t, rules.FlagReject, "rcpt:^reject@ 10 blocked by rule\n")
	handlerRev := b.putRules(t, rules.FlagHandler, "rcpt:^h- 10 quarantine\ndefault 0 publish\n")
	if _, err := b.kv.PutString(t.Context(), "mail.handlr", "default 0 discard\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.kv.PutString(t.Context(), rules.FlagDryRun, "default 0 maybe\n"); err != nil {
		t.Fatal(err)
	}
	b.waitStore(t, "two refused keys", func(s *rules.Store) bool { return len(s.Problems()) == 2 })

	before := scrapeMetrics(t, srv)

	// The sequence, one mail at a time, so that which lookup finds the
	// cache filled is known.
	good := mail(t, "good@example.org", "good", b.rsaKey, "example.com", "s1")
	b.sendSMTP(t, good, "good@example.org")
	wantDKIM(t, b.outcomes.First(t, "good@example.org"), "example.com", "s1", "rsa-sha256", contracts.ResultPass)

	failed := mail(t, "fail@example.org", "fail", b.rsaKey, "example.com", "s1")
	failed = []byte(strings.Replace(string(failed), "Hello fail@", "Hello FAIL@", 1))
	b.sendSMTP(t, failed, "fail@example.org")
	wantDKIM(t, b.outcomes.First(t, "fail@example.org"), "example.com", "s1", "rsa-sha256", contracts.ResultFail)

	b.sendSMTP(t, mail(t, "reject@example.org", "reject", nil, "", ""), "reject@example.org")
	if o := b.outcomes.First(t, "reject@example.org"); o.Disposition != contracts.Rejected || o.Reason != "blocked by rule" {
		t.Fatalf("reject@: %s %q, want rejected by the rule", o.Disposition, o.Reason)
	}

	b.sendSMTP(t, mail(t, "h-retry@example.org", "retry", b.edKey, "partner.example", "ed"), "h-retry@example.org")
	if o := b.outcomes.First(t, "h-retry@example.org"); o.Disposition != contracts.Processed || o.Attempt != 2 {
		t.Fatalf("h-retry@: %s at attempt %d, want processed at attempt 2", o.Disposition, o.Attempt)
	}

	b.sendSMTP(t, mail(t, "h-bad@example.org", "bad", b.edKey, "partner.example", "ed"), "h-bad@example.org")
	if o := b.outcomes.First(t, "h-bad@example.org"); o.Disposition != contracts.Dead {
		t.Fatalf("h-bad@: %s, want dead", o.Disposition)
	}

	b.sendSMTP(t, mail(t, "dns@example.org", "dns timeout", dead, "example.com", "dead"), "dns@example.org")

	// A refusal: an address the contracts refuse gets 553.
	refuseAddress(t, b.sys.SMTPAddr)

	// Every delivery is settled once messaging.process.duration has all
	// seven (the retried mail twice).
	var after exposition
	systest.WaitFor(t, "seven deliveries settled and the refusal counted", func() bool {
		after = scrapeMetrics(t, srv)
		return after.value("messaging_process_duration_seconds", nil)-before.value("messaging_process_duration_seconds", nil) >= 7 &&
			after.value("mailscope_producer_replies_total", labels("code", "553")) >= 1
	})

	smtpL := func(kv ...string) map[string]string { return labels(append([]string{"protocol", "smtp"}, kv...)...) }
	process := func(kv ...string) map[string]string {
		return labels(append([]string{"messaging_system", "nats", "messaging_operation_name", "process",
			"messaging_destination_name", "mail.incoming", "messaging_consumer_group_name", "workers", "error_type", ""}, kv...)...)
	}
	expect := map[string][]moved{
		// Counters.
		"mailscope_producer_mails_total":   {{smtpL("result", "stored"), 6}},
		"mailscope_producer_replies_total": {{smtpL("code", "250"), 6}, {smtpL("code", "553"), 1}},
		"mailscope_dkim_results_total": {
			{labels("result", "pass"), 4}, // good, h-retry twice, h-bad
			{labels("result", "fail"), 1},
			{labels("result", "none"), 1}, // reject@ is unsigned
			{labels("result", "temperror"), 1},
		},
		"mailscope_dns_queries_total": {
			{labels("rcode", "NOERROR"), 2},  // s1._domainkey.example.com, ed._domainkey.partner.example
			{labels("rcode", "NXDOMAIN"), 1}, // _dmarc.example.com
			{labels("rcode", "timeout"), 1},  // dead._domainkey.example.com
		},
		"mailscope_dns_cache_lookups_total": {
			{labels("result", "miss"), 4}, // the four names, once each
			// fail@: key, DMARC; reject@: DMARC; h-retry@: DMARC, then key and
			// DMARC; h-bad@: key, DMARC.
			{labels("result", "hit"), 8},
		},
		"mailscope_mail_outcomes_total":           {{labels("disposition", "processed"), 3}, {labels("disposition", "rejected"), 1}},
		"mailscope_mail_outcome_duplicates_total": nil,
		"mailscope_mail_failures_total": {
			{labels("class", "transient", "action", "retry"), 1},
			{labels("class", "malformed", "action", "dead"), 1},
			{labels("class", "dns", "action", "retry"), 1},
		},
		"mailscope_mail_retries_total":      {{labels("class", "transient"), 1}, {labels("class", "dns"), 1}},
		"mailscope_mail_redelivered_total":  {{nil, 1}},
		"mailscope_mail_dead_letters_total": {{labels("class", "malformed"), 1}},
		// Histograms (their counts).
		"mailscope_producer_publish_duration_seconds": {{smtpL(), 6}},
		"mailscope_dns_query_duration_seconds": {
			{labels("rcode", "NOERROR"), 2}, {labels("rcode", "NXDOMAIN"), 1}, {labels("rcode", "timeout"), 1},
		},
		"mailscope_mail_processing_duration_seconds": {{labels("disposition", "processed"), 3}, {labels("disposition", "rejected"), 1}},
		"messaging_process_duration_seconds": {
			{process(), 4}, // without error.type: good, fail, reject, h-retry's second attempt
			{process("error_type", "transient"), 1},
			{process("error_type", "malformed"), 1},
			{process("error_type", "dns"), 1},
		},
	}
	for name, want := range expect {
		var total float64
		for _, w := range want {
			total += w.by
			if got := after.value(name, w.labels) - before.value(name, w.labels); got != w.by {
				t.Errorf("%s%v moved by %v, want %v", name, w.labels, got, w.by)
			}
		}
		// Nothing else moved: no other label values.
		if got := after.value(name, nil) - before.value(name, nil); got != total {
			t.Errorf("%s moved by %v in all, want %v", name, got, total)
		}
	}
	// The real DNS server saw exactly the queries the metric counts.
	queries := 0
	for _, name := range []string{testkit.DNSName("s1", "example.com"), testkit.DNSName("ed", "partner.example"),
		"_dmarc.example.com", testkit.DNSName("dead", "example.com")} {
		queries += b.keys.Queries(name)
	}
	if queries != 4 {
		t.Errorf("the DNS server got %d queries, want 4", queries)
	}
	// A timed-out query took at least its timeout (100ms).
	if n := after.bucket("mailscope_dns_query_duration_seconds", labels("rcode", "timeout"), 0.05); n != 0 {
		t.Errorf("%d timed-out queries within 50ms", n)
	}

	// Gauges.
	for _, g := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"mailscope_rules_refused_keys", labels("cause", "unknown_flag"), 1},
		{"mailscope_rules_refused_keys", labels("cause", "parse"), 1},
		{"mailscope_rules_key_revision", labels("flag", rules.FlagReject), float64(rejectRev)},
		{"mailscope_rules_key_revision", labels("flag", rules.FlagHandler), float64(handlerRev)},
		{"mailscope_worker_ready", nil, 1},
		{"mailscope_build_info", labels("version", version.Version), 1},
		{"target_info", labels("service_name", "mailscope-dev", "service_version", version.Version), 1},
	} {
		if got := after.value(g.name, g.labels); got != g.want {
			t.Errorf("%s%v = %v, want %v", g.name, g.labels, got, g.want)
		}
	}
	// Only flags with rules in force have a revision: not mail.dry_run
	// (its only value does not parse), not the typo mail.handlr.
	var flags []string
	for _, m := range after["mailscope_rules_key_revision"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "flag" {
				flags = append(flags, l.GetValue())
			}
		}
	}
	slices.Sort(flags)
	if want := []string{rules.FlagHandler, rules.FlagReject}; !slices.Equal(flags, want) {
		t.Errorf("mailscope_rules_key_revision has flags %v, want %v", flags, want)
	}
	if _, ok := after["mailscope_rules_invalid_keys"]; ok {
		t.Error("mailscope_rules_invalid_keys is still exported")
	}

	// Every histogram in seconds has the agreed buckets.
	seconds := 0
	for name, f := range after {
		if f.GetType() != dto.MetricType_HISTOGRAM || !strings.HasSuffix(name, "_seconds") || strings.HasPrefix(name, "go_") {
			continue
		}
		seconds++
		for _, m := range f.GetMetric() {
			var bounds []float64
			for _, bk := range m.GetHistogram().GetBucket() {
				if !math.IsInf(bk.GetUpperBound(), 1) {
					bounds = append(bounds, bk.GetUpperBound())
				}
			}
			if !slices.Equal(bounds, telemetry.DurationBuckets) {
				t.Errorf("%s%v buckets %v, want %v", name, m.GetLabel(), bounds, telemetry.DurationBuckets)
			}
		}
	}
	if seconds < 4 { // publish, DNS, processing, messaging.process
		t.Errorf("only %d histograms in seconds", seconds)
	}
	for _, prefix := range []string{"go_", "process_"} {
		n := 0
		for name := range after {
			if strings.HasPrefix(name, prefix) {
				n++
			}
		}
		if n == 0 {
			t.Errorf("no %s* series", prefix)
		}
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "process_resident_memory_bytes"} {
		if after[name] == nil {
			t.Errorf("%s missing", name)
		}
	}
	bi := after["mailscope_build_info"].GetMetric()
	if len(bi) != 1 {
		t.Fatalf("mailscope_build_info %v", bi)
	}
	for _, l := range []string{"version", "revision", "go_version"} {
		if !slices.ContainsFunc(bi[0].GetLabel(), func(p *dto.LabelPair) bool { return p.GetName() == l && p.GetValue() != "" }) {
			t.Errorf("mailscope_build_info lacks %s: %v", l, bi[0].GetLabel())
		}
	}

	mu.Lock()
	defer mu.Unlock()
	for rcpt, want := range map[string]int{"h-retry@example.org": 2, "h-bad@example.org": 1} {
		if calls[rcpt] != want {
			t.Errorf("%s: the handler ran %d times, want %d", rcpt, calls[rcpt], want)
		}
	}
}

// refuseAddress opens an SMTP transaction whose sender the producer
// refuses (553) and quits.
func refuseAddress(t *testing.T, addr string) {
	t.Helper()
	c, err := smtp.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("metrics.test"); err != nil {
		t.Fatal(err)
	}
	var se *smtp.SMTPError
	if err := c.Mail(`"x<>"@example.com`, nil); !errors.As(err, &se) || se.Code != 553 {
		t.Fatalf("MAIL FROM a bad address: %v, want 553", err)
	}
	if err := c.Quit(); err != nil {
		t.Fatalf("quit: %v", err)
	}
}
