package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/nats-io/nats.go"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/auth"
	"github.com/mailscope/mailscope/testkit"
)

func runTestkit(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return usageError{fmt.Errorf("usage: mailscope testkit keygen|sign|publish-key [flags]")}
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(out, "usage: mailscope testkit keygen|sign|publish-key [flags]\n\n"+
			"  keygen       make an RSA or ed25519 key and print its DNS TXT record\n"+
			"  sign         DKIM-sign a mail file with a key\n"+
			"  publish-key  put a key's record in the staging key bucket (not for production)\n\n"+
			"Run mailscope testkit COMMAND -h for its flags.")
		return nil
	case "keygen":
		return testkitKeygen(args[1:], out)
	case "sign":
		return testkitSign(args[1:], out)
	case "publish-key":
		return testkitPublishKey(ctx, args[1:], out)
	}
	return usageError{fmt.Errorf("unknown testkit command %q (keygen, sign, publish-key)", args[0])}
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

// testkitPublishKey puts a DKIM key record into the staging key bucket
// (contracts.Names.KeyBucket), or deletes it. The flag is --key-bucket,
// not --bucket: MAILSCOPE_BUCKET names the flag-rule bucket for every
// other command, and keys must never land there by way of the environment.
func testkitPublishKey(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("testkit publish-key", flag.ContinueOnError)
	nf := &natsFlags{}
	defURL := os.Getenv("NATS_URL")
	if defURL == "" {
		defURL = nats.DefaultURL
	}
	fs.StringVar(&nf.url, "nats", defURL, "NATS server URL(s), comma-separated (default from NATS_URL)")
	fs.StringVar(&nf.creds, "nats-creds", "", "NATS credentials file")
	fs.StringVar(&nf.nkey, "nats-nkey", os.Getenv("NATS_NKEY"), "the operator's NKey seed file (default from NATS_NKEY)")
	bucket := fs.String("key-bucket", "mail_dkim_keys", "staging DKIM key bucket (must exist: mailscope provision with a key bucket)")
	selector := fs.String("selector", "", "selector s= (required)")
	domain := fs.String("domain", "", "signing domain d= (required)")
	keyFile := fs.String("key", "", "private key file (PEM), as written by testkit keygen; its public key is published")
	txt := fs.String("txt", "", `the key record itself, e.g. "v=DKIM1; k=ed25519; p=..." (instead of --key)`)
	del := fs.Bool("delete", false, "delete the selector's record instead")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: mailscope testkit publish-key --selector S --domain D (--key K | --txt RECORD | --delete) [flags]")
		fmt.Fprintln(fs.Output(), "Puts a DKIM key record into the staging key bucket that workers read before DNS. Not for production.")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	sources := 0
	for _, set := range []bool{*keyFile != "", *txt != "", *del} {
		if set {
			sources++
		}
	}
	if *selector == "" || *domain == "" || *bucket == "" || sources != 1 || fs.NArg() != 0 {
		fs.Usage()
		return usageError{fmt.Errorf("need --selector, --domain, --key-bucket and exactly one of --key, --txt, --delete")}
	}
	record := *txt
	if *keyFile != "" {
		pemBytes, err := os.ReadFile(*keyFile)
		if err != nil {
			return err
		}
		key, err := testkit.ParsePrivateKey(pemBytes)
		if err != nil {
			return err
		}
		if record, err = testkit.TXTRecord(key); err != nil {
			return err
		}
	}
	if record != "" && !strings.Contains(record, "p=") {
		return usageError{fmt.Errorf("--txt %q is no DKIM key record (it has no p= tag)", record)}
	}
	nc, js, err := nf.jetstream(access.Operator)
	if err != nil {
		return err
	}
	defer nc.Close()
	kv, err := js.KeyValue(ctx, *bucket)
	if err != nil {
		return fmt.Errorf("key bucket %s: %w", *bucket, err)
	}
	keys := auth.NewKVKeys(kv)
	name := testkit.DNSName(*selector, *domain)
	if *del {
		if err := keys.Delete(ctx, name); err != nil {
			return err
		}
		_, err = fmt.Fprintf(out, "deleted %s from bucket %s\n", auth.KeyName(name), *bucket)
		return err
	}
	rev, err := keys.Put(ctx, name, record)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "put %s in bucket %s (revision %d): %s\n", auth.KeyName(name), *bucket, rev, record)
	return err
}
