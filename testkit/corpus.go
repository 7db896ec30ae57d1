package testkit

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// CorpusCase is one mail of a DKIM corpus made by another implementation
// (auth/testdata/differential, made by its gen.py with dkimpy).
type CorpusCase struct {
	// Name names the case after the RFC clause it exercises, e.g.
	// "6376-3.6.1-t=s-subdomain-i".
	Name string `json:"name"`
	// File is the mail's file name in the corpus directory.
	File string `json:"file"`
	// Want is the result RFC 6376 asks for each signature, top first, in
	// RFC 8601 words; WantReason, one per signature, is text the
	// verifier's reason must contain ("" for any).
	Want       []string `json:"want"`
	WantReason []string `json:"want_reason"`
	// DKIMPy is what the signing implementation says of each signature,
	// and DKIMPyDetail its messages.
	DKIMPy       []string `json:"dkimpy"`
	DKIMPyDetail []string `json:"dkimpy_detail"`
	// Note says why Want and DKIMPy differ, where they do.
	Note string `json:"note"`
	// Raw is the mail, read from File.
	Raw []byte `json:"-"`
	// Deviation, when not nil, is what mailscope says instead of Want,
	// from the corpus's deviations.json, written by hand.
	Deviation *Deviation `json:"-"`
}

// Deviation is a known difference between mailscope's results for a
// corpus case and those RFC 6376 asks for.
type Deviation struct {
	// Result and Reason are mailscope's results and reason substrings,
	// one per signature.
	Result []string `json:"result"`
	Reason []string `json:"reason"`
	// Why says where the difference comes from.
	Why string `json:"why"`
}

// Expected returns the results, and reason substrings, a test of
// mailscope must see: Want and WantReason, or the Deviation's.
func (c *CorpusCase) Expected() (results, reasons []string) {
	if c.Deviation != nil {
		return c.Deviation.Result, c.Deviation.Reason
	}
	return c.Want, c.WantReason
}

// TXT is one TXT record of a corpus's zone, its strings joined.
type TXT struct {
	Name  string
	TTL   uint32
	Value string
}

// Corpus is a DKIM corpus: its mails and the DNS zone of their keys.
type Corpus struct {
	// Signer names the implementation that signed the mails.
	Signer string       `json:"signer"`
	Cases  []CorpusCase `json:"cases"`
	Zone   []TXT        `json:"-"`
}

// LoadCorpus reads the corpus in dir: cases.json, each case's mail, the
// zone file zone.txt (TXT records only) and, when there is one,
// deviations.json (an object of Deviation by case name).
func LoadCorpus(dir string) (*Corpus, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cases.json"))
	if err != nil {
		return nil, fmt.Errorf("testkit: corpus: %w", err)
	}
	var c Corpus
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("testkit: corpus: cases.json: %w", err)
	}
	devs := map[string]*Deviation{}
	switch b, err := os.ReadFile(filepath.Join(dir, "deviations.json")); {
	case err == nil:
		if err := json.Unmarshal(b, &devs); err != nil {
			return nil, fmt.Errorf("testkit: corpus: deviations.json: %w", err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("testkit: corpus: %w", err)
	}
	for i := range c.Cases {
		cc := &c.Cases[i]
		if d, ok := devs[cc.Name]; ok {
			if len(d.Result) != len(cc.Want) || len(d.Reason) != len(cc.Want) {
				return nil, fmt.Errorf("testkit: corpus: deviation %s: %d results, %d reasons, want %d", cc.Name, len(d.Result), len(d.Reason), len(cc.Want))
			}
			cc.Deviation = d
			delete(devs, cc.Name)
		}
		if len(cc.Want) == 0 || len(cc.WantReason) != len(cc.Want) || len(cc.DKIMPy) != len(cc.Want) {
			return nil, fmt.Errorf("testkit: corpus: case %s: want %d results, %d reasons, dkimpy %d",
				cc.Name, len(cc.Want), len(cc.WantReason), len(cc.DKIMPy))
		}
		if cc.Raw, err = os.ReadFile(filepath.Join(dir, cc.File)); err != nil {
			return nil, fmt.Errorf("testkit: corpus: %w", err)
		}
	}
	if len(devs) > 0 {
		return nil, fmt.Errorf("testkit: corpus: deviations for %v, which are no cases", slices.Sorted(maps.Keys(devs)))
	}
	f, err := os.Open(filepath.Join(dir, "zone.txt"))
	if err != nil {
		return nil, fmt.Errorf("testkit: corpus: %w", err)
	}
	defer f.Close()
	zp := dns.NewZoneParser(f, ".", "zone.txt")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		txt, isTXT := rr.(*dns.TXT)
		if !isTXT {
			return nil, fmt.Errorf("testkit: corpus: zone.txt: %s is not a TXT record", rr.Header().Name)
		}
		c.Zone = append(c.Zone, TXT{Name: txt.Hdr.Name, TTL: txt.Hdr.Ttl, Value: strings.Join(txt.Txt, "")})
	}
	if err := zp.Err(); err != nil {
		return nil, fmt.Errorf("testkit: corpus: %w", err)
	}
	return &c, nil
}
