package workers

import (
	"crypto"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/keyserver"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/testkit"
)

// Key names: the selectors under which setupPipeline publishes the keys
// for example.com.
const (
	selRSA = "s1"
	selEd  = "ed"
)

// testKeys are generated once per test binary: RSA generation is slow.
var testKeys = sync.OnceValues(func() (map[string]crypto.Signer, error) {
	m := make(map[string]crypto.Signer)
	for sel, alg := range map[string]string{selRSA: testkit.AlgRSA, selEd: testkit.AlgEd25519} {
		k, err := testkit.GenerateKey(alg, 2048)
		if err != nil {
			return nil, err
		}
		m[sel] = k
	}
	return m, nil
})

// pipeBundle is a Pipeline whose DKIM keys are served by its own key
// server on loopback.
type pipeBundle struct {
	ks   *keyserver.Server
	p    *Pipeline
	keys map[string]crypto.Signer // by selector, all for example.com
}

// setupPipeline starts a key server publishing the test keys for
// example.com and returns a pipeline asking it. cfg is amended: its DNS
// servers, a quiet logger and a worker name.
func setupPipeline(t testing.TB, cfg Config) *pipeBundle {
	t.Helper()
	ks, err := keyserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	keys, err := testKeys()
	if err != nil {
		t.Fatal(err)
	}
	for sel, k := range keys {
		txt, err := testkit.TXTRecord(k)
		if err != nil {
			t.Fatal(err)
		}
		ks.SetTXT(testkit.DNSName(sel, "example.com"), 300, txt)
	}
	cfg.Auth.DNSServers = []string{ks.Addr()}
	if cfg.Auth.Timeout == 0 {
		cfg.Auth.Timeout = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Name == "" {
		cfg.Name = "test-worker"
	}
	return &pipeBundle{ks: ks, p: NewPipeline(cfg), keys: keys}
}

// sign signs raw as example.com with the key of selector sel.
func (b *pipeBundle) sign(t testing.TB, raw []byte, sel string) []byte {
	t.Helper()
	out, err := testkit.Sign(raw, testkit.SignOptions{Domain: "example.com", Selector: sel, Key: b.keys[sel]})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// snapshotOf parses the rule text of each flag (revisions from 1, in
// flag-name order) into one snapshot.
func snapshotOf(t testing.TB, texts map[string]string) *rules.Snapshot {
	t.Helper()
	sets := make(map[string]*rules.RuleSet, len(texts))
	var rev uint64
	for _, f := range slices.Sorted(maps.Keys(texts)) {
		rev++
		rs, err := rules.Parse(f, rev, []byte(texts[f]))
		if err != nil {
			t.Fatal(err)
		}
		sets[f] = rs
	}
	return rules.NewSnapshot(sets)
}

var testDate = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)

// envelope returns the envelope of a mail with the given id to rcpt.
func envelope(id, rcpt string) contracts.Envelope {
	return contracts.Envelope{
		ID:         id,
		MailFrom:   "alice@example.com",
		RcptTo:     []string{rcpt},
		ReceivedAt: testDate,
		Protocol:   "smtp",
	}
}

// plainMail is a one-part UTF-8 mail from alice@example.com to rcpt.
func plainMail(rcpt, subject, body string) []byte {
	return testkit.SampleMail("Alice <alice@example.com>", rcpt, subject, body, testDate,
		strings.ReplaceAll(rcpt, "@", ".")+"@example.com")
}

// crlf joins lines with CRLF, ending in CRLF.
func crlf(lines ...string) []byte {
	return []byte(strings.Join(lines, "\r\n") + "\r\n")
}
