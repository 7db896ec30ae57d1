package loadtest_test

import (
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/dev"
	"github.com/mailscope/mailscope/loadtest"
	"github.com/mailscope/mailscope/testkit"
)

// wait bounds every wait in these tests; it is a safety net against
// hangs, never a measurement.
const wait = time.Minute

// startDev starts the whole system on free ports, quietly.
func startDev(t *testing.T) *dev.System {
	t.Helper()
	sys, err := dev.Start(t.Context(), dev.Config{
		DataDir:  t.TempDir(),
		NATSPort: -1,
		SMTPAddr: "127.0.0.1:0",
		LMTPAddr: "127.0.0.1:0",
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sys.Close)
	return sys
}

// loadTestOptions are the connection options of the load test's own
// connections to sys: the loadtest role's credentials, as the loadtest
// command gives them.
func loadTestOptions(t *testing.T, sys *dev.System) []nats.Option {
	t.Helper()
	opts, err := sys.Credentials.Options(access.LoadTest)
	if err != nil {
		t.Fatal(err)
	}
	return opts
}

// TestRunAgainstDev checks the load test's bookkeeping, never speed:
// every mail sent over SMTP and LMTP is accepted, every accepted mail has
// its outcome, signed mails verify, and the counts add up.
func TestRunAgainstDev(t *testing.T) {
	sys := startDev(t)
	key, err := testkit.GenerateKey("ed25519", 0)
	if err != nil {
		t.Fatal(err)
	}
	txt, err := testkit.TXTRecord(key)
	if err != nil {
		t.Fatal(err)
	}
	sys.Keys.SetTXT(testkit.DNSName("lt", "loadtest.example"), 300, txt)

	const clients, lmtpClients, count = 4, 2, 100
	rep, err := loadtest.Run(t.Context(), loadtest.Config{
		SMTPAddr:    sys.SMTPAddr,
		LMTPAddr:    sys.LMTPAddr,
		Clients:     clients,
		LMTPClients: lmtpClients,
		NATSURL:     sys.URL,
		NATSOptions: loadTestOptions(t, sys),
		Count:       count,
		Size:        4 << 10,
		Signer:      &loadtest.Signer{Domain: "loadtest.example", Selector: "lt", Key: key},
		Drain:       wait,
	})
	if err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	if err := rep.Write(&out); err != nil {
		t.Fatal(err)
	}
	t.Log("\n" + out.String())
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what      string
		got, want int
	}{
		{"sent", rep.Sent, count},
		{"accepted", rep.Accepted, count},
		{"refused", len(rep.Refused), 0},
		{"transport errors", rep.TransportErrors, 0},
		{"completed", rep.Completed, count},
		{"missing", rep.Missing, 0},
		{"processed", rep.Dispositions[string(contracts.Processed)], count},
		{"dkim pass", rep.DKIM[contracts.ResultPass], count},
		{"transaction samples", rep.Transaction.N, count},
		{"store samples", rep.Store.N, count},
		{"end-to-end samples", rep.EndToEnd.N, count},
		{"outcomes of refused mails", rep.OutcomesOfRefused, 0},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.what, c.got, c.want)
		}
	}
	for _, l := range []loadtest.Latency{rep.Transaction, rep.Store, rep.EndToEnd} {
		if !(l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max && l.P50 > 0) {
			t.Errorf("latency percentiles out of order: %+v", l)
		}
	}
}

// TestRunWithoutNATS measures the SMTP side alone: no outcome figures.
func TestRunWithoutNATS(t *testing.T) {
	sys := startDev(t)
	rep, err := loadtest.Run(t.Context(), loadtest.Config{SMTPAddr: sys.SMTPAddr, Clients: 2, Count: 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	if rep.Accepted != 10 || rep.Outcomes || rep.EndToEnd.N != 0 || rep.Missing != 0 {
		t.Errorf("accepted %d, outcomes %v, end-to-end samples %d, missing %d; want 10, false, 0, 0",
			rep.Accepted, rep.Outcomes, rep.EndToEnd.N, rep.Missing)
	}
}

// TestRunStopsAfterDuration: a duration alone bounds the run.
func TestRunStopsAfterDuration(t *testing.T) {
	sys := startDev(t)
	rep, err := loadtest.Run(t.Context(), loadtest.Config{SMTPAddr: sys.SMTPAddr, Clients: 2, Duration: 200 * time.Millisecond,
		NATSURL: sys.URL, NATSOptions: loadTestOptions(t, sys)})
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	if rep.Sent == 0 || rep.Completed != rep.Accepted {
		t.Errorf("sent %d, accepted %d, completed %d", rep.Sent, rep.Accepted, rep.Completed)
	}
}

func TestConfigRefused(t *testing.T) {
	for _, c := range []struct {
		name string
		cfg  loadtest.Config
		want string
	}{
		{"no address", loadtest.Config{}, "need an SMTP or an LMTP address"},
		{"remote", loadtest.Config{SMTPAddr: "192.0.2.1:25"}, "not a loopback address"},
		{"remote name", loadtest.Config{SMTPAddr: "mx.example.com:25"}, "not a loopback address"},
		{"lmtp clients without address", loadtest.Config{SMTPAddr: "127.0.0.1:25", LMTPClients: 1}, "no LMTP address"},
		{"too long", loadtest.Config{SMTPAddr: "127.0.0.1:25", Duration: 2 * time.Hour}, "over the limit"},
		{"too small", loadtest.Config{SMTPAddr: "127.0.0.1:25", Size: 100}, "under the minimum"},
		{"signer without key", loadtest.Config{SMTPAddr: "127.0.0.1:25", Signer: &loadtest.Signer{Domain: "d", Selector: "s"}}, "needs a key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := loadtest.Run(t.Context(), c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("Run: %v, want an error containing %q", err, c.want)
			}
		})
	}
}

// TestRunNothingListening: a run against a closed port ends by itself
// and reports the failure.
func TestRunNothingListening(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	rep, err := loadtest.Run(t.Context(), loadtest.Config{SMTPAddr: addr, Clients: 2, Count: 10, Timeout: wait})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Sent != 0 || rep.TransportErrors == 0 || rep.Err() == nil {
		t.Errorf("sent %d, transport errors %d, Err %v; want 0, some, an error", rep.Sent, rep.TransportErrors, rep.Err())
	}
}
