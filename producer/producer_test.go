package producer_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/textproto"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/embedded"
	"github.com/mailscope/mailscope/producer"
	"github.com/mailscope/mailscope/provision"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/testkit"
)

// wait bounds every wait in these tests; it is a safety net against
// hangs, never a measurement.
const wait = 30 * time.Second

// options change what setup starts.
type options struct {
	producer   producer.Config
	provision  provision.Config
	maxPayload int32 // of the embedded server; 0 for its default
}

// bundle is a running producer on a real embedded nats-server, each
// party connected as its role: provisioning as the provisioner, the
// producer (and the Publishers the tests make) as the producer, and the
// test reading the mail stream as the operator.
type bundle struct {
	closeSrv  func()              // shuts the server down; safe to call twice
	nc        *nats.Conn          // the producer's connection
	js        jetstream.JetStream // the producer's JetStream client
	p         *producer.Producer
	smtpAddr  string
	lmtpAddr  string
	names     contracts.Names
	streamObj jetstream.Stream // the mail stream, as the operator sees it
	sys       *systest.Env
}

func setup(t *testing.T) *bundle { return setupWith(t, options{}) }

func setupWith(t testing.TB, o options) *bundle {
	t.Helper()
	env := systest.StartWith(t, embedded.Config{MaxPayload: o.maxPayload})
	b := &bundle{closeSrv: sync.OnceFunc(env.Server.Close), sys: env}
	t.Cleanup(b.closeSrv)

	if err := provision.Run(t.Context(), env.JetStream(t, access.Provisioner), o.provision); err != nil {
		t.Fatal(err)
	}
	b.names = o.provision.WithDefaults().Names
	var err error
	if b.streamObj, err = env.JetStream(t, access.Operator).Stream(t.Context(), b.names.MailStream); err != nil {
		t.Fatal(err)
	}

	b.nc = env.Conn(t, access.Producer)
	if b.js, err = jetstream.New(b.nc); err != nil {
		t.Fatal(err)
	}
	cfg := o.producer
	cfg.SMTPAddr, cfg.LMTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	p, err := producer.New(cfg, b.nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Listen(); err != nil {
		t.Fatal(err)
	}
	b.p, b.smtpAddr, b.lmtpAddr = p, p.Addr(false), p.Addr(true)
	if b.smtpAddr == "" || b.lmtpAddr == "" {
		t.Fatalf("listen addresses: smtp %q lmtp %q", b.smtpAddr, b.lmtpAddr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(wait):
			t.Errorf("Run did not return within %s of its context being cancelled", wait)
		}
	})
	return b
}

// dial opens an SMTP (or LMTP) client connection and greets the server
// with helo. The client's own timeouts guard against a hanging server.
func (b *bundle) dial(t *testing.T, lmtp bool, helo string) (*smtp.Client, net.Conn) {
	t.Helper()
	addr := b.smtpAddr
	if lmtp {
		addr = b.lmtpAddr
	}
	conn, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatal(err)
	}
	var c *smtp.Client
	if lmtp {
		c = smtp.NewClientLMTP(conn)
	} else {
		c = smtp.NewClient(conn)
	}
	c.CommandTimeout, c.SubmissionTimeout = wait, wait
	t.Cleanup(func() { c.Close() })
	if err := c.Hello(helo); err != nil {
		t.Fatalf("hello: %v", err)
	}
	return c, conn
}

// sendSMTP sends one mail over a new SMTP connection and returns the
// server's answer to it (nil for 250).
func (b *bundle) sendSMTP(t *testing.T, from string, rcpts []string, raw []byte) error {
	t.Helper()
	c, _ := b.dial(t, false, "client.test")
	err := c.SendMail(from, rcpts, bytes.NewReader(raw))
	if qerr := c.Quit(); qerr != nil {
		t.Errorf("quit: %v", qerr)
	}
	return err
}

// sendLMTP sends one mail over a new LMTP connection and returns each
// recipient's answer (nil for 250). Every recipient must get an answer.
func (b *bundle) sendLMTP(t *testing.T, from string, rcpts []string, raw []byte) map[string]*smtp.SMTPError {
	t.Helper()
	c, _ := b.dial(t, true, "lmtp-client.test")
	if err := c.Mail(from, nil); err != nil {
		t.Fatalf("MAIL: %v", err)
	}
	for _, r := range rcpts {
		if err := c.Rcpt(r, nil); err != nil {
			t.Fatalf("RCPT %s: %v", r, err)
		}
	}
	w, err := c.Data()
	if err != nil {
		t.Fatalf("DATA: %v", err)
	}
	if _, err := w.Write(raw); err != nil {
		t.Fatalf("DATA write: %v", err)
	}
	resp, err := w.CloseWithLMTPResponse()
	replies := map[string]*smtp.SMTPError{}
	var perRcpt smtp.LMTPDataError
	switch {
	case errors.As(err, &perRcpt):
		for r, e := range perRcpt {
			replies[r] = e
		}
	case err != nil:
		t.Fatalf("LMTP DATA: %v", err)
	}
	for r := range resp {
		if _, dup := replies[r]; dup {
			t.Errorf("recipient %s got both a success and a failure", r)
		}
		replies[r] = nil
	}
	if len(replies) != len(rcpts) {
		t.Errorf("%d LMTP replies for %d recipients: %v", len(replies), len(rcpts), replies)
	}
	if err := c.Quit(); err != nil {
		t.Errorf("quit: %v", err)
	}
	return replies
}

// count returns the number of messages in the mail stream.
func (b *bundle) count(t *testing.T) uint64 {
	t.Helper()
	info, err := b.streamObj.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

// last returns the newest stored mail and its decoded envelope.
func (b *bundle) last(t *testing.T) (*jetstream.RawStreamMsg, contracts.Envelope) {
	t.Helper()
	msg, err := b.streamObj.GetLastMsgForSubject(t.Context(), b.names.MailSubject)
	if err != nil {
		t.Fatalf("no stored mail: %v", err)
	}
	env, err := contracts.DecodeEnvelope(msg.Header)
	if err != nil {
		t.Fatalf("stored mail has a bad envelope: %v (headers %v)", err, msg.Header)
	}
	return msg, env
}

// wantReply checks that err is the SMTP reply code/enhanced code.
func wantReply(t *testing.T, what string, err error, code int, enhanced smtp.EnhancedCode) {
	t.Helper()
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		t.Fatalf("%s: got %v, want an SMTP reply %d %v", what, err, code, enhanced)
	}
	if se.Code != code || se.EnhancedCode != enhanced {
		t.Errorf("%s: got %d %v %q, want %d %v", what, se.Code, se.EnhancedCode, se.Message, code, enhanced)
	}
}

// sample is a mail with what SMTP transparency must preserve: lines that
// start with dots, 8-bit UTF-8, CRLF line ends.
func sample(rcpt string) []byte {
	return testkit.SampleMail("Alice <alice@example.com>", rcpt, "Grüße",
		"Hello.\n.a line starting with a dot\n..two dots\n.\nnon-ASCII: ünïcödé ✓\n",
		time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), "m1@example.com")
}

// mailOfSize returns a mail of exactly n bytes (n must leave room for
// the headers), in lines of at most 78 characters.
func mailOfSize(t *testing.T, n int) []byte {
	t.Helper()
	head := []byte("From: alice@example.com\r\nTo: bob@example.org\r\nSubject: size\r\n\r\n")
	if n < len(head)+2 {
		t.Fatalf("mail of %d bytes is too small", n)
	}
	buf := bytes.NewBuffer(head)
	for rest := n - len(head); rest > 0; {
		line := min(rest, 78)
		if rest-line == 1 { // do not leave a lone byte for the last line
			line--
		}
		buf.WriteString(strings.Repeat("x", line-2) + "\r\n")
		rest -= line
	}
	if buf.Len() != n {
		t.Fatalf("mailOfSize(%d) made %d bytes", n, buf.Len())
	}
	return buf.Bytes()
}

// TestSMTPStoredBeforeOK checks the producer's promise: once the client
// has its 250, the mail is in the stream, byte for byte, with its
// envelope in the headers.
func TestSMTPStoredBeforeOK(t *testing.T) {
	b := setup(t)
	raw := sample("bob@example.org")
	rcpts := []string{"bob@example.org", "carol@example.net"}

	before := time.Now()
	c, conn := b.dial(t, false, "client.test")
	if err := c.SendMail("alice@example.com", rcpts, bytes.NewReader(raw)); err != nil {
		t.Fatalf("SendMail: %v", err)
	}
	after := time.Now()
	// No waiting: the 250 is the promise that the mail is stored.
	if n := b.count(t); n != 1 {
		t.Fatalf("after 250 the stream holds %d mails, want 1", n)
	}
	msg, env := b.last(t)
	if !bytes.Equal(msg.Data, raw) {
		t.Errorf("stored mail differs from the mail sent:\n got %q\nwant %q", msg.Data, raw)
	}
	if env.MailFrom != "alice@example.com" {
		t.Errorf("MailFrom = %q", env.MailFrom)
	}
	if !slices.Equal(env.RcptTo, rcpts) {
		t.Errorf("RcptTo = %q, want %q", env.RcptTo, rcpts)
	}
	if env.Protocol != "smtp" {
		t.Errorf("Protocol = %q, want smtp", env.Protocol)
	}
	if want := conn.LocalAddr().String(); env.ClientAddr != want {
		t.Errorf("ClientAddr = %q, want %q", env.ClientAddr, want)
	}
	if env.Helo != "client.test" {
		t.Errorf("Helo = %q, want client.test", env.Helo)
	}
	if env.ID == "" || msg.Header.Get(nats.MsgIdHdr) != env.ID {
		t.Errorf("ID = %q, Nats-Msg-Id = %q", env.ID, msg.Header.Get(nats.MsgIdHdr))
	}
	if env.ReceivedAt.Before(before.Truncate(time.Microsecond)) || env.ReceivedAt.After(after) {
		t.Errorf("ReceivedAt = %v, want within [%v, %v]", env.ReceivedAt, before, after)
	}
	if env.ReceivedAt.Location() != time.UTC {
		t.Errorf("ReceivedAt in %v, want UTC", env.ReceivedAt.Location())
	}
	if err := c.Quit(); err != nil {
		t.Errorf("quit: %v", err)
	}
}

// TestSMTPTwoMailsOneConnection checks that a connection carries several
// transactions, each stored with its own id and envelope.
func TestSMTPTwoMailsOneConnection(t *testing.T) {
	b := setup(t)
	c, _ := b.dial(t, false, "client.test")
	var ids []string
	for i, rcpt := range []string{"bob@example.org", "carol@example.net"} {
		if err := c.SendMail("alice@example.com", []string{rcpt}, bytes.NewReader(sample(rcpt))); err != nil {
			t.Fatalf("mail %d: %v", i, err)
		}
		_, env := b.last(t)
		if !slices.Equal(env.RcptTo, []string{rcpt}) {
			t.Errorf("mail %d: RcptTo = %q, want only %s (recipients leaked between transactions?)", i, env.RcptTo, rcpt)
		}
		ids = append(ids, env.ID)
	}
	if ids[0] == ids[1] {
		t.Errorf("two mails share the id %s", ids[0])
	}
	if n := b.count(t); n != 2 {
		t.Errorf("stream holds %d mails, want 2", n)
	}
	if err := c.Quit(); err != nil {
		t.Errorf("quit: %v", err)
	}
}

func TestNullSender(t *testing.T) {
	b := setup(t)
	if err := b.sendSMTP(t, "", []string{"bob@example.org"}, sample("bob@example.org")); err != nil {
		t.Fatalf("MAIL FROM:<>: %v", err)
	}
	msg, env := b.last(t)
	if env.MailFrom != "" {
		t.Errorf("MailFrom = %q, want empty for <>", env.MailFrom)
	}
	if _, ok := msg.Header[contracts.HeaderMailFrom]; !ok {
		t.Errorf("header %s missing; headers %v", contracts.HeaderMailFrom, msg.Header)
	}
}

func TestLMTPPerRecipientReplies(t *testing.T) {
	b := setup(t)
	rcpts := []string{"bob@example.org", "carol@example.net", "dave@example.com"}
	raw := sample("bob@example.org")
	replies := b.sendLMTP(t, "alice@example.com", rcpts, raw)
	for _, r := range rcpts {
		if e, ok := replies[r]; !ok || e != nil {
			t.Errorf("%s: reply %v (present %v), want 250", r, e, ok)
		}
	}
	if n := b.count(t); n != 1 {
		t.Fatalf("stream holds %d mails, want one for all recipients", n)
	}
	msg, env := b.last(t)
	if !bytes.Equal(msg.Data, raw) {
		t.Errorf("stored mail differs from the mail sent")
	}
	if !slices.Equal(env.RcptTo, rcpts) {
		t.Errorf("RcptTo = %q, want %q", env.RcptTo, rcpts)
	}
	if env.Protocol != "lmtp" || env.Helo != "lmtp-client.test" {
		t.Errorf("Protocol %q Helo %q, want lmtp lmtp-client.test", env.Protocol, env.Helo)
	}
}

func TestOverSize(t *testing.T) {
	const max = 64 << 10
	b := setupWith(t, options{producer: producer.Config{MaxSize: max}})
	if got := b.p.Config().MaxSize; got != max {
		t.Fatalf("MaxSize = %d, want %d", got, max)
	}
	big := mailOfSize(t, max+1)

	c, _ := b.dial(t, false, "client.test")
	if size, ok := c.MaxMessageSize(); !ok || size != max {
		t.Errorf("EHLO SIZE = %d (advertised %v), want %d", size, ok, max)
	}
	err := c.SendMail("alice@example.com", []string{"bob@example.org"}, bytes.NewReader(big))
	wantReply(t, "SMTP over-size", err, 552, smtp.EnhancedCode{5, 3, 4})
	// The rest of the mail was consumed: the connection still works.
	if err := c.SendMail("alice@example.com", []string{"bob@example.org"}, bytes.NewReader(sample("bob@example.org"))); err != nil {
		t.Errorf("small mail after the refused one: %v", err)
	}
	if err := c.Quit(); err != nil {
		t.Errorf("quit: %v", err)
	}
	if n := b.count(t); n != 1 {
		t.Errorf("stream holds %d mails, want only the small one", n)
	}

	rcpts := []string{"bob@example.org", "carol@example.net"}
	for r, e := range b.sendLMTP(t, "alice@example.com", rcpts, big) {
		wantReply(t, "LMTP over-size for "+r, e, 552, smtp.EnhancedCode{5, 3, 4})
	}
	if n := b.count(t); n != 1 {
		t.Errorf("stream holds %d mails after LMTP over-size, want 1", n)
	}

	// Just under the limit goes through (exactly MaxSize: TestExactSize).
	if err := b.sendSMTP(t, "alice@example.com", []string{"bob@example.org"}, mailOfSize(t, max-1)); err != nil {
		t.Errorf("mail of MaxSize-1 bytes: %v", err)
	}
}

func TestClaimThresholdCappedByMaxPayload(t *testing.T) {
	const payload = 1 << 20
	b := setupWith(t, options{maxPayload: payload})
	want := int64(payload - 64<<10)
	if got := b.p.Config().ClaimThreshold; got != want {
		t.Fatalf("ClaimThreshold = %d with max_payload %d, want %d", got, payload, want)
	}
	if got := b.p.Config().MaxSize; got != 32<<20 {
		t.Errorf("MaxSize = %d with max_payload %d, want the default 32 MiB, not capped", got, payload)
	}
	// The cap leaves enough room for the envelope: the largest mail
	// stored inline is stored, even with many recipients.
	rcpts := make([]string, 100)
	for i := range rcpts {
		rcpts[i] = fmt.Sprintf("recipient-with-a-long-name-%03d@subdomain.example.org", i)
	}
	raw := mailOfSize(t, int(want))
	if err := b.sendSMTP(t, "alice@example.com", rcpts, raw); err != nil {
		t.Fatalf("largest inline mail: %v", err)
	}
	if msg, env := b.last(t); !bytes.Equal(msg.Data, raw) || env.Claim != nil {
		t.Errorf("largest inline mail stored as %d bytes, claim %+v", len(msg.Data), env.Claim)
	}

	// A smaller configured threshold is kept.
	cfg := producer.Config{ClaimThreshold: 512 << 10}.WithDefaults(payload)
	if cfg.ClaimThreshold != 512<<10 {
		t.Errorf("ClaimThreshold 512 KiB became %d", cfg.ClaimThreshold)
	}
	// An unknown max_payload leaves the defaults alone.
	if got := (producer.Config{}).WithDefaults(0); got.ClaimThreshold != 1<<20 || got.MaxSize != 32<<20 {
		t.Errorf("defaults: ClaimThreshold %d MaxSize %d, want 1 MiB and 32 MiB", got.ClaimThreshold, got.MaxSize)
	}
}

// TestNATSUnavailable: with the server gone, the MTA must get a
// temporary error (it keeps the mail), never a permanent one.
func TestNATSUnavailable(t *testing.T) {
	const timeout = 300 * time.Millisecond
	b := setupWith(t, options{producer: producer.Config{PublishTimeout: timeout}})
	b.closeSrv()

	start := time.Now()
	err := b.sendSMTP(t, "alice@example.com", []string{"bob@example.org"}, sample("bob@example.org"))
	wantReply(t, "SMTP with NATS down", err, 451, smtp.EnhancedCode{4, 3, 0})
	t.Logf("SMTP refusal after %v", time.Since(start))

	rcpts := []string{"bob@example.org", "carol@example.net", "dave@example.com"}
	replies := b.sendLMTP(t, "alice@example.com", rcpts, sample("bob@example.org"))
	for _, r := range rcpts {
		wantReply(t, "LMTP with NATS down for "+r, replies[r], 451, smtp.EnhancedCode{4, 3, 0})
	}
}

// TestStreamFull: a full stream (DiscardNew) refuses new mail with a
// temporary error, promptly.
func TestStreamFull(t *testing.T) {
	const timeout = 5 * time.Second
	b := setupWith(t, options{
		provision: provision.Config{MailMaxBytes: 4 << 10},
		producer:  producer.Config{PublishTimeout: timeout},
	})
	raw := mailOfSize(t, 1<<10)
	stored := 0
	for {
		if stored > 10 {
			t.Fatalf("a 4 KiB stream took %d mails of 1 KiB", stored)
		}
		start := time.Now()
		// A recipient of its own per send: each is a distinct mail (the
		// same bytes to the same envelope are one, stored once).
		err := b.sendSMTP(t, "alice@example.com", []string{fmt.Sprintf("bob%d@example.org", stored)}, raw)
		if err == nil {
			stored++
			continue
		}
		wantReply(t, "SMTP to a full stream", err, 451, smtp.EnhancedCode{4, 3, 0})
		// The server answers "full" at once; waiting for the publish
		// timeout would mean the error was taken for a lost ack.
		if d := time.Since(start); d >= timeout {
			t.Errorf("refusal took %v, not less than the publish timeout %v", d, timeout)
		}
		break
	}
	if stored == 0 {
		t.Fatal("the first mail was refused already")
	}
	if n := b.count(t); n != uint64(stored) {
		t.Errorf("stream holds %d mails, %d were accepted", n, stored)
	}
	rcpts := []string{"bob@example.org", "carol@example.net"}
	for r, e := range b.sendLMTP(t, "alice@example.com", rcpts, raw) {
		wantReply(t, "LMTP to a full stream for "+r, e, 451, smtp.EnhancedCode{4, 3, 0})
	}
}

func TestBadAddress(t *testing.T) {
	b := setup(t)
	c, _ := b.dial(t, false, "client.test")
	if err := c.Mail("alice@example.com", nil); err != nil {
		t.Fatal(err)
	}
	for _, rcpt := range []string{
		`"a<>b"@example.org`, // go-smtp unquotes the local part to a<>b
		"bob@exa<mple.org",
	} {
		wantReply(t, "RCPT "+rcpt, c.Rcpt(rcpt, nil), 553, smtp.EnhancedCode{5, 1, 3})
	}
	// Without a domain, go-smtp's own parser refuses the command before
	// the producer sees it: a permanent syntax error all the same.
	var se *smtp.SMTPError
	if err := c.Rcpt("bob", nil); !errors.As(err, &se) || se.Code/100 != 5 {
		t.Errorf("RCPT without a domain: %v, want a 5xx", err)
	}
	// The transaction survives the refusals.
	if err := c.Rcpt("bob@example.org", nil); err != nil {
		t.Fatalf("good RCPT after bad ones: %v", err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(sample("bob@example.org")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("DATA: %v", err)
	}
	_, env := b.last(t)
	if !slices.Equal(env.RcptTo, []string{"bob@example.org"}) {
		t.Errorf("RcptTo = %q, want only the good recipient", env.RcptTo)
	}

	// A bad sender is refused the same way.
	wantReply(t, "MAIL FROM bad", c.Mail(`"x<>"@example.com`, nil), 553, smtp.EnhancedCode{5, 1, 3})
	if err := c.Quit(); err != nil {
		t.Errorf("quit: %v", err)
	}
	if n := b.count(t); n != 1 {
		t.Errorf("stream holds %d mails, want 1", n)
	}
}

func TestPublisherDedup(t *testing.T) {
	b := setup(t)
	pub := producer.NewPublisher(b.js, "", time.Second)
	raw := sample("bob@example.org")
	env := contracts.Envelope{ID: "dedup-1", RcptTo: []string{"bob@example.org"}, Protocol: "publish"}
	env2 := env

	ack1, err := pub.Publish(t.Context(), &env, raw)
	if err != nil {
		t.Fatal(err)
	}
	if ack1.Duplicate {
		t.Error("first publish reported as a duplicate")
	}
	ack2, err := pub.Publish(t.Context(), &env2, raw)
	if err != nil {
		t.Fatal(err)
	}
	if !ack2.Duplicate || ack2.Sequence != ack1.Sequence {
		t.Errorf("second publish: duplicate %v seq %d, want duplicate of seq %d", ack2.Duplicate, ack2.Sequence, ack1.Sequence)
	}
	if n := b.count(t); n != 1 {
		t.Errorf("stream holds %d mails, want 1", n)
	}
	if env.ReceivedAt.IsZero() {
		t.Error("Publish did not set ReceivedAt")
	}

	// An empty id is filled in with the content id: the same for the
	// same bytes to the same envelope (recipients in any order), which
	// is then stored once, and another for any other mail.
	e1 := contracts.Envelope{RcptTo: []string{"bob@example.org", "carol@example.net"}, Protocol: "publish"}
	e2 := contracts.Envelope{RcptTo: []string{"carol@example.net", "bob@example.org"}, Protocol: "publish"}
	e3 := contracts.Envelope{RcptTo: []string{"bob@example.org"}, Protocol: "publish"}
	var acks []*jetstream.PubAck
	for _, e := range []*contracts.Envelope{&e1, &e2, &e3} {
		ack, err := pub.Publish(t.Context(), e, raw)
		if err != nil {
			t.Fatal(err)
		}
		acks = append(acks, ack)
	}
	if want := contracts.ContentID("", e1.RcptTo, raw); e1.ID != want || e2.ID != want {
		t.Errorf("ids %q and %q, want both the content id %q", e1.ID, e2.ID, want)
	}
	if !acks[1].Duplicate || acks[1].Sequence != acks[0].Sequence {
		t.Errorf("the same mail again: ack %+v, want a duplicate of seq %d", acks[1], acks[0].Sequence)
	}
	if e3.ID == "" || e3.ID == e1.ID || acks[2].Duplicate {
		t.Errorf("another envelope: id %q (first %q), ack %+v, want a new mail", e3.ID, e1.ID, acks[2])
	}
	if n := b.count(t); n != 3 {
		t.Errorf("stream holds %d mails, want 3", n)
	}
}

// TestPublisherNoStream: a producer publishing before the mail stream
// was provisioned is told that its mail was not stored.
func TestPublisherNoStream(t *testing.T) {
	srv := systest.Start(t) // not provisioned
	pub := producer.NewPublisher(srv.JetStream(t, access.Producer), "", time.Second)
	env := contracts.Envelope{RcptTo: []string{"bob@example.org"}, Protocol: "publish"}
	_, err := pub.Publish(t.Context(), &env, []byte("Subject: x\r\n\r\n"))
	if !errors.Is(err, producer.ErrNotStored) {
		t.Errorf("publish without a stream: %v, want ErrNotStored", err)
	}
}

func TestBothDisabled(t *testing.T) {
	b := setup(t)
	p, err := producer.New(producer.Config{SMTPAddr: "-", LMTPAddr: "-"}, b.nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(t.Context()); err == nil {
		t.Error("Run with SMTP and LMTP disabled returned nil")
	}
}

// TestRunCancelledAtOnce pins a shutdown race: a context cancelled before
// go-smtp's Serve registered its listener left that listener open, and
// Run never returned.
func TestRunCancelledAtOnce(t *testing.T) {
	b := setup(t)
	for i := range 20 {
		p, err := producer.New(producer.Config{SMTPAddr: "127.0.0.1:0", LMTPAddr: "127.0.0.1:0"}, b.nc)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		done := make(chan error, 1)
		go func() { done <- p.Run(ctx) }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run %d: %v", i, err)
			}
		case <-time.After(wait):
			t.Fatalf("run %d: Run did not return after its context was cancelled", i)
		}
	}
}

// TestHeloAfterSecondEHLO: RFC 5321 lets a client send EHLO again; the
// envelope must carry the name the client gave last, not the first one.
func TestHeloAfterSecondEHLO(t *testing.T) {
	b := setup(t)
	conn, err := net.DialTimeout("tcp", b.smtpAddr, wait)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(wait))
	tc := textproto.NewConn(conn)
	expect := func(code int) {
		t.Helper()
		if _, msg, err := tc.ReadResponse(code); err != nil {
			t.Fatalf("want %d: %v %s", code, err, msg)
		}
	}
	cmd := func(code int, format string, args ...any) {
		t.Helper()
		if err := tc.PrintfLine(format, args...); err != nil {
			t.Fatal(err)
		}
		expect(code)
	}
	expect(220)
	cmd(250, "EHLO first.test")
	cmd(250, "EHLO second.test")
	cmd(250, "MAIL FROM:<alice@example.com>")
	cmd(250, "RCPT TO:<bob@example.org>")
	cmd(354, "DATA")
	w := tc.DotWriter()
	if _, err := w.Write(sample("bob@example.org")); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	expect(250)
	cmd(221, "QUIT")
	if _, env := b.last(t); env.Helo != "second.test" {
		t.Errorf("Helo = %q, want second.test", env.Helo)
	}
}
