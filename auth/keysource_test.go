package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/mailscope/mailscope/testkit"
)

// mapKeys is a KeySource backed by a map, counting lookups.
type mapKeys struct {
	mu      sync.Mutex
	records map[string]string
	err     error
	lookups int
}

func (m *mapKeys) LookupKey(_ context.Context, name string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lookups++
	if m.err != nil {
		return "", m.err
	}
	if r, ok := m.records[KeyName(name)]; ok {
		return r, nil
	}
	return "", fmt.Errorf("map: %s: %w", name, ErrNotFound)
}

func TestKeySource(t *testing.T) {
	src := &mapKeys{records: map[string]string{}}
	b := setup(t, Config{KeySource: src})
	rec, err := testkit.TXTRecord(b.keys["ed"])
	if err != nil {
		t.Fatal(err)
	}
	src.records["staging._domainkey.example.com"] = rec
	b.publish(t, "dns", "example.com", "rsa")

	t.Run("key only in the source passes, without DNS", func(t *testing.T) {
		_, s := verifyOne(t, b.v, b.sign(t, mail("hi\n"), "Staging", "Example.com", "ed"))
		if s.Result != "pass" {
			t.Errorf("got %+v", s)
		}
		if n := b.ks.Queries(testkit.DNSName("staging", "example.com")); n != 0 {
			t.Errorf("%d DNS queries for a key the source has", n)
		}
	})
	t.Run("key not in the source is looked up in DNS", func(t *testing.T) {
		_, s := verifyOne(t, b.v, b.sign(t, mail("hi\n"), "dns", "example.com", "rsa"))
		if s.Result != "pass" {
			t.Errorf("got %+v", s)
		}
	})
	t.Run("key in neither is permerror", func(t *testing.T) {
		_, s := verifyOne(t, b.v, b.sign(t, mail("hi\n"), "nowhere", "example.com", "rsa"))
		if s.Result != "permerror" || !strings.Contains(s.Reason, "NXDOMAIN") {
			t.Errorf("got %+v", s)
		}
	})
	t.Run("a deleted key applies to the next mail", func(t *testing.T) {
		delete(src.records, "staging._domainkey.example.com")
		_, s := verifyOne(t, b.v, b.sign(t, mail("hi\n"), "staging", "example.com", "ed"))
		if s.Result != "permerror" {
			t.Errorf("got %+v", s)
		}
	})
	t.Run("a failing source is temperror", func(t *testing.T) {
		src.err = errors.New("nats: timeout")
		defer func() { src.err = nil }()
		res, s := verifyOne(t, b.v, b.sign(t, mail("hi\n"), "dns", "example.com", "rsa"))
		if s.Result != "temperror" || !strings.Contains(s.Reason, "nats: timeout") || !res.TempError {
			t.Errorf("got %+v (TempError %v)", s, res.TempError)
		}
	})
}

func TestKeyName(t *testing.T) {
	for in, want := range map[string]string{
		"sel._domainkey.example.com":   "sel._domainkey.example.com",
		"Sel._DomainKey.Example.COM.":  "sel._domainkey.example.com",
		"s-1.sub._domainkey.mail.test": "s-1.sub._domainkey.mail.test",
	} {
		if got := KeyName(in); got != want {
			t.Errorf("KeyName(%q) = %q, want %q", in, got, want)
		}
	}
}
