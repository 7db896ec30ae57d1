package auth

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/miekg/dns"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/mailscope/mailscope/contracts"
)

// Words of the rcode attribute when no answer came back.
const (
	rcodeTimeout = "timeout" // the query timed out
	rcodeError   = "error"   // any other failure to get an answer
)

// instruments are the package's instruments, recorded through the global
// OpenTelemetry MeterProvider (see package telemetry). Each Resolver makes
// them (a Verifier uses its Resolver's), so they record into the provider
// installed when it was made.
type instruments struct {
	results  metric.Int64Counter
	queries  metric.Int64Counter
	duration metric.Float64Histogram
	lookups  metric.Int64Counter
	// hit, miss and words (by DKIM result word) are the options of the
	// counts made for every mail, made once so that counting allocates
	// nothing (not even the variadic slice).
	hit, miss []metric.AddOption
	words     map[string][]metric.AddOption
}

func newMetrics() *instruments {
	m := otel.Meter("github.com/mailscope/mailscope/auth")
	ms := &instruments{
		hit:   addOptions(attribute.String("result", "hit")),
		miss:  addOptions(attribute.String("result", "miss")),
		words: map[string][]metric.AddOption{},
	}
	for _, w := range []string{contracts.ResultPass, contracts.ResultFail, contracts.ResultNeutral, contracts.ResultPolicy,
		contracts.ResultTempError, contracts.ResultPermError, contracts.ResultNone} {
		ms.words[w] = addOptions(attribute.String("result", w))
	}
	ms.results, _ = m.Int64Counter("mailscope.dkim.results",
		metric.WithDescription("DKIM signatures verified, by RFC 8601 result (pass, fail, policy, neutral, temperror, permerror; none for a mail without a signature)"))
	ms.queries, _ = m.Int64Counter("mailscope.dns.queries",
		metric.WithDescription("DNS queries sent to a server, by the answer's rcode (NOERROR, NXDOMAIN, SERVFAIL, ...) or timeout or error when none came back"))
	ms.duration, _ = m.Float64Histogram("mailscope.dns.query.duration",
		metric.WithUnit("s"), metric.WithDescription("time of one DNS query to one server, by rcode as mailscope.dns.queries"))
	ms.lookups, _ = m.Int64Counter("mailscope.dns.cache.lookups",
		metric.WithDescription("key lookups of the resolver's cache: hit (an answer, a negative answer or a remembered failure) or miss (a query follows, or joins one in flight)"))
	return ms
}

// dkimResult counts one verified signature's result word, one of the
// seven made in newMetrics (classify and check return no other).
func (ms *instruments) dkimResult(ctx context.Context, word string) {
	ms.results.Add(ctx, 1, ms.words[word]...)
}

// addOptions is the options of a measurement with attrs.
func addOptions(attrs ...attribute.KeyValue) []metric.AddOption {
	return []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(attrs...))}
}

// query records one query sent to a server at start, with its answer or
// its error.
func (ms *instruments) query(ctx context.Context, start time.Time, resp *dns.Msg, err error) {
	attrs := metric.WithAttributes(attribute.String("rcode", rcodeOf(resp, err)))
	ms.queries.Add(ctx, 1, attrs)
	ms.duration.Record(ctx, time.Since(start).Seconds(), attrs)
}

// systemQuery records one lookup by the system resolver at start, which
// reports no rcode: NOERROR, NXDOMAIN (not found), timeout or error.
func (ms *instruments) systemQuery(ctx context.Context, start time.Time, err error) {
	rcode := dns.RcodeToString[dns.RcodeSuccess]
	var de *net.DNSError
	switch {
	case err == nil:
	case errors.As(err, &de) && de.IsNotFound:
		rcode = dns.RcodeToString[dns.RcodeNameError]
	default:
		rcode = rcodeOf(nil, err)
	}
	attrs := metric.WithAttributes(attribute.String("rcode", rcode))
	ms.queries.Add(ctx, 1, attrs)
	ms.duration.Record(ctx, time.Since(start).Seconds(), attrs)
}

// cacheLookup counts one lookup of the cache.
func (ms *instruments) cacheLookup(ctx context.Context, hit bool) {
	if hit {
		ms.lookups.Add(ctx, 1, ms.hit...)
	} else {
		ms.lookups.Add(ctx, 1, ms.miss...)
	}
}

// rcodeOf is the rcode word of an answer, or timeout or error without one.
func rcodeOf(resp *dns.Msg, err error) string {
	var ne net.Error
	switch {
	case err == nil && resp != nil:
		if s, ok := dns.RcodeToString[resp.Rcode]; ok {
			return s
		}
		return rcodeError
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return rcodeTimeout
	}
	return rcodeError
}
