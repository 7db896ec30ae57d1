package auth

import (
	"bytes"
	"crypto"
	"errors"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/dkim"
	"github.com/mailscope/mailscope/testkit"
)

// benchMail is an 8 KiB mail signed with one signature by key ("rsa" is
// rsa-2048), whose record the key server publishes.
func benchMail(b *testing.B, bd *bundle, key string) []byte {
	body := strings.Repeat(strings.Repeat("x", 78)+"\n", 8192/80)
	bd.publish(b, "sel", "example.com", key)
	return bd.sign(b, mail(body), "sel", "example.com", key)
}

// rawOptions are go-msgauth's options with a map for DNS: plain
// dkim.VerifyWithOptions, the baseline of the overhead benchmarks.
func rawOptions(b *testing.B, k crypto.Signer) *dkim.VerifyOptions {
	rec, err := testkit.TXTRecord(k)
	if err != nil {
		b.Fatal(err)
	}
	records := map[string]string{testkit.DNSName("sel", "example.com"): rec}
	return &dkim.VerifyOptions{LookupTXT: func(name string) ([]string, error) {
		if r, ok := records[name]; ok {
			return []string{r}, nil
		}
		return nil, errors.New("not found")
	}}
}

// BenchmarkVerify is Verifier.Verify with a warm cache; compare with
// BenchmarkVerifyRaw for the overhead over bare go-msgauth, or run
// BenchmarkVerifyOverhead, which measures both in the same loop.
func BenchmarkVerify(b *testing.B) {
	bd := setup(b, Config{})
	raw := benchMail(b, bd, "rsa")
	if res, err := bd.v.Verify(b.Context(), raw); err != nil || res.Signatures[0].Result != "pass" {
		b.Fatalf("%+v %v", res, err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bd.v.Verify(b.Context(), raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyRaw is dkim.VerifyWithOptions with a map for DNS.
func BenchmarkVerifyRaw(b *testing.B) {
	bd := setup(b, Config{})
	raw := benchMail(b, bd, "rsa")
	opts := rawOptions(b, bd.keys["rsa"])
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		vs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), opts)
		if err != nil || vs[0].Err != nil {
			b.Fatal(err, vs[0].Err)
		}
	}
}

// BenchmarkVerifyOverhead runs, in each iteration and on the same mail,
// plain dkim.VerifyWithOptions (a map for DNS), Verifier.Verify (warm
// cache), and the whole verify stage as the worker runs it (Verify, the
// DMARC lookup, Trust and the Authentication-Results value), timing each
// call and rotating their order, so that machine noise hits all three
// alike. It reports the time of each and the overhead over plain
// go-msgauth in percent.
func BenchmarkVerifyOverhead(b *testing.B) {
	for _, key := range []string{"rsa", "ed"} {
		b.Run(key, func(b *testing.B) {
			bd := setup(b, Config{})
			raw := benchMail(b, bd, key)
			bd.ks.SetTXT("_dmarc.example.com", 300, "v=DMARC1; p=reject")
			opts := rawOptions(b, bd.keys[key])
			ctx := b.Context()
			stage := func() error {
				res, err := bd.v.Verify(ctx, raw)
				if err != nil {
					return err
				}
				_ = bd.v.DMARC(ctx, "example.com")
				_ = Trust(res, "example.com", AlignRelaxed, func(string) bool { return true })
				_ = AuthenticationResults("", res, "")
				return nil
			}
			if err := stage(); err != nil { // warm the cache
				b.Fatal(err)
			}
			plain := func() {
				vs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), opts)
				if err != nil || vs[0].Err != nil {
					b.Fatal(err, vs[0].Err)
				}
			}
			verify := func() {
				res, err := bd.v.Verify(ctx, raw)
				if err != nil || res.Signatures[0].Result != "pass" {
					b.Fatal(err, res)
				}
			}
			timed := func(f func()) time.Duration {
				t0 := time.Now()
				f()
				return time.Since(t0)
			}
			var tRaw, tVerify, tStage time.Duration
			for i := 0; b.Loop(); i++ {
				// Rotate the order, so that none of the three always runs
				// first (on colder caches) or last.
				for j := range 3 {
					switch (i + j) % 3 {
					case 0:
						tRaw += timed(plain)
					case 1:
						tVerify += timed(verify)
					case 2:
						tStage += timed(func() {
							if err := stage(); err != nil {
								b.Fatal(err)
							}
						})
					}
				}
			}
			n := float64(b.N)
			b.ReportMetric(float64(tRaw.Nanoseconds())/n, "raw-ns/op")
			b.ReportMetric(float64(tVerify.Nanoseconds())/n, "verify-ns/op")
			b.ReportMetric(float64(tStage.Nanoseconds())/n, "stage-ns/op")
			b.ReportMetric(100*(float64(tVerify)/float64(tRaw)-1), "verify-overhead-%")
			b.ReportMetric(100*(float64(tStage)/float64(tRaw)-1), "stage-overhead-%")
		})
	}
}

// BenchmarkVerifyUnsigned is the cost of an unsigned mail: a header scan.
func BenchmarkVerifyUnsigned(b *testing.B) {
	bd := setup(b, Config{})
	raw := mail(strings.Repeat(strings.Repeat("x", 78)+"\n", 8192/80))
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bd.v.Verify(b.Context(), raw); err != nil {
			b.Fatal(err)
		}
	}
}

// largeMail is a 30 MiB mail signed by key "ed" with canonicalization c
// ("relaxed" or "simple" for header and body).
func largeMail(b *testing.B, bd *bundle, c string) []byte {
	line := strings.Repeat("abcdefghij", 7) + "  \t x\r\n"
	body := strings.Repeat(line, 30<<20/len(line))
	signed, err := testkit.Sign(mail(body), testkit.SignOptions{Domain: "example.com", Selector: "sel",
		Key: bd.keys["ed"], HeaderCanon: c, BodyCanon: c})
	if err != nil {
		b.Fatal(err)
	}
	return signed
}

// heapObjects is the runtime/metrics name of the bytes of heap objects,
// live or not yet collected.
const heapObjects = "/memory/classes/heap/objects:bytes"

// peakHeap runs f while sampling the heap every 100µs and returns the
// largest heap seen, in bytes. The heap is collected before f runs.
func peakHeap(f func()) uint64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: heapObjects}}
	read := func() uint64 { metrics.Read(sample); return sample[0].Value.Uint64() }
	var peak atomic.Uint64
	peak.Store(read())
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		s := []metrics.Sample{{Name: heapObjects}}
		tick := time.NewTicker(100 * time.Microsecond)
		defer tick.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	f()
	close(stop)
	wg.Wait()
	if v := read(); v > peak.Load() {
		peak.Store(v)
	}
	return peak.Load()
}

// BenchmarkVerifyLarge verifies a 30 MiB mail with Verifier.Verify and,
// for comparison, with plain dkim.VerifyWithOptions on a bytes.Reader. Besides
// B/op (all bytes allocated per verification, garbage included) it
// reports the peak heap during one verification, mail included, sampled
// every 100µs after a collection, in MiB and as a multiple of the mail's
// size (target: under 3).
func BenchmarkVerifyLarge(b *testing.B) {
	bd := setup(b, Config{})
	bd.publish(b, "sel", "example.com", "ed")
	opts := rawOptions(b, bd.keys["ed"])
	for _, c := range []string{"relaxed", "simple"} {
		raw := largeMail(b, bd, c)
		for _, how := range []string{"Verify", "plain"} {
			b.Run(c+"/"+how, func(b *testing.B) {
				verify := func() {
					if how == "plain" {
						vs, err := dkim.VerifyWithOptions(bytes.NewReader(raw), opts)
						if err != nil || vs[0].Err != nil {
							b.Fatal(err, vs[0].Err)
						}
						return
					}
					res, err := bd.v.Verify(b.Context(), raw)
					if err != nil || res.Signatures[0].Result != "pass" {
						b.Fatal(err, res.Signatures)
					}
				}
				verify() // warm the cache
				b.SetBytes(int64(len(raw)))
				b.ReportAllocs()
				var peak uint64
				for b.Loop() {
					peak = max(peak, peakHeap(verify))
				}
				b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
				b.ReportMetric(float64(peak)/float64(len(raw)), "peak/size")
			})
		}
	}
}
