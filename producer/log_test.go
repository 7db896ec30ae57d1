package producer_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/mailscope/mailscope/producer"
)

// jsonLog is a JSON log in memory, safe for the producer's goroutines.
type jsonLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *jsonLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// records returns every record; all is the raw text.
func (l *jsonLog) records(t *testing.T) (recs []map[string]any, all string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for line := range strings.SplitSeq(strings.TrimSpace(l.b.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not JSON: %q: %v", line, err)
		}
		recs = append(recs, rec)
	}
	return recs, l.b.String()
}

// TestMailLogLines: at debug, a stored mail is one "mail stored" line
// with its id and recipient count and no address; each refusal of a mail
// is one warning with its code and cause; at info only the refusals are
// logged.
func TestMailLogLines(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelDebug, slog.LevelInfo} {
		t.Run(level.String(), func(t *testing.T) {
			var log jsonLog
			b := setupWith(t, options{producer: producer.Config{MaxSize: 64 << 10, MaxDataLine: 1000,
				Logger: slog.New(slog.NewJSONHandler(&log, &slog.HandlerOptions{Level: level}))}})

			if err := b.sendSMTP(t, "alice@example.com", []string{"bob@example.org", "carol@example.net"}, sample("bob@example.org")); err != nil {
				t.Fatal(err)
			}
			msg, _ := b.last(t)
			wantReply(t, "over size", b.sendSMTP(t, "alice@example.com", []string{"bob@example.org"}, mailOfSize(t, 64<<10+1)), 552, smtp.EnhancedCode{5, 3, 4})
			long := []byte("From: alice@example.com\r\nSubject: long\r\n\r\n" + strings.Repeat("x", 2000) + "\r\n")
			wantReply(t, "long line", b.sendSMTP(t, "alice@example.com", []string{"bob@example.org"}, long), 554, smtp.EnhancedCode{5, 6, 0})
			c, _ := b.dial(t, false, "client.test")
			if err := c.Mail("alice@example.com", nil); err != nil {
				t.Fatal(err)
			}
			wantReply(t, "bad recipient", c.Rcpt("bob@exa<mple.org", nil), 553, smtp.EnhancedCode{5, 1, 3})
			c.Close()

			recs, all := log.records(t)
			var stored []map[string]any
			refused := map[string]float64{}
			for _, r := range recs {
				switch r["msg"] {
				case "mail stored":
					stored = append(stored, r)
				case "mail refused":
					if r["level"] != "WARN" {
						t.Errorf("refusal at %v", r["level"])
					}
					refused[r["why"].(string)] = r["code"].(float64)
				}
			}
			wantRefused := map[string]float64{"too_large": 552, "line_too_long": 554, "bad_recipient": 553}
			if len(refused) != len(wantRefused) {
				t.Errorf("refusals %v, want %v", refused, wantRefused)
			}
			for why, code := range wantRefused {
				if refused[why] != code {
					t.Errorf("refusal %s logged with code %v, want %v (all %v)", why, refused[why], code, refused)
				}
			}
			if level > slog.LevelDebug {
				if len(stored) != 0 {
					t.Errorf("at %s, stored mail logged: %v", level, stored)
				}
				return
			}
			if len(stored) != 1 {
				t.Fatalf("%d mail stored lines, want 1:\n%s", len(stored), all)
			}
			s := stored[0]
			if s["level"] != "DEBUG" || s["id"] != msg.Header.Get("Nats-Msg-Id") || s["seq"] != float64(msg.Sequence) ||
				s["rcpts"] != 2.0 || s["size"] != float64(len(msg.Data)) || s["protocol"] != "smtp" {
				t.Errorf("stored line %v; want id %s seq %d, 2 recipients, %d bytes", s, msg.Header.Get("Nats-Msg-Id"), msg.Sequence, len(msg.Data))
			}
			for _, addr := range []string{"alice@", "bob@", "carol@", "exa<mple"} {
				if strings.Contains(all, addr) {
					t.Errorf("the log holds %q:\n%s", addr, all)
				}
			}
		})
	}
}
