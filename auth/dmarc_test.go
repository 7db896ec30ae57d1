package auth

import (
	"fmt"
	"testing"
	"time"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/keyserver"
)

func TestDMARC(t *testing.T) {
	b := setup(t, Config{Timeout: 100 * time.Millisecond, Retries: -1})
	b.ks.SetTXT("_dmarc.example.com", 300, "v=DMARC1; p=reject; sp=quarantine; pct=50; adkim=s; rua=mailto:d@example.com")
	b.ks.SetTXT("_dmarc.plain.example", 300, "v=DMARC1; p=none")
	b.ks.SetTXT("_dmarc.bad.example", 300, "v=DMARC1; p=maybe")
	b.ks.SetTXT("_dmarc.other.example", 300, "some=thing-else")
	b.ks.SetTXT("_dmarc.slow.example", 300, "v=DMARC1; p=reject")
	b.ks.SetFault("_dmarc.slow.example", keyserver.FaultTimeout)
	b.ks.SetTXT("_dmarc.sf.example", 300, "v=DMARC1; p=reject")
	b.ks.SetFault("_dmarc.sf.example", keyserver.FaultServFail)

	pct := func(n int) *int { return &n }
	for _, tc := range []struct {
		from string
		want contracts.DMARCPolicy
	}{
		{"Example.COM", contracts.DMARCPolicy{Domain: "example.com", Status: "found", RecordDomain: "example.com",
			Policy: "reject", SubdomainPolicy: "quarantine", EffectivePolicy: "reject", Percent: pct(50), DKIMAlignment: "s"}},
		{"news.example.com", contracts.DMARCPolicy{Domain: "news.example.com", Status: "found", RecordDomain: "example.com",
			Policy: "reject", SubdomainPolicy: "quarantine", EffectivePolicy: "quarantine", Percent: pct(50), DKIMAlignment: "s"}},
		{"mail.plain.example", contracts.DMARCPolicy{Domain: "mail.plain.example", Status: "found", RecordDomain: "plain.example",
			Policy: "none", EffectivePolicy: "none", Percent: pct(100), DKIMAlignment: "r"}},
		{"nodmarc.example", contracts.DMARCPolicy{Domain: "nodmarc.example", Status: "none"}},
		{"other.example", contracts.DMARCPolicy{Domain: "other.example", Status: "none"}},
		{"co.uk", contracts.DMARCPolicy{Domain: "co.uk", Status: "none"}},
		{"bad.example", contracts.DMARCPolicy{Domain: "bad.example", Status: "permerror", RecordDomain: "bad.example"}},
		{"slow.example", contracts.DMARCPolicy{Domain: "slow.example", Status: "temperror"}},
		{"sf.example", contracts.DMARCPolicy{Domain: "sf.example", Status: "temperror"}},
	} {
		got := b.v.DMARC(t.Context(), tc.from)
		if got == nil {
			t.Errorf("%s: nil policy", tc.from)
			continue
		}
		if (tc.want.Status == "permerror" || tc.want.Status == "temperror") != (got.Reason != "") {
			t.Errorf("%s: status %s with reason %q", tc.from, got.Status, got.Reason)
		}
		g := *got
		g.Reason = ""
		if !samePolicy(g, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.from, fmtPolicy(g), fmtPolicy(tc.want))
		}
	}
	if p := b.v.DMARC(t.Context(), ""); p != nil {
		t.Errorf("empty From domain: %+v, want nil", p)
	}
	// Answers are cached like key records.
	before := b.ks.Queries("_dmarc.example.com")
	b.v.DMARC(t.Context(), "example.com")
	if after := b.ks.Queries("_dmarc.example.com"); after != before {
		t.Errorf("DMARC lookup not cached: %d queries, then %d", before, after)
	}
}

func samePolicy(a, b contracts.DMARCPolicy) bool {
	ap, bp := a.Percent, b.Percent
	a.Percent, b.Percent = nil, nil
	return a == b && (ap == nil) == (bp == nil) && (ap == nil || *ap == *bp)
}

func fmtPolicy(p contracts.DMARCPolicy) string {
	pct := "nil"
	if p.Percent != nil {
		pct = fmt.Sprint(*p.Percent)
	}
	p.Percent = nil
	return fmt.Sprintf("%+v pct=%s", p, pct)
}
