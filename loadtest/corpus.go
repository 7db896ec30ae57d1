package loadtest

import (
	"bytes"
	"crypto"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-msgauth/dkim"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/testkit"
)

// Kind is how a corpus mail is signed.
type Kind string

// Kinds of corpus mail, with their share of a corpus.
const (
	// KindRSA: one rsa-sha256 signature (79%).
	KindRSA Kind = "rsa"
	// KindEd25519: one ed25519-sha256 signature (9%).
	KindEd25519 Kind = "ed25519"
	// KindUnsigned: no signature (9%).
	KindUnsigned Kind = "unsigned"
	// KindTampered: one rsa-sha256 signature, then the body changed (2%).
	KindTampered Kind = "tampered"
	// KindDual: signed twice by its domain, ed25519-sha256 and rsa-sha256,
	// as RFC 8463 suggests for a transition (the remaining 1%).
	KindDual Kind = "dual"
)

// kindShares is the composition of a corpus, in per mille; the order is
// the order counts are rounded in (the last takes the remainder).
var kindShares = []struct {
	kind     Kind
	perMille int
}{
	{KindEd25519, 90}, {KindUnsigned, 90}, {KindTampered, 20}, {KindDual, 10}, {KindRSA, 790},
}

// MultipartShare is the share of corpus mails that are multipart/mixed
// with a base64 attachment.
const MultipartShare = 0.21

// Want returns the DKIM result the first signature of a mail of kind k
// must get: pass, fail for a tampered mail, none for an unsigned one.
func (k Kind) Want() string {
	switch k {
	case KindUnsigned:
		return contracts.ResultNone
	case KindTampered:
		return contracts.ResultFail
	}
	return contracts.ResultPass
}

// CorpusConfig says what corpus to generate. The zero value is the
// default corpus: 2,000 mails over 20 domains, seed 1.
type CorpusConfig struct {
	// Seed makes the corpus: the same seed gives the same mails (sizes,
	// kinds, domains, headers, bodies), except for the keys, which are
	// fresh, and so the signature bytes. Default 1.
	Seed uint64
	// Mails is the number of mails. Default 2,000.
	Mails int
	// Domains is the number of signing domains, used Zipf-like (domain k
	// by weight 1/k). Default 20.
	Domains int
	// RSABits is the RSA key size. Default 2048; at least 1024, which
	// workers refuse to go under (tests use 1024 for speed).
	RSABits int
	// MedianSize is the median mail size in bytes, before the DKIM
	// signature: sizes are log-normal with this median and Sigma. Default
	// 8 KiB.
	MedianSize int
	// Sigma is the log-normal σ of the sizes. Default 1.2.
	Sigma float64
	// MinSize and MaxSize clip the sizes. Defaults 2 KiB and 256 KiB.
	MinSize, MaxSize int
}

// Corpus limits.
const (
	// MaxCorpus is the largest corpus Generate makes.
	MaxCorpus = 1_000_000
	// MaxDomains is the most signing domains.
	MaxDomains = 1000
)

func (c CorpusConfig) withDefaults() (CorpusConfig, error) {
	if c.Seed == 0 {
		c.Seed = 1
	}
	if c.Mails == 0 {
		c.Mails = 2000
	}
	if c.Domains == 0 {
		c.Domains = 20
	}
	if c.RSABits == 0 {
		c.RSABits = 2048
	}
	if c.MedianSize == 0 {
		c.MedianSize = 8 << 10
	}
	if c.Sigma == 0 {
		c.Sigma = 1.2
	}
	if c.MinSize == 0 {
		c.MinSize = 2 << 10
	}
	if c.MaxSize == 0 {
		c.MaxSize = 256 << 10
	}
	switch {
	case c.Mails < 0 || c.Mails > MaxCorpus:
		return c, fmt.Errorf("loadtest: corpus of %d mails: want 1 to %d", c.Mails, MaxCorpus)
	case c.Domains < 0 || c.Domains > MaxDomains:
		return c, fmt.Errorf("loadtest: %d signing domains: want 1 to %d", c.Domains, MaxDomains)
	case c.RSABits < 1024:
		return c, fmt.Errorf("loadtest: RSA keys of %d bits: workers refuse keys under 1024 bits", c.RSABits)
	case c.Sigma < 0 || c.MedianSize < 0:
		return c, errors.New("loadtest: negative corpus size median or sigma")
	case c.MinSize < MinSize || c.MaxSize < c.MinSize:
		return c, fmt.Errorf("loadtest: corpus sizes clipped to %d..%d bytes: want %d <= min <= max", c.MinSize, c.MaxSize, MinSize)
	}
	return c, nil
}

// Corpus is a set of mails that every phase of a measurement sends and
// every ceiling is measured on, with the DKIM keys that verify them.
type Corpus struct {
	// Config is the effective configuration.
	Config CorpusConfig
	// Mails are the mails, in sending order.
	Mails []CorpusMail
	// Domains are the signing domains, most used first.
	Domains []string
	// Keys maps each key record's DNS name (selector._domainkey.domain)
	// to its TXT value.
	Keys map[string]string
}

// CorpusMail is one mail of a corpus.
type CorpusMail struct {
	// Raw is the mail as sent, CRLF line endings.
	Raw []byte
	// Kind says how it is signed.
	Kind Kind
	// Multipart tells a multipart/mixed mail with an attachment.
	Multipart bool
	// From is the From address; its domain is the signing domain.
	From string
	// MessageID is the Message-ID, without angle brackets.
	MessageID string
}

// Corpus selectors: one RSA and one ed25519 key per domain.
const (
	selectorRSA     = "lt-rsa"
	selectorEd25519 = "lt-ed"
)

// signedHeaders are the header fields every corpus signature covers.
var signedHeaders = []string{"from", "to", "subject", "date", "message-id", "mime-version", "content-type"}

// GenerateCorpus makes a corpus as c says. Keys are generated first
// (RSA-2048 keys take a few hundred milliseconds each), then the mails
// are built and signed on every core.
func GenerateCorpus(c CorpusConfig) (*Corpus, error) {
	c, err := c.withDefaults()
	if err != nil {
		return nil, err
	}
	cp := &Corpus{Config: c, Keys: map[string]string{}}
	for i := range c.Domains {
		cp.Domains = append(cp.Domains, fmt.Sprintf("brand%02d.example", i+1))
	}
	type keyPair struct{ rsa, ed crypto.Signer }
	keys := make([]keyPair, c.Domains)
	var mu sync.Mutex
	var firstErr error
	par := runtime.GOMAXPROCS(0)
	parallel(c.Domains, par, func(i int) {
		r, err := testkit.GenerateKey(testkit.AlgRSA, c.RSABits)
		var e crypto.Signer
		if err == nil {
			e, err = testkit.GenerateKey(testkit.AlgEd25519, 0)
		}
		var rtxt, etxt string
		if err == nil {
			rtxt, err = testkit.TXTRecord(r)
		}
		if err == nil {
			etxt, err = testkit.TXTRecord(e)
		}
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			firstErr = firstOf(firstErr, err)
			return
		}
		keys[i] = keyPair{r, e}
		cp.Keys[testkit.DNSName(selectorRSA, cp.Domains[i])] = rtxt
		cp.Keys[testkit.DNSName(selectorEd25519, cp.Domains[i])] = etxt
	})
	if firstErr != nil {
		return nil, firstErr
	}

	// The composition: exact counts, spread by a seeded shuffle.
	rng := rand.New(rand.NewPCG(c.Seed, 0x636f72707573))
	kinds := make([]Kind, 0, c.Mails)
	left := c.Mails
	for i, s := range kindShares {
		n := left
		if i < len(kindShares)-1 {
			n = min(left, int(math.Round(float64(c.Mails*s.perMille)/1000)))
		}
		for range n {
			kinds = append(kinds, s.kind)
		}
		left -= n
	}
	rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	multi := make([]bool, c.Mails)
	for i := range int(math.Round(MultipartShare * float64(c.Mails))) {
		multi[i] = true
	}
	rng.Shuffle(len(multi), func(i, j int) { multi[i], multi[j] = multi[j], multi[i] })
	zipf := newZipf(c.Domains)

	date := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	cp.Mails = make([]CorpusMail, c.Mails)
	parallel(c.Mails, par, func(i int) {
		r := rand.New(rand.NewPCG(c.Seed, uint64(i)+1))
		d := zipf.pick(r)
		m, err := buildMail(r, c, i, kinds[i], multi[i], cp.Domains[d], keys[d].rsa, keys[d].ed, date.Add(time.Duration(i)*1500*time.Millisecond))
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			firstErr = firstOf(firstErr, err)
			return
		}
		cp.Mails[i] = m
	})
	if firstErr != nil {
		return nil, firstErr
	}
	return cp, nil
}

// Composition counts the corpus's mails by kind.
func (cp *Corpus) Composition() map[Kind]int {
	m := map[Kind]int{}
	for _, ml := range cp.Mails {
		m[ml.Kind]++
	}
	return m
}

// CorpusSummary describes a corpus in numbers.
type CorpusSummary struct {
	Mails     int          `json:"mails"`
	Seed      uint64       `json:"seed"`
	Domains   int          `json:"domains"`
	RSABits   int          `json:"rsa_bits"`
	Kinds     map[Kind]int `json:"kinds"`
	Multipart int          `json:"multipart"`
	// Sizes of the mails as sent, signatures included, in bytes.
	SizeMin    int     `json:"size_min"`
	SizeMedian int     `json:"size_median"`
	SizeMean   float64 `json:"size_mean"`
	SizeMax    int     `json:"size_max"`
	Bytes      int64   `json:"bytes"`
}

// Summary returns the corpus's composition and sizes.
func (cp *Corpus) Summary() CorpusSummary {
	s := CorpusSummary{Mails: len(cp.Mails), Seed: cp.Config.Seed, Domains: len(cp.Domains), RSABits: cp.Config.RSABits, Kinds: cp.Composition()}
	if len(cp.Mails) == 0 {
		return s
	}
	sizes := make([]int, len(cp.Mails))
	for i, m := range cp.Mails {
		sizes[i] = len(m.Raw)
		s.Bytes += int64(len(m.Raw))
		if m.Multipart {
			s.Multipart++
		}
	}
	slices.Sort(sizes)
	s.SizeMin, s.SizeMedian, s.SizeMax = sizes[0], sizes[len(sizes)/2], sizes[len(sizes)-1]
	s.SizeMean = float64(s.Bytes) / float64(len(sizes))
	return s
}

// LookupTXT answers key lookups from the corpus's keys, as
// dkim.VerifyOptions.LookupTXT wants: the key cache of a verifier that
// has seen every domain before.
func (cp *Corpus) LookupTXT(name string) ([]string, error) {
	if txt, ok := cp.Keys[strings.TrimSuffix(strings.ToLower(name), ".")]; ok {
		return []string{txt}, nil
	}
	return nil, fmt.Errorf("loadtest: no key record %s", name)
}

// buildMail makes mail i of the corpus.
func buildMail(r *rand.Rand, c CorpusConfig, i int, kind Kind, multipart bool, domain string, rsaKey, edKey crypto.Signer, date time.Time) (CorpusMail, error) {
	size := int(float64(c.MedianSize) * math.Exp(c.Sigma*r.NormFloat64()))
	size = min(max(size, c.MinSize), c.MaxSize)
	user := firstNames[r.IntN(len(firstNames))]
	m := CorpusMail{
		Kind:      kind,
		Multipart: multipart,
		From:      fmt.Sprintf("%s.%d@%s", strings.ToLower(user), r.IntN(1000), domain),
		MessageID: fmt.Sprintf("%08x.%d.%x@mail.%s", r.Uint32(), i, c.Seed, domain),
	}
	to := fmt.Sprintf("%s@recipient.example", strings.ToLower(firstNames[r.IntN(len(firstNames))]))
	subject := subjects[r.IntN(len(subjects))] + fmt.Sprintf(" #%d", i)

	var h strings.Builder
	field := func(name, value string) { h.WriteString(name + ": " + value + "\r\n") }
	field("From", fmt.Sprintf("%s <%s>", user, m.From))
	field("To", "<"+to+">")
	field("Subject", subject)
	field("Date", date.Format(time.RFC1123Z))
	field("Message-ID", "<"+m.MessageID+">")
	field("MIME-Version", "1.0")
	boundary := fmt.Sprintf("=_lt_%016x", r.Uint64())
	if multipart {
		field("Content-Type", `multipart/mixed; boundary="`+boundary+`"`)
	} else {
		field("Content-Type", "text/plain; charset=utf-8")
		field("Content-Transfer-Encoding", "7bit")
	}
	h.WriteString("\r\n")

	// Received fields are added by the relays after the signature, on
	// top; they count toward the size.
	relayIP := fmt.Sprintf("192.0.2.%d", 1+r.IntN(254))
	received := fmt.Sprintf("Received: from mx.%s (mx.%s [%s])\r\n\tby mx.recipient.example (mailscope) with ESMTPS id %012x\r\n\tfor <%s>; %s\r\n"+
		"Received: from submit.%s (submit.%s [10.%d.%d.%d])\r\n\tby mx.%s with ESMTPSA id %012x; %s\r\n",
		domain, domain, relayIP, r.Uint64()&0xffffffffffff, to, date.Add(2*time.Second).Format(time.RFC1123Z),
		domain, domain, r.IntN(256), r.IntN(256), 1+r.IntN(254), domain, r.Uint64()&0xffffffffffff, date.Add(time.Second).Format(time.RFC1123Z))

	bodyLen := max(size-h.Len()-len(received), 256)
	body := make([]byte, 0, bodyLen+128)
	if multipart {
		text := min(max(bodyLen/8, 200), 4000)
		body = append(body, "This is a multi-part message in MIME format.\r\n\r\n--"+boundary+"\r\n"+
			"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n\r\n"...)
		body = appendText(body, r, text)
		body = append(body, "\r\n--"+boundary+"\r\n"+
			fmt.Sprintf("Content-Type: application/pdf; name=\"report-%d.pdf\"\r\nContent-Disposition: attachment; filename=\"report-%d.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\n", i, i)...)
		// The rest goes to the attachment: base64 of 3/4 as many bytes.
		att := max(bodyLen-len(body)-len(boundary)-8, 76)
		raw := make([]byte, att*3/4)
		for j := range raw {
			raw[j] = byte(r.Uint32())
		}
		enc := base64.StdEncoding.EncodeToString(raw)
		for len(enc) > 76 {
			body = append(body, enc[:76]...)
			body = append(body, "\r\n"...)
			enc = enc[76:]
		}
		body = append(body, enc+"\r\n\r\n--"+boundary+"--\r\n"...)
	} else {
		body = appendText(body, r, bodyLen)
	}

	msg := append([]byte(h.String()), body...)
	var err error
	switch kind {
	case KindRSA, KindTampered:
		msg, err = sign(msg, domain, selectorRSA, rsaKey)
	case KindEd25519:
		msg, err = sign(msg, domain, selectorEd25519, edKey)
	case KindDual:
		if msg, err = sign(msg, domain, selectorEd25519, edKey); err == nil {
			msg, err = sign(msg, domain, selectorRSA, rsaKey)
		}
	}
	if err != nil {
		return m, err
	}
	if kind == KindTampered {
		// Change one letter in the middle of the body, as a relay's
		// rewriting would: the body hash no longer matches.
		end := bytes.Index(msg, []byte("\r\n\r\n")) + 4
		for j := end + (len(msg)-end)/2; j < len(msg); j++ {
			if c := msg[j]; c >= 'a' && c <= 'z' {
				msg[j] = 'a' + (c-'a'+1)%26
				break
			}
		}
	}
	m.Raw = append([]byte(received), msg...)
	return m, nil
}

// sign prepends a relaxed/relaxed DKIM signature by domain.
func sign(msg []byte, domain, selector string, key crypto.Signer) ([]byte, error) {
	var out bytes.Buffer
	out.Grow(len(msg) + 1024)
	err := dkim.Sign(&out, bytes.NewReader(msg), &dkim.SignOptions{
		Domain: domain, Selector: selector, Signer: key,
		HeaderCanonicalization: dkim.CanonicalizationRelaxed,
		BodyCanonicalization:   dkim.CanonicalizationRelaxed,
		HeaderKeys:             signedHeaders,
	})
	if err != nil {
		return nil, fmt.Errorf("loadtest: sign: %w", err)
	}
	return out.Bytes(), nil
}

// appendText appends about n bytes of prose in lines of at most 78
// bytes, CRLF-terminated.
func appendText(b []byte, r *rand.Rand, n int) []byte {
	line := 0
	for end := len(b) + n; len(b) < end; {
		w := words[r.IntN(len(words))]
		if line+len(w)+1 > 72 {
			b = append(b, "\r\n"...)
			line = 0
		} else if line > 0 {
			b = append(b, ' ')
			line++
		}
		b = append(b, w...)
		line += len(w)
	}
	return append(b, "\r\n"...)
}

// zipf picks domain k (0-based) with weight 1/(k+1).
type zipf struct{ cum []float64 }

func newZipf(n int) zipf {
	z := zipf{cum: make([]float64, n)}
	sum := 0.0
	for k := range n {
		sum += 1 / float64(k+1)
		z.cum[k] = sum
	}
	for k := range z.cum {
		z.cum[k] /= sum
	}
	return z
}

func (z zipf) pick(r *rand.Rand) int {
	u := r.Float64()
	for k, c := range z.cum {
		if u < c {
			return k
		}
	}
	return len(z.cum) - 1
}

// parallel runs f(0..n-1) on par goroutines.
func parallel(n, par int, f func(i int)) {
	var next sync.Mutex
	i := 0
	var wg sync.WaitGroup
	for range min(par, n) {
		wg.Go(func() {
			for {
				next.Lock()
				j := i
				i++
				next.Unlock()
				if j >= n {
					return
				}
				f(j)
			}
		})
	}
	wg.Wait()
}

func firstOf(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

var firstNames = []string{"Alice", "Bob", "Carol", "Dave", "Erin", "Frank", "Grace", "Heidi", "Ivan", "Judy", "Mallory", "Niaj", "Olivia", "Peggy", "Rupert", "Sybil", "Trent", "Victor", "Walter", "Yasmin"}

var subjects = []string{"Your order has shipped", "Invoice for March", "Meeting notes", "Re: quarterly report", "Password reset requested",
	"Weekly newsletter", "Your statement is ready", "Fwd: travel plans", "Build failed on main", "Welcome aboard"}

var words = strings.Fields(`the of and to in is that it for on with as was at by be this from or have an are not but
which one all were we when there can more if out so about up what their would into has time only could new some these
two may first then do any like my now over such our man me even most made after also did many before must through back
years where much your way well down should because each just those people how too little state good very make world
still own see men work long get here between both life being under never day same another know while last might us
great old year off come since against go came right used take three mail message order report account invoice ship`)
