package workers

import (
	"fmt"
	"strings"
	"testing"

	"github.com/mailscope/mailscope/auth"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/testkit"
)

// benchMail is a ~8 KiB mail with a realistic header (trace fields, a
// mailer, a list id) signed with one rsa-2048 signature by example.com.
func benchMail(b *testing.B, pb *pipeBundle) []byte {
	b.Helper()
	body := strings.Repeat(strings.Repeat("x", 78)+"\n", 7600/80)
	raw := testkit.SampleMail("Alice <alice@example.com>", "bob@customer.example", "=?UTF-8?B?w5xiZXIgZGllIE5ldWlna2VpdGVu?= weekly digest",
		body, testDate, "bench.1@example.com")
	extra := crlf(
		"Received: from mx1.example.net (mx1.example.net [192.0.2.1])",
		"\tby mx2.example.org with ESMTPS id 4Xy7Qz; Thu, 26 Nov 2026 12:00:01 +0000",
		"Received: from client.example.com (client.example.com [198.51.100.7])",
		"\tby mx1.example.net with ESMTPSA id 9Ab3Cd; Thu, 26 Nov 2026 12:00:00 +0000",
		"X-Mailer: Postfix",
		"List-Id: <digest.example.com>",
	)
	raw = append(extra, raw...)
	signed := pb.sign(b, raw, selRSA)
	if n := len(signed); n < 7<<10 || n > 9<<10 {
		b.Fatalf("bench mail is %d bytes, want ~8 KiB", n)
	}
	return signed
}

// benchRules are 50 rules over the 6 known flags, of every scope kind,
// that do not match the bench mail (except the handler's default), so
// that evaluation walks all of them.
func benchRules() map[string]string {
	scope := func(i int) string {
		switch i % 8 {
		case 0:
			return fmt.Sprintf(`mail_header:Subject:(?i)\[campaign-%d\]`, i)
		case 1:
			return fmt.Sprintf(`rcpt:@tenant%d\.example$`, i)
		case 2:
			return fmt.Sprintf("dkim:signer%d.example", i)
		case 3:
			return fmt.Sprintf("trust:strong&rcpt:^vip%d@", i)
		case 4:
			return fmt.Sprintf("sender_percent:100&rcpt:^pct%d@", i)
		case 5:
			return fmt.Sprintf("env:region-%d", i)
		case 6:
			return fmt.Sprintf("release:v1.%d.0", i)
		default:
			return fmt.Sprintf(`mail_header:X-Mailer:^Bulk%d&rcpt:^ops@`, i)
		}
	}
	texts := map[string]string{}
	add := func(flag string, n int, value func(i int) string, tail string) {
		var sb strings.Builder
		for i := n; i >= 1; i-- {
			fmt.Fprintf(&sb, "%s %d %s\n", scope(i), i, value(i))
		}
		sb.WriteString(tail)
		texts[flag] = sb.String()
	}
	boolean := func(v string) func(int) string { return func(int) string { return v } }
	add(rules.FlagHandler, 14, func(i int) string { return []string{"quarantine", "discard"}[i%2] }, "default 0 publish\n")
	add(rules.FlagReject, 10, func(i int) string { return fmt.Sprintf("spam rule %d", i) }, "")
	add(rules.FlagDKIMVerify, 5, boolean("false"), "")
	add(rules.FlagDKIMStrong, 8, boolean("true"), "")
	add(rules.FlagPause, 6, boolean("true"), "")
	add(rules.FlagDryRun, 6, boolean("true"), "")
	return texts
}

func benchSnapshot(b *testing.B) *rules.Snapshot {
	b.Helper()
	snap := snapshotOf(b, benchRules())
	n := 0
	for _, f := range snap.Flags() {
		n += len(snap.RuleSet(f).Rules)
	}
	if n != 50 {
		b.Fatalf("%d rules, want 50", n)
	}
	return snap
}

var benchEnv = envelope("bench-1", "bob@customer.example")

// BenchmarkParse is the first stage: the header of the mail.
func BenchmarkParse(b *testing.B) {
	raw := benchMail(b, setupPipeline(b, Config{}))
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseMail(benchEnv, raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify is DKIM verification of one rsa-2048 signature with
// the key in the resolver's cache, as for every mail but the first of a
// signer.
func BenchmarkVerify(b *testing.B) {
	pb := setupPipeline(b, Config{})
	raw := benchMail(b, pb)
	cfg := auth.Config{DNSServers: []string{pb.ks.Addr()}}
	v := auth.NewVerifier(cfg, auth.NewResolver(cfg))
	if res, err := v.Verify(b.Context(), raw); err != nil || res.Signatures[0].Result != contracts.ResultPass {
		b.Fatalf("%+v %v", res, err)
	}
	queries := pb.ks.Queries(testkit.DNSName(selRSA, "example.com"))
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(b.Context(), raw); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if n := pb.ks.Queries(testkit.DNSName(selRSA, "example.com")); n != queries {
		b.Fatalf("%d key queries during the benchmark, want none (warm cache)", n-queries)
	}
}

// BenchmarkFlags evaluates the 6 known flags, as Process consults them,
// against a snapshot of 50 rules, on fresh Facts per mail. "facts+eval"
// includes building the header facts from the parsed mail; "eval" shares
// one header map, so it is the cost of Eval alone (plus one Facts).
func BenchmarkFlags(b *testing.B) {
	pb := setupPipeline(b, Config{})
	raw := benchMail(b, pb)
	m, err := ParseMail(benchEnv, raw)
	if err != nil {
		b.Fatal(err)
	}
	res, err := pb.p.verifier.Verify(b.Context(), raw)
	if err != nil || len(res.PassDomains) != 1 {
		b.Fatalf("%+v %v", res, err)
	}
	snap := benchSnapshot(b)
	headers := headerFacts(m.Header)
	evalAll := func(f *rules.Facts) {
		snap.Eval(rules.FlagDKIMVerify, f)
		f.DKIMPass, f.DKIMKnown = res.PassDomains, true
		snap.Eval(rules.FlagDKIMStrong, f)
		f.Trust, f.TrustKnown = contracts.TrustWeak, true
		for _, flag := range []string{rules.FlagPause, rules.FlagReject, rules.FlagDryRun, rules.FlagHandler} {
			snap.Eval(flag, f)
		}
	}
	// The decisions the bench mail must get: no rule matches but the
	// handler's default line.
	f := &rules.Facts{Headers: headers, Rcpts: m.Env.RcptTo, From: m.From, Env: "bench", Release: "v2.0.0"}
	evalAll(f)
	for _, flag := range rules.Known() {
		d := snap.Eval(flag.Name, f)
		if want := d.Rule != nil; want != (flag.Name == rules.FlagHandler) || d.Value != flag.Default {
			b.Fatalf("%s = %q by %+v, want its default", flag.Name, d.Value, d.Rule)
		}
	}

	for _, mode := range []string{"facts+eval", "eval"} {
		b.Run(mode, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				h := headers
				if mode == "facts+eval" {
					h = headerFacts(m.Header)
				}
				evalAll(&rules.Facts{Headers: h, Rcpts: m.Env.RcptTo, From: m.From, Env: "bench", Release: "v2.0.0"})
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/6, "ns/flag")
		})
	}
}

// BenchmarkPipeline is Process end to end, without NATS: parse, verify
// (warm cache), 6 flags against 50 rules, the publish handler's summary.
func BenchmarkPipeline(b *testing.B) {
	pb := setupPipeline(b, Config{Env: "bench", Release: "v2.0.0"})
	raw := benchMail(b, pb)
	snap := benchSnapshot(b)
	out, err := pb.p.Process(b.Context(), snap, benchEnv, raw, 1)
	if err != nil || out.Disposition != contracts.Processed || out.Auth.DKIM[0].Result != contracts.ResultPass {
		b.Fatalf("%v %+v", err, out)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := pb.p.Process(b.Context(), snap, benchEnv, raw, 1); err != nil {
			b.Fatal(err)
		}
	}
}
