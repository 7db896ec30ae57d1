package auth_test

import (
	"context"
	"fmt"
	"time"

	"github.com/mailscope/mailscope/auth"
	"github.com/mailscope/mailscope/keyserver"
	"github.com/mailscope/mailscope/testkit"
)

// A mail signed with a fresh key, whose record a local key server
// publishes, verifies as pass and earns strong trust when the flag
// mail.auth.dkim_strong is on for its domain.
func ExampleVerifier_Verify() {
	ks, err := keyserver.Start("127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ks.Close()

	key, _ := testkit.GenerateKey("ed25519", 0)
	rec, _ := testkit.TXTRecord(key)
	mail := testkit.SampleMail("alice@example.com", "bob@example.org", "Hi", "Hello\n",
		time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), "1@example.com")
	signed, _ := testkit.Sign(mail, testkit.SignOptions{Domain: "mail.example.com", Selector: "sel", Key: key})
	ks.SetTXT(testkit.DNSName("sel", "mail.example.com"), 300, rec)

	cfg := auth.Config{DNSServers: []string{ks.Addr()}}
	v := auth.NewVerifier(cfg, auth.NewResolver(cfg))
	res, err := v.Verify(context.Background(), signed)
	if err != nil {
		panic(err)
	}
	strong := func(d string) bool { return d == "mail.example.com" }
	fmt.Println(res.Signatures[0].Result, res.PassDomains)
	fmt.Println(auth.Trust(res, "example.com", cfg.Alignment(), strong))
	fmt.Println(auth.AuthenticationResults("mx.example.org", res, ""))
	// Output:
	// pass [mail.example.com]
	// strong
	// mx.example.org; dkim=pass header.a=ed25519-sha256 header.d=mail.example.com header.s=sel
}

// Relaxed alignment (the default) lets a subdomain signer vouch for the
// organizational domain; strict alignment (Config.StrictAlignment) wants
// the very From domain.
func ExampleAlignment_Aligned() {
	for _, cfg := range []auth.Config{{}, {StrictAlignment: true}} {
		a := cfg.Alignment()
		fmt.Println(a, a.Aligned("mail.example.com", "example.com"), a.Aligned("Example.com", "example.com"))
	}
	// Output:
	// relaxed true true
	// strict false true
}
