package rules

import (
	"fmt"
	"strings"
	"testing"
)

// benchRules returns the rule text of a flag: n rules of mixed scope kinds
// that mostly do not match, so Eval walks most of them, then a default.
func benchRules(flag string, n int, value string) string {
	var b strings.Builder
	for i := n - 1; i >= 1; i-- {
		var sc string
		switch i % 8 {
		case 0:
			sc = fmt.Sprintf(`mail_header:Subject:(?i)\[campaign-%d\]`, i%13)
		case 1:
			sc = fmt.Sprintf(`rcpt:@tenant%d\.example$`, i%11)
		case 2:
			sc = fmt.Sprintf("dkim:signer%d.example", i%7)
		case 3:
			sc = "trust:strong&env:prod"
		case 4:
			sc = fmt.Sprintf("sender_percent:%d.5", i%5)
		case 5:
			sc = fmt.Sprintf("env:region-%d", i%9)
		case 6:
			sc = fmt.Sprintf("release:v1.%d.0", i%17)
		case 7:
			sc = fmt.Sprintf(`mail_header:X-Mailer:^Bulk%d&rcpt:^ops@`, i%5)
		}
		fmt.Fprintf(&b, "%s %d %s\n", sc, i, value)
	}
	fmt.Fprintf(&b, "default 0 %s\n", value)
	return b.String()
}

func benchSnapshot(b *testing.B) (*Snapshot, []string) {
	const flags, rulesTotal = 50, 1000
	texts := make(map[string]string, flags)
	var names []string
	for _, f := range Known() {
		v := f.Default
		if f.Type == TypeString {
			v = "x"
		}
		texts[f.Name] = benchRules(f.Name, rulesTotal/flags, v)
		names = append(names, f.Name)
	}
	for i := len(names); i < flags; i++ {
		n := fmt.Sprintf("bench.flag%02d", i)
		texts[n] = benchRules(n, rulesTotal/flags, "value")
		names = append(names, n)
	}
	s := snap(b, texts)
	total := 0
	for _, n := range names {
		total += len(s.RuleSet(n).Rules)
	}
	if len(names) != flags || total != rulesTotal {
		b.Fatalf("%d flags, %d rules", len(names), total)
	}
	return s, names
}

func benchFacts() *Facts {
	return &Facts{
		Headers: headers(
			"Subject", "=?UTF-8?B?w5xiZXIgZGllIE5ldWlna2VpdGVu?= weekly digest",
			"X-Mailer", "Postfix",
			"Received", "from mx1.example.net by mx2.example.org",
			"Received", "from client.example.com by mx1.example.net",
		),
		Rcpts:      []string{"alice@customer.example", "bob@customer.example"},
		From:       "newsletter@sender.example",
		DKIMPass:   []string{"sender.example"},
		DKIMKnown:  true,
		Trust:      TrustWeak,
		TrustKnown: true,
		Env:        "staging",
		Release:    "v2.0.0",
	}
}

// BenchmarkEval evaluates all 50 flags (1,000 rules) for one mail per op.
// "fresh" starts each op with an empty memo, as a new mail does; "memo"
// keeps the memo of the same mail. ns/flag is the cost per consulted flag.
func BenchmarkEval(b *testing.B) {
	s, names := benchSnapshot(b)
	for _, mode := range []string{"fresh", "memo"} {
		b.Run(mode, func(b *testing.B) {
			f := benchFacts()
			s.Eval(names[0], f) // allocate the memo once
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if mode == "fresh" {
					clear(f.memo)
				}
				for _, n := range names {
					s.Eval(n, f)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(names)), "ns/flag")
		})
	}
}

// BenchmarkHeadersFromFields is the per-mail cost of building Facts.Headers.
func BenchmarkHeadersFromFields(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		benchFacts()
	}
}

// BenchmarkParse parses one key of 20 mixed rules.
func BenchmarkParse(b *testing.B) {
	text := []byte(benchRules(FlagHandler, 20, "quarantine"))
	b.SetBytes(int64(len(text)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(FlagHandler, 1, text); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNewSnapshot builds a snapshot of 50 flags and 1,000 rules, as
// the Store does on every change.
func BenchmarkNewSnapshot(b *testing.B) {
	s, names := benchSnapshot(b)
	sets := make(map[string]*RuleSet, len(names))
	for _, n := range names {
		sets[n] = s.RuleSet(n)
	}
	b.ReportAllocs()
	for b.Loop() {
		NewSnapshot(sets)
	}
}
