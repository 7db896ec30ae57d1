package dev_test

import (
	"testing"

	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/dev"
	"github.com/mailscope/mailscope/keyserver"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/testkit"
	"github.com/mailscope/mailscope/workers"
)

// TestDNSLookupSpans: each key lookup that misses the cache is a "dns
// TXT" client span naming the record. A key whose DNS server answers
// SERVFAIL ends its span as an error of type temperror (the mail is held
// for DNS meanwhile); a key that does not exist ends it as not_found,
// not an error, and the mail is decided with dkim=permerror by the rules
// in force.
func TestDNSLookupSpans(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { tp.Shutdown(t.Context()) })
	b := setupDev(t, dev.Config{Worker: workers.Config{TracerProvider: tp}})
	b.putRules(t, rules.FlagHandler, "rcpt:^missing@ 10 quarantine\n")
	broken := newKey(t, "ed25519", b.keys, "broken", "example.com")
	b.keys.SetFault(testkit.DNSName("broken", "example.com"), keyserver.FaultServFail)

	lookup := func(name string) sdktrace.ReadOnlySpan {
		t.Helper()
		var found sdktrace.ReadOnlySpan
		systest.WaitFor(t, "the lookup span of "+name, func() bool {
			for _, s := range rec.Ended() {
				if s.Name() == "dns TXT" && attrString(s, "dns.question.name") == name {
					found = s
					return true
				}
			}
			return false
		})
		return found
	}

	b.sendSMTP(t, mail(t, "servfail@example.org", "servfail", broken, "example.com", "broken"), "servfail@example.org")
	s := lookup(testkit.DNSName("broken", "example.com") + ".")
	if r, typ := attrString(s, "mailscope.dns.result"), attrString(s, "error.type"); r != "temperror" || typ != "temperror" || s.Status().Code != codes.Error {
		t.Errorf("SERVFAIL lookup span: result %q, error.type %q, status %v; want temperror, temperror, Error", r, typ, s.Status())
	}

	missing, err := testkit.GenerateKey("ed25519", 0)
	if err != nil {
		t.Fatal(err)
	}
	b.sendSMTP(t, mail(t, "missing@example.org", "no such key", missing, "example.com", "nokey"), "missing@example.org")
	o := b.outcomes.First(t, "missing@example.org")
	wantDKIM(t, o, "example.com", "nokey", "ed25519-sha256", contracts.ResultPermError)
	wantDisposition(t, o, contracts.Quarantined, "quarantine")
	s = lookup(testkit.DNSName("nokey", "example.com") + ".")
	if r := attrString(s, "mailscope.dns.result"); r != "not_found" || s.Status().Code == codes.Error {
		t.Errorf("NXDOMAIN lookup span: result %q, status %v; want not_found, not an error", r, s.Status())
	}
}

// attrString is the string value of attribute key of s, "" if absent.
func attrString(s sdktrace.ReadOnlySpan, key string) string {
	for _, a := range s.Attributes() {
		if string(a.Key) == key {
			return a.Value.AsString()
		}
	}
	return ""
}
