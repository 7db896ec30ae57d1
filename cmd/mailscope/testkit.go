package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/mailscope/mailscope/testkit"
)

func runTestkit(_ context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return usageError{fmt.Errorf("usage: mailscope testkit keygen|sign [flags]")}
	}
	switch args[0] {
	case "keygen":
		return testkitKeygen(args[1:], out)
	case "sign":
		return testkitSign(args[1:], out)
	}
	return usageError{fmt.Errorf("unknown testkit command %q (keygen, sign)", args[0])}
}

func testkitKeygen(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("testkit keygen", flag.ContinueOnError)
	alg := fs.String("alg", "rsa", "key algorithm: rsa or ed25519")
	bits := fs.Int("bits", 2048, "RSA key size")
	keyOut := fs.String("out", "", "write the private key (PEM) to this file (default stdout)")
	domain := fs.String("domain", "example.com", "domain, for the printed DNS record")
	selector := fs.String("selector", "default", "selector, for the printed DNS record")
	if err := parse(fs, args); err != nil {
		return err
	}
	key, err := testkit.GenerateKey(*alg, *bits)
	if err != nil {
		return usageError{err}
	}
	pemBytes, err := testkit.MarshalPrivateKey(key)
	if err != nil {
		return err
	}
	txt, err := testkit.TXTRecord(key)
	if err != nil {
		return err
	}
	if *keyOut == "" {
		if _, err := out.Write(pemBytes); err != nil {
			return err
		}
	} else if err := os.WriteFile(*keyOut, pemBytes, 0o600); err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "%s. IN TXT %q\n", testkit.DNSName(*selector, *domain), txt)
	return err
}

func testkitSign(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("testkit sign", flag.ContinueOnError)
	keyFile := fs.String("key", "", "private key file (PEM) (required)")
	domain := fs.String("domain", "", "signing domain d= (required)")
	selector := fs.String("selector", "", "selector s= (required)")
	canon := fs.String("canon", "relaxed/relaxed", "header/body canonicalization")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: mailscope testkit sign --key K --domain D --selector S [FILE|-] > signed.eml")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if *keyFile == "" || *domain == "" || *selector == "" || fs.NArg() > 1 {
		fs.Usage()
		return usageError{fmt.Errorf("need --key, --domain, --selector and at most one FILE")}
	}
	hc, bc, ok := strings.Cut(*canon, "/")
	if !ok {
		bc = hc
	}
	pemBytes, err := os.ReadFile(*keyFile)
	if err != nil {
		return err
	}
	key, err := testkit.ParsePrivateKey(pemBytes)
	if err != nil {
		return err
	}
	var raw []byte
	if fs.NArg() == 0 || fs.Arg(0) == "-" {
		raw, err = io.ReadAll(os.Stdin)
	} else {
		raw, err = os.ReadFile(fs.Arg(0))
	}
	if err != nil {
		return err
	}
	signed, err := testkit.Sign(raw, testkit.SignOptions{Domain: *domain, Selector: *selector, Key: key, HeaderCanon: hc, BodyCanon: bc})
	if err != nil {
		return err
	}
	_, err = out.Write(signed)
	return err
}
