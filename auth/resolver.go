package auth

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"time"

	"github.com/miekg/dns"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/singleflight"
)

// SystemTTL is how long answers of the system resolver are cached, since
// it does not report TTLs.
const SystemTTL = 60 * time.Second

// ednsSize is the UDP payload size advertised in queries (the DNS flag day
// 2020 value); larger answers come truncated and are asked again over TCP.
const ednsSize = 1232

// Resolver looks up DKIM key records. It asks the configured DNS servers
// in order (UDP, then TCP when the answer is truncated), caches answers
// for their TTL (and negative answers too), remembers a failed lookup for
// [Config.FailureTTL], and sends at most one query per name at a time:
// concurrent lookups of a name share it. It is safe for concurrent use;
// the worker owns one and shares it between mails.
type Resolver struct {
	cfg    Config
	udp    *dns.Client
	tcp    *dns.Client
	cache  *cache
	group  singleflight.Group
	tracer trace.Tracer
	met    *instruments
}

// NewResolver returns a resolver configured by cfg (see [Config] for the
// defaults).
func NewResolver(cfg Config) *Resolver {
	cfg = cfg.withDefaults()
	return &Resolver{
		cfg:    cfg,
		udp:    &dns.Client{Net: "udp", Timeout: cfg.Timeout, UDPSize: ednsSize},
		tcp:    &dns.Client{Net: "tcp", Timeout: cfg.Timeout},
		cache:  newCache(cfg.CacheSize),
		tracer: cfg.TracerProvider.Tracer(tracerName),
		met:    newMetrics(),
	}
}

// LookupTXT returns the TXT records of name, one string per record with
// its character-strings joined, as go-msgauth expects of
// dkim.VerifyOptions.LookupTXT.
//
// When the name does not exist or has no TXT record the error wraps
// [ErrNotFound]. When no server answered, or ctx ended first, the error is
// a bare *[TempError], a net.Error whose Temporary() is true. A failure
// other than ctx's is cached for [Config.FailureTTL]: until then, lookups
// of name return the same *TempError without a query.
//
// A query already in flight for name is joined rather than repeated; it
// runs to its own timeouts even if ctx ends, so that other callers waiting
// on it are not cut short.
func (r *Resolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	key := dns.CanonicalName(name)
	if err := ctx.Err(); err != nil {
		return nil, &TempError{Name: key, Err: err}
	}
	e, ok := r.cache.get(key, r.cfg.Now())
	r.met.cacheLookup(ctx, ok)
	if ok {
		return slices.Clone(e.txts), e.err
	}
	ctx, span := r.startLookup(ctx, key)
	txts, shared, err := r.lookup(ctx, key)
	endLookup(span, shared, err)
	return txts, err
}

// lookup is LookupTXT past the cache: it asks, or joins the query in
// flight for key, and reports whether it joined one.
func (r *Resolver) lookup(ctx context.Context, key string) ([]string, bool, error) {
	ch := r.group.DoChan(key, func() (any, error) {
		// A flight for key may have ended between this caller's cache
		// miss and here: its answer is cached, and is not asked again.
		if e, ok := r.cache.get(key, r.cfg.Now()); ok {
			return e, nil
		}
		e, err := r.query(context.WithoutCancel(ctx), key)
		if err != nil {
			if r.cfg.FailureTTL > 0 {
				r.cache.put(&entry{name: key, err: err, expires: r.cfg.Now().Add(r.cfg.FailureTTL)})
			}
			return nil, err
		}
		r.cache.put(e)
		return e, nil
	})
	select {
	case <-ctx.Done():
		return nil, false, &TempError{Name: key, Err: ctx.Err()}
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Shared, res.Err
		}
		e := res.Val.(*entry)
		return slices.Clone(e.txts), res.Shared, e.err
	}
}

// query asks for the TXT records of name and returns them (or a permanent
// error) as a cache entry, or a *TempError.
func (r *Resolver) query(ctx context.Context, name string) (*entry, error) {
	if len(r.cfg.DNSServers) == 0 {
		return r.querySystem(ctx, name)
	}
	var lastErr error
	var lastServer string
	for _, server := range r.cfg.DNSServers {
		lastServer = server
		resp, err := r.exchange(ctx, name, server)
		if err != nil {
			lastErr = err
			continue
		}
		e, err := parseAnswer(name, resp, r.cfg.Now())
		if err != nil {
			lastErr = err
			continue
		}
		return e, nil
	}
	return nil, &TempError{Name: name, Server: lastServer, Err: lastErr}
}

// exchange sends the query to one server over UDP, repeating it on
// timeout up to Retries times, and over TCP when the answer is truncated.
func (r *Resolver) exchange(ctx context.Context, name, server string) (*dns.Msg, error) {
	q := new(dns.Msg)
	q.SetQuestion(name, dns.TypeTXT)
	q.SetEdns0(ednsSize, false)
	var (
		resp *dns.Msg
		err  error
	)
	for range r.cfg.Retries + 1 {
		start := time.Now()
		resp, _, err = r.udp.ExchangeContext(ctx, q, server)
		r.met.query(ctx, start, resp, err)
		var ne net.Error
		if err == nil || !errors.As(err, &ne) || !ne.Timeout() {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	if resp.Truncated {
		start := time.Now()
		resp, _, err = r.tcp.ExchangeContext(ctx, q, server)
		r.met.query(ctx, start, resp, err)
		if err != nil {
			return nil, fmt.Errorf("over tcp: %w", err)
		}
	}
	return resp, nil
}

// querySystem asks the system resolver.
func (r *Resolver) querySystem(ctx context.Context, name string) (*entry, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	start := time.Now()
	txts, err := net.DefaultResolver.LookupTXT(ctx, name)
	r.met.systemQuery(ctx, start, err)
	e := &entry{name: name, txts: txts, expires: r.cfg.Now().Add(SystemTTL)}
	var de *net.DNSError
	switch {
	case err == nil && len(txts) == 0:
		e.err = fmt.Errorf("auth: lookup %s: %w", name, ErrNotFound)
	case err == nil:
	case errors.As(err, &de) && de.IsNotFound:
		e.err = fmt.Errorf("auth: lookup %s: %w (%v)", name, ErrNotFound, err)
	default:
		return nil, &TempError{Name: name, Err: err}
	}
	return e, nil
}
