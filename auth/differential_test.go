package auth

import (
	"strings"
	"testing"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/testkit"
)

// differentialDir holds a corpus signed by dkimpy, an implementation
// independent of go-msgauth, with its DNS zone; gen.py there made it and
// says how.
const differentialDir = "testdata/differential"

// TestDifferential verifies every mail of the dkimpy corpus, with its
// keys served by a DNS server on loopback, and checks each signature's
// result against the one RFC 6376 asks for. Where dkimpy says otherwise
// the case's note says why, and the RFC's result is the one checked;
// where mailscope does, the corpus's deviations.json says why, and
// mailscope's own result is checked, so that a change that fixes one
// fails here until its entry is removed.
func TestDifferential(t *testing.T) {
	c, err := testkit.LoadCorpus(differentialDir)
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, Config{})
	for _, r := range c.Zone {
		b.ks.SetTXT(r.Name, r.TTL, r.Value)
	}
	// The two verdicts the corpus was first made to pin must be in it.
	for _, name := range []string{"6376-3.6.1-t=s-subdomain-i", "6376-6.1.3-l=-larger-than-body"} {
		if !hasCase(c, name) {
			t.Errorf("the corpus lacks case %s", name)
		}
	}
	disagree := 0
	for _, cc := range c.Cases {
		t.Run(cc.Name, func(t *testing.T) {
			res, err := b.v.Verify(t.Context(), cc.Raw)
			if err != nil {
				t.Fatal(err)
			}
			wantResults(t, res.Signatures, cc)
		})
		if strings.Join(cc.Want, ",") != strings.Join(cc.DKIMPy, ",") {
			disagree++
		}
	}
	t.Logf("%d cases signed by %s; dkimpy and RFC 6376 disagree on %d (the RFC's result is checked)", len(c.Cases), c.Signer, disagree)
}

// wantResults checks the result of every signature of a corpus case.
func wantResults(t *testing.T, got []contracts.DKIMResult, cc testkit.CorpusCase) {
	t.Helper()
	want, reasons := cc.Expected()
	if cc.Deviation != nil {
		t.Logf("known deviation: RFC 6376 asks for %v; %s", cc.Want, cc.Deviation.Why)
	}
	if len(got) != len(want) {
		t.Fatalf("%d results %+v, want %d", len(got), got, len(want))
	}
	for i, g := range got {
		if g.Result != want[i] {
			t.Errorf("signature %d (s=%s): %s (%s), want %s (dkimpy: %s %s; note: %s)",
				i, g.Selector, g.Result, g.Reason, want[i], cc.DKIMPy[i], cc.DKIMPyDetail[i], cc.Note)
		}
		if !strings.Contains(g.Reason, reasons[i]) {
			t.Errorf("signature %d: reason %q, want it to contain %q", i, g.Reason, reasons[i])
		}
		if (g.Result == contracts.ResultPass) != (g.Reason == "") {
			t.Errorf("signature %d: %s with reason %q: only a pass has none", i, g.Result, g.Reason)
		}
	}
}

func hasCase(c *testkit.Corpus, name string) bool {
	for _, cc := range c.Cases {
		if cc.Name == name {
			return true
		}
	}
	return false
}
