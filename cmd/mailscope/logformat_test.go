package main

import (
	"bufio"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/telemetry"
)

// firstLine starts the binary, waits for its first line on standard
// error that contains want, returns it and stops the binary.
func firstLine(t *testing.T, env []string, want string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), binary, args...)
	cmd.Env = environ(t, env)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), want) {
				lines <- sc.Text()
				return
			}
		}
	}()
	select {
	case line, ok := <-lines:
		if !ok {
			t.Fatalf("mailscope %s ended without a line containing %q", strings.Join(args, " "), want)
		}
		return line
	case <-time.After(wait):
		t.Fatalf("mailscope %s printed no line containing %q within %v", strings.Join(args, " "), want, wait)
	}
	return ""
}

// TestLogFormat: the producer logs JSON by default, text when
// MAILSCOPE_LOG_FORMAT says so, and --log-format wins over the variable.
func TestLogFormat(t *testing.T) {
	srv := natsServer(t)
	args := []string{"producer", "--nats", srv.URL, "--nats-nkey", srv.Keys.SeedFile(access.Producer), "--smtp", "127.0.0.1:0", "--lmtp", "-"}
	isJSON := func(t *testing.T, line string) {
		t.Helper()
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not a JSON line: %q: %v", line, err)
		}
		if rec["msg"] != "producer listening" || rec["level"] != "INFO" || rec["smtp"] == "" {
			t.Errorf("record %v", rec)
		}
	}
	t.Run("default json", func(t *testing.T) {
		isJSON(t, firstLine(t, nil, "producer listening", args...))
	})
	t.Run("env text", func(t *testing.T) {
		line := firstLine(t, []string{"MAILSCOPE_LOG_FORMAT=text"}, "producer listening", args...)
		if !strings.HasPrefix(line, "time=") || !strings.Contains(line, `level=INFO msg="producer listening" smtp=127.0.0.1:`) {
			t.Errorf("not a text line: %q", line)
		}
	})
	t.Run("flag wins", func(t *testing.T) {
		isJSON(t, firstLine(t, []string{"MAILSCOPE_LOG_FORMAT=text"}, "producer listening", append(args, "--log-format", "json")...))
	})
}

// TestLogFormatRefused: an unknown format is a usage error, from the flag
// and from the variable.
func TestLogFormatRefused(t *testing.T) {
	for _, tc := range []struct {
		env  []string
		args []string
	}{
		{args: []string{"producer", "--log-format", "xml"}},
		{args: []string{"worker", "--log-format", "xml"}},
		{args: []string{"dev", "--log-format", "xml"}},
		{env: []string{"MAILSCOPE_LOG_FORMAT=xml"}, args: []string{"worker"}},
	} {
		r := run(t, "", tc.env, nil, tc.args...)
		if r.code != 2 || !strings.Contains(r.stderr, `"xml"`) {
			t.Errorf("%v %v: exit %d, want 2 naming \"xml\"; stderr %q", tc.env, tc.args, r.code, r.stderr)
		}
	}
}

// TestLogFormatDefaults: text for dev, JSON for the other commands; the
// help of each long-running command shows its default.
func TestLogFormatDefaults(t *testing.T) {
	t.Setenv("MAILSCOPE_LOG_FORMAT", "")
	if f := startLogFormat("dev"); f != telemetry.LogText {
		t.Errorf("dev starts with %s", f)
	}
	for _, cmd := range []string{"producer", "worker", "flags", "publish"} {
		if f := startLogFormat(cmd); f != telemetry.LogJSON {
			t.Errorf("%s starts with %s", cmd, f)
		}
	}
	t.Setenv("MAILSCOPE_LOG_FORMAT", "text")
	if f := startLogFormat("worker"); f != telemetry.LogText {
		t.Errorf("worker with MAILSCOPE_LOG_FORMAT=text starts with %s", f)
	}
	for cmd, def := range map[string]string{"dev": "text", "producer": "json", "worker": "json"} {
		r := run(t, "", nil, nil, cmd, "-h")
		if r.code != 0 || !strings.Contains(r.stderr, "-log-format") || !strings.Contains(r.stderr, `(default `+def+`)`) {
			t.Errorf("%s -h: exit %d, no --log-format with default %s:\n%s", cmd, r.code, def, r.stderr)
		}
	}
}
