package auth

import (
	"crypto"
	"sync"
	"testing"
	"time"

	"github.com/mailscope/mailscope/keyserver"
	"github.com/mailscope/mailscope/testkit"
)

// Keys are generated once per test binary: RSA generation is slow.
var keys = sync.OnceValues(func() (map[string]crypto.Signer, error) {
	m := make(map[string]crypto.Signer)
	for _, k := range []struct{ name, alg string }{
		{"rsa", "rsa"}, {"rsa2", "rsa"}, {"ed", "ed25519"},
	} {
		s, err := testkit.GenerateKey(k.alg, 0)
		if err != nil {
			return nil, err
		}
		m[k.name] = s
	}
	return m, nil
})

// bundle is what setup returns: a key server on loopback and a verifier
// whose resolver asks it.
type bundle struct {
	ks   *keyserver.Server
	cfg  Config
	res  *Resolver
	v    *Verifier
	keys map[string]crypto.Signer
}

// setup starts a key server and builds a verifier against it. cfg is
// amended: DNSServers is set to the key server unless already set.
func setup(t testing.TB, cfg Config) *bundle {
	t.Helper()
	ks, err := keyserver.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ks.Close() })
	ks2, err := keys()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DNSServers == nil {
		cfg.DNSServers = []string{ks.Addr()}
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = time.Second
	}
	r := NewResolver(cfg)
	return &bundle{ks: ks, cfg: cfg, res: r, v: NewVerifier(cfg, r), keys: ks2}
}

// publish puts the record of key name under selector sel of domain.
func (b *bundle) publish(t testing.TB, sel, domain, key string) {
	t.Helper()
	rec, err := testkit.TXTRecord(b.keys[key])
	if err != nil {
		t.Fatal(err)
	}
	b.ks.SetTXT(testkit.DNSName(sel, domain), 300, rec)
}

// sign signs raw with key name as sel/domain.
func (b *bundle) sign(t testing.TB, raw []byte, sel, domain, key string) []byte {
	t.Helper()
	out, err := testkit.Sign(raw, testkit.SignOptions{Domain: domain, Selector: sel, Key: b.keys[key]})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

var mailDate = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

func mail(body string) []byte {
	return testkit.SampleMail("Alice <alice@example.com>", "bob@example.org", "Hello", body, mailDate, "m1@example.com")
}
