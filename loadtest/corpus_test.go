package loadtest_test

import (
	"bytes"
	"maps"
	"math"
	"strings"
	"testing"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/loadtest"
)

// TestCorpus checks the default corpus (2,000 mails, 20 RSA-2048
// domains): its composition, its size distribution, its headers, the
// alignment of From with the signing domain, and that each mail verifies
// as its kind says.
func TestCorpus(t *testing.T) {
	cp, err := loadtest.GenerateCorpus(loadtest.CorpusConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if len(cp.Mails) != 2000 || len(cp.Domains) != 20 || len(cp.Keys) != 40 {
		t.Fatalf("%d mails, %d domains, %d keys; want 2000, 20, 40", len(cp.Mails), len(cp.Domains), len(cp.Keys))
	}
	want := map[loadtest.Kind]int{loadtest.KindRSA: 1580, loadtest.KindEd25519: 180, loadtest.KindUnsigned: 180,
		loadtest.KindTampered: 40, loadtest.KindDual: 20}
	got := cp.Composition()
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s mails: %d, want %d", k, got[k], n)
		}
	}
	s := cp.Summary()
	if s.Multipart != 420 {
		t.Errorf("multipart mails: %d, want 420 (21%%)", s.Multipart)
	}
	// Log-normal around 8 KiB, σ 1.2, clipped to 2..256 KiB: median
	// 8 KiB, mean about 16 KiB (plus the signature and Received fields,
	// about 1 KiB).
	if s.SizeMedian < 7<<10 || s.SizeMedian > 10<<10 {
		t.Errorf("median size %d, want about 8 KiB", s.SizeMedian)
	}
	if s.SizeMean < 13<<10 || s.SizeMean > 19<<10 {
		t.Errorf("mean size %.0f, want about 16 KiB", s.SizeMean)
	}
	if s.SizeMin < 2<<10 || s.SizeMax > 258<<10 {
		t.Errorf("sizes %d..%d, want within 2..256 KiB (and a signature)", s.SizeMin, s.SizeMax)
	}
	var logs []float64
	for _, m := range cp.Mails {
		logs = append(logs, math.Log(float64(len(m.Raw))))
	}
	if sd := stddev(logs); sd < 0.9 || sd > 1.3 {
		t.Errorf("σ of log sizes %.2f, want about 1.2 (a little less for the clipping)", sd)
	}

	// Zipf-like domain use: the first domain far more than the last.
	byDomain := map[string]int{}
	for _, m := range cp.Mails {
		byDomain[m.From[strings.IndexByte(m.From, '@')+1:]]++
	}
	if first, last := byDomain[cp.Domains[0]], byDomain[cp.Domains[19]]; first < 8*last || last == 0 {
		t.Errorf("domain use %d (first) vs %d (last): want about 20 times", first, last)
	}

	results := map[string]int{}
	for i, m := range cp.Mails {
		head := string(m.Raw[:bytes.Index(m.Raw, []byte("\r\n\r\n"))])
		for _, h := range []string{"\r\nReceived: ", "\r\nDate: ", "\r\nMessage-ID: <" + m.MessageID + ">", "\r\nSubject: ", "\r\nMIME-Version: 1.0"} {
			if !strings.Contains("\r\n"+head, h) {
				t.Fatalf("mail %d has no %q", i, strings.TrimSpace(h))
			}
		}
		if m.Multipart != strings.Contains(head, "multipart/mixed") || m.Multipart != bytes.Contains(m.Raw, []byte("Content-Transfer-Encoding: base64")) {
			t.Fatalf("mail %d: multipart %v but its text disagrees", i, m.Multipart)
		}
		vs, err := dkim.VerifyWithOptions(bytes.NewReader(m.Raw), &dkim.VerifyOptions{LookupTXT: cp.LookupTXT, MaxVerifications: 5})
		if err != nil {
			t.Fatal(err)
		}
		res := contracts.ResultNone
		if len(vs) > 0 {
			res = contracts.ResultPass
			if vs[0].Err != nil {
				res = contracts.ResultFail
			}
		}
		results[res]++
		if res != m.Kind.Want() {
			t.Errorf("mail %d (%s): %s, want %s", i, m.Kind, res, m.Kind.Want())
		}
		for _, v := range vs {
			if "@"+v.Domain != m.From[strings.IndexByte(m.From, '@'):] {
				t.Errorf("mail %d signed by %s, From %s: not aligned", i, v.Domain, m.From)
			}
		}
		if n := map[loadtest.Kind]int{loadtest.KindDual: 2, loadtest.KindUnsigned: 0}; len(vs) != valueOr(n, m.Kind, 1) {
			t.Errorf("mail %d (%s): %d signatures", i, m.Kind, len(vs))
		}
	}
	if !maps.Equal(results, loadtest.ExpectedDKIM(got)) {
		t.Errorf("results %v, want %v", results, loadtest.ExpectedDKIM(got))
	}
}

// TestCorpusDeterministic: the same seed makes the same mails; the
// unsigned ones byte for byte (signatures differ with the fresh keys).
func TestCorpusDeterministic(t *testing.T) {
	gen := func(seed uint64) *loadtest.Corpus {
		cp, err := loadtest.GenerateCorpus(loadtest.CorpusConfig{Seed: seed, Mails: 100, Domains: 2, RSABits: 1024})
		if err != nil {
			t.Fatal(err)
		}
		return cp
	}
	a, b, c := gen(7), gen(7), gen(8)
	same := 0
	for i := range a.Mails {
		ma, mb := a.Mails[i], b.Mails[i]
		if ma.Kind != mb.Kind || ma.MessageID != mb.MessageID || ma.From != mb.From {
			t.Fatalf("mail %d differs between two corpora of one seed", i)
		}
		if ma.Kind == loadtest.KindUnsigned && !bytes.Equal(ma.Raw, mb.Raw) {
			t.Fatalf("unsigned mail %d differs between two corpora of one seed", i)
		}
		if ma.MessageID == c.Mails[i].MessageID {
			same++
		}
	}
	if same == len(a.Mails) {
		t.Error("another seed made the same corpus")
	}
}

func TestCorpusRefused(t *testing.T) {
	for _, c := range []loadtest.CorpusConfig{
		{RSABits: 512}, {Mails: -1}, {Domains: loadtest.MaxDomains + 1}, {MinSize: 100},
	} {
		if _, err := loadtest.GenerateCorpus(c); err == nil {
			t.Errorf("GenerateCorpus(%+v) made a corpus", c)
		}
	}
}

func stddev(v []float64) float64 {
	mean := 0.0
	for _, x := range v {
		mean += x
	}
	mean /= float64(len(v))
	ss := 0.0
	for _, x := range v {
		ss += (x - mean) * (x - mean)
	}
	return math.Sqrt(ss / float64(len(v)))
}

func valueOr[K comparable](m map[K]int, k K, def int) int {
	if v, ok := m[k]; ok {
		return v
	}
	return def
}
