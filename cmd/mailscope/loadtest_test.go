package main

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/loadtest"
)

// TestLoadtestProcs runs the whole instrument on a tiny corpus (40 mails,
// 2 domains, 1024-bit RSA for speed, each mail sent 5 times per phase)
// with the system as separate processes: nothing lost or duplicated,
// every process used CPU, every outcome as the corpus says, and the JSON
// report decodes. It checks the bookkeeping, never speed.
func TestLoadtestProcs(t *testing.T) {
	const corpus, count = 40, 200
	dir := t.TempDir()
	jsonPath := filepath.Join(dir, "report.json")
	r := run(t, dir, nil, nil, "loadtest", "--procs", "--binary", binary, "--corpus", "40", "--domains", "2", "--rsa-bits", "1024",
		"--count", "200", "--clients", "4", "--lmtp-clients", "2", "--ceiling-time", "0", "--json", jsonPath)
	t.Log("\n" + r.stdout)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	b, err := os.ReadFile(jsonPath)
	if err != nil {
		t.Fatal(err)
	}
	var m loadtest.Measurement
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m.Mode != "procs" || m.Corpus == nil || m.Corpus.Mails != corpus || m.Verify == nil || m.JetStream == nil || m.Closed == nil || m.Open == nil {
		t.Fatalf("report lacks a part: %s", b)
	}
	if m.JetStream.PublishPerSec <= 0 || m.JetStream.ConsumePerSec <= 0 || m.Verify.CPUPerMail <= 0 || m.Verify.PerSec <= 0 {
		t.Errorf("ceilings %+v %+v", m.JetStream, m.Verify)
	}
	// Each DKIM result as often as the corpus's composition says, times
	// the sends of each mail.
	want := loadtest.ExpectedDKIM(m.Corpus.Kinds)
	if !maps.Equal(m.Verify.Results, want) {
		t.Errorf("bare verification: %v, want %v", m.Verify.Results, want)
	}
	for k := range want {
		want[k] *= count / corpus
	}
	cpu := map[string]int64{}
	for _, ph := range []*loadtest.Phase{m.Closed, m.Open} {
		rep := ph.Report
		if rep.Accepted != count || rep.Completed != count || rep.Missing != 0 || rep.DuplicateOutcomes != 0 || rep.Unexpected != 0 {
			t.Errorf("%s loop: accepted %d, completed %d, lost %d, duplicated %d, unexpected %d; want %d, %d, 0, 0, 0",
				ph.Name, rep.Accepted, rep.Completed, rep.Missing, rep.DuplicateOutcomes, rep.Unexpected, count, count)
		}
		if !maps.Equal(rep.DKIM, want) || rep.Dispositions[string(contracts.Processed)] != count {
			t.Errorf("%s loop: dkim %v, dispositions %v; want %v, all %d processed", ph.Name, rep.DKIM, rep.Dispositions, want, count)
		}
		if rep.EndToEnd.N != count || rep.EndToEnd.P50 <= 0 || rep.EndToEnd.P50 > rep.EndToEnd.P999 || rep.EndToEnd.P999 > rep.EndToEnd.Max {
			t.Errorf("%s loop: end to end %+v", ph.Name, rep.EndToEnd)
		}
		if ph.Ratios.AllCPUVsVerify <= 0 || ph.Ratios.EndToEndVsVerify <= 0 || ph.Ratios.EndToEndVsPublish <= 0 {
			t.Errorf("%s loop: ratios %+v", ph.Name, ph.Ratios)
		}
		for _, p := range ph.CPU {
			cpu[p.Name] += int64(p.CPU)
		}
	}
	if !m.Open.Report.OpenLoop || m.Open.Report.Rate <= 0 {
		t.Errorf("open loop: %+v", m.Open.Report)
	}
	for _, name := range []string{"loadtest", "server", "producer", "worker"} {
		if cpu[name] <= 0 {
			t.Errorf("%s used no CPU (%v)", name, cpu)
		}
	}
	if !strings.Contains(r.stdout, "verdict      ok") {
		t.Errorf("no ok verdict in the text report")
	}
}

// TestLoadtestFlagsRefused: contradictory or impossible flags are usage
// errors, before anything starts.
func TestLoadtestFlagsRefused(t *testing.T) {
	for _, args := range [][]string{
		{"--dev", "--procs"},
		{"--dev", "--smtp", "127.0.0.1:2525"},
		{"--rsa-bits", "512"},
		{"--closed=false"},
		{"--closed=false", "--open=false"},
		{"--corpus", "0"},
		{"--worker-args", "--concurrency 2", "--dev"},
		{"--batch-min", "2", "--procs"},
		{"--key-bucket", "k"},
		{"--rate", "-1"},
		{"--atomic", "--dev"}, // gone: the mail stream always takes atomic batches
		{"--group-commit=false", "--smtp", "127.0.0.1:2525"},
	} {
		r := run(t, "", nil, nil, append([]string{"loadtest"}, args...)...)
		if r.code != 2 {
			t.Errorf("loadtest %q: exit %d, want 2 (%s)", args, r.code, r.stderr)
		}
	}
}

// TestServerHelp: the server command documents itself.
func TestServerHelp(t *testing.T) {
	r := run(t, "", nil, nil, "server", "-h")
	if r.code != 0 || !strings.Contains(r.stderr, "sync_interval: always") || !strings.Contains(r.stderr, "-data-dir") {
		t.Errorf("server -h: exit %d\n%s", r.code, r.stderr)
	}
}
