package workers_test

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/producer"
	"github.com/mailscope/mailscope/provision"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/testkit"
	"github.com/mailscope/mailscope/workers"
)

// putClaim writes raw into the claim bucket as the producer does and
// returns the claim.
func putClaim(t *testing.T, produce jetstream.JetStream, raw []byte) *contracts.Claim {
	t.Helper()
	obs, err := produce.ObjectStore(t.Context(), contracts.DefaultNames().ClaimBucket)
	if err != nil {
		t.Fatal(err)
	}
	name := producer.NewClaimName()
	info, err := obs.Put(t.Context(), jetstream.ObjectMeta{Name: name}, bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return &contracts.Claim{Object: name, Size: int64(info.Size)}
}

// publishClaim puts a claimed mail's message on the mail stream.
func (b *bundle) publishClaim(t *testing.T, id, rcpt string, c *contracts.Claim) {
	t.Helper()
	env := &contracts.Envelope{ID: id, MailFrom: "alice@example.com", RcptTo: []string{rcpt}, Protocol: "publish", Claim: c}
	if _, err := b.pub.Publish(t.Context(), env, nil); err != nil {
		t.Fatalf("publish %s: %v", id, err)
	}
}

// object returns the claim bucket's object name as the operator sees it,
// nil once it is gone.
func (b *bundle) object(t *testing.T, name string) *jetstream.ObjectInfo {
	t.Helper()
	obs, err := b.sys.JS.ObjectStore(t.Context(), contracts.DefaultNames().ClaimBucket)
	if err != nil {
		t.Fatal(err)
	}
	info, err := obs.GetInfo(t.Context(), name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// largeBody is a body of about n bytes of text lines.
func largeBody(n int) string {
	return strings.Repeat("A line of a large mail, long enough to count.\r\n", n/48)
}

func TestClaimedMail(t *testing.T) {
	b := setup(t, testWorker, provision.Config{})

	t.Run("a claimed, signed mail is processed with dkim pass and its object deleted", func(t *testing.T) {
		b.signed(t, "claim", "claim@example.org") // publishes the key
		raw := b.signedRaw(t, "claim", []byte("From: Alice <alice@example.com>\r\nTo: claim@example.org\r\nSubject: large\r\n"+
			"Message-ID: <claim-1@example.com>\r\n\r\n"+largeBody(3<<20)))
		c := putClaim(t, b.produce, raw)
		b.publishClaim(t, "claim-1", "claim@example.org", c)
		o := b.outcomes.First(t, "claim-1")
		if o.Disposition != contracts.Processed || len(o.Auth.DKIM) != 1 || o.Auth.DKIM[0].Result != contracts.ResultPass {
			t.Fatalf("disposition %s reason %q dkim %+v, want processed with a pass", o.Disposition, o.Reason, o.Auth.DKIM)
		}
		if o.Summary == nil || o.Summary.Size != len(raw) {
			t.Errorf("summary %+v, want the size of the claimed mail", o.Summary)
		}
		if o.Envelope.Claim == nil || *o.Envelope.Claim != *c {
			t.Errorf("outcome's envelope claim %+v, want %+v", o.Envelope.Claim, c)
		}
		systest.WaitDrained(t, b.sys.JS)
		if info := b.object(t, c.Object); info != nil {
			t.Errorf("object %s still there after the outcome and the ack", c.Object)
		}
	})

	t.Run("a claim whose object is missing is dead-lettered as malformed, saying so", func(t *testing.T) {
		b.publishClaim(t, "claim-missing", "missing@example.org", &contracts.Claim{Object: "claim.never-written", Size: 10})
		o := b.outcomes.First(t, "claim-missing")
		if o.Disposition != contracts.Dead || !strings.Contains(o.Reason, "claimed mail body missing") || !strings.Contains(o.Reason, "claim.never-written") {
			t.Errorf("disposition %s reason %q, want dead naming the missing object", o.Disposition, o.Reason)
		}
		if dl := b.deadLetter(t, "claim-missing"); dl.Header.Get(contracts.HeaderDeadClass) != "malformed" {
			t.Errorf("dead letter class %q", dl.Header.Get(contracts.HeaderDeadClass))
		}
	})

	t.Run("a dead-lettered claimed mail keeps its object, adopted, referenced by the dead letter", func(t *testing.T) {
		raw := []byte("Subject: no sender\r\n\r\n" + largeBody(2<<20))
		c := putClaim(t, b.produce, raw)
		b.publishClaim(t, "claim-dead", "dead@example.org", c)
		if o := b.outcomes.First(t, "claim-dead"); o.Disposition != contracts.Dead {
			t.Fatalf("disposition %s, want dead (no From)", o.Disposition)
		}
		dl := b.deadLetter(t, "claim-dead")
		if dl.Header.Get(contracts.HeaderClaim) != c.Object || len(dl.Data) != 0 {
			t.Errorf("dead letter references %q with %d bytes of data, want %s and none", dl.Header.Get(contracts.HeaderClaim), len(dl.Data), c.Object)
		}
		info := b.object(t, c.Object)
		if info == nil || info.Headers.Get(contracts.ClaimAdopted) == "" {
			t.Fatalf("object %s: %+v, want kept and adopted", c.Object, info)
		}
	})

	t.Run("a held claimed mail keeps its object and is processed once resumed", func(t *testing.T) {
		b.putRules(t, rules.FlagPause, "rcpt:^held@ 10 true\n")
		raw := []byte("From: alice@example.com\r\nTo: held@example.org\r\nSubject: held\r\n\r\n" + largeBody(2<<20))
		c := putClaim(t, b.produce, raw)
		b.publishClaim(t, "claim-held", "held@example.org", c)
		systest.WaitFor(t, "the mail to be held", func() bool { return b.sys.Worker.Held() == 1 })
		if info := b.object(t, c.Object); info == nil || info.Headers.Get(contracts.ClaimAdopted) == "" {
			t.Fatalf("held mail's object: %+v, want kept and adopted", info)
		}
		b.putRules(t, rules.FlagPause, "")
		if o := b.outcomes.First(t, "claim-held"); o.Disposition != contracts.Processed {
			t.Fatalf("disposition %s reason %q, want processed once resumed", o.Disposition, o.Reason)
		}
		systest.WaitFor(t, "the object to be deleted", func() bool { return b.object(t, c.Object) == nil })
	})
}

// TestOrphanCollector: with no worker taking mail, an object no message
// references is collected once older than OrphanAge; one whose message
// waits undelivered on the mail stream survives, and so does an adopted
// one once the stream is empty.
func TestOrphanCollector(t *testing.T) {
	env := systest.Start(t)
	ctx := t.Context()
	if err := provision.Run(ctx, env.JetStream(t, access.Provisioner), provision.Config{}); err != nil {
		t.Fatal(err)
	}
	const age = 200 * time.Millisecond
	w, err := workers.New(ctx, workers.Config{OrphanAge: age, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, env.Conn(t, access.Worker))
	if err != nil {
		t.Fatal(err)
	}
	produce := env.JetStream(t, access.Producer)
	raw := []byte("From: alice@example.com\r\n\r\n" + largeBody(300<<10))
	op := env.JetStream(t, access.Operator)
	obs, err := op.ObjectStore(ctx, contracts.DefaultNames().ClaimBucket)
	if err != nil {
		t.Fatal(err)
	}
	info := func(name string) *jetstream.ObjectInfo {
		i, err := obs.GetInfo(ctx, name)
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			return nil
		}
		if err != nil {
			t.Fatal(err)
		}
		return i
	}
	aged := func(c *contracts.Claim) {
		written := info(c.Object).ModTime
		systest.WaitFor(t, "the object to be older than OrphanAge", func() bool { return time.Since(written) > age })
	}

	// A real orphan, the mail stream empty.
	orphan := putClaim(t, produce, raw)
	aged(orphan)
	if n, err := w.CollectOrphans(ctx); err != nil || n != 1 || info(orphan.Object) != nil {
		t.Fatalf("collected %d (%v), want the orphan", n, err)
	}

	// An object whose message waits on the mail stream, undelivered.
	waiting := putClaim(t, produce, raw)
	pub := producer.NewPublisher(produce, "", 0)
	if _, err := pub.Publish(ctx, &contracts.Envelope{ID: "waiting", RcptTo: []string{"bob@example.org"}, Protocol: "publish", Claim: waiting}, nil); err != nil {
		t.Fatal(err)
	}
	aged(waiting)
	if n, err := w.CollectOrphans(ctx); err != nil || n != 0 {
		t.Errorf("collected %d (%v), want none", n, err)
	}
	if info(waiting.Object) == nil {
		t.Fatal("the object of a mail not yet delivered was collected")
	}

	// A worker adopts the waiting mail's object and takes the mail: the
	// stream is empty, the adopted object stays.
	wobs, err := env.JetStream(t, access.Worker).ObjectStore(ctx, contracts.DefaultNames().ClaimBucket)
	if err != nil {
		t.Fatal(err)
	}
	meta := info(waiting.Object).ObjectMeta
	meta.Headers = map[string][]string{contracts.ClaimAdopted: {"now"}}
	if err := wobs.UpdateMeta(ctx, waiting.Object, meta); err != nil {
		t.Fatal(err)
	}
	mail, err := env.Admin(t).Stream(ctx, contracts.DefaultNames().MailStream)
	if err != nil {
		t.Fatal(err)
	}
	if err := mail.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := w.CollectOrphans(ctx); err != nil || n != 0 {
		t.Errorf("collected %d (%v) of an adopted object", n, err)
	}
	if info(waiting.Object) == nil {
		t.Error("an adopted object was collected")
	}

	// An orphan written before the oldest message by more than OrphanAge
	// is collected although the stream holds mail.
	late := putClaim(t, produce, raw)
	lateAt := info(late.Object).ModTime
	systest.WaitFor(t, "the object to be older than OrphanAge", func() bool { return time.Since(lateAt) > age })
	if _, err := pub.Publish(ctx, &contracts.Envelope{ID: "newer", RcptTo: []string{"bob@example.org"}, Protocol: "publish"}, raw); err != nil {
		t.Fatal(err)
	}
	if n, err := w.CollectOrphans(ctx); err != nil || n != 1 || info(late.Object) != nil {
		t.Errorf("collected %d (%v); want the orphan older than the oldest message by OrphanAge", n, err)
	}
}

// putRules stores flag's rule text as the operator and waits until the
// worker has loaded it.
func (b *bundle) putRules(t *testing.T, flag, text string) {
	t.Helper()
	kv, err := b.sys.JS.KeyValue(t.Context(), contracts.DefaultNames().FlagsBucket)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := kv.PutString(t.Context(), flag, text)
	if err != nil {
		t.Fatal(err)
	}
	systest.WaitFor(t, "the worker to load the rules", func() bool {
		rs := b.sys.Worker.Rules().Snapshot().RuleSet(flag)
		return rs != nil && rs.Revision >= rev
	})
}

// signedRaw signs raw as example.com with selector sel (whose key
// signed publishes).
func (b *bundle) signedRaw(t *testing.T, sel string, raw []byte) []byte {
	t.Helper()
	out, err := testkit.Sign(raw, testkit.SignOptions{Domain: "example.com", Selector: sel, Key: b.key})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMaxClaimed: with one slot for claimed mail, several claimed mails
// (and inline mail beside them) all get their outcome and leave no
// object.
func TestMaxClaimed(t *testing.T) {
	cfg := testWorker
	cfg.MaxClaimed = 1
	b := setup(t, cfg, provision.Config{})
	var claims []*contracts.Claim
	for i := range 4 {
		id := "claimed-" + string(rune('a'+i))
		c := putClaim(t, b.produce, []byte("From: alice@example.com\r\nSubject: "+id+"\r\n\r\n"+largeBody(1<<20)))
		claims = append(claims, c)
		b.publishClaim(t, id, id+"@example.org", c)
		b.publish(t, "inline-"+id, id+"@example.org", []byte("From: alice@example.com\r\n\r\nsmall\r\n"))
	}
	for i := range 4 {
		id := "claimed-" + string(rune('a'+i))
		for _, m := range []string{id, "inline-" + id} {
			if o := b.outcomes.First(t, m); o.Disposition != contracts.Processed {
				t.Errorf("%s: disposition %s reason %q", m, o.Disposition, o.Reason)
			}
		}
	}
	systest.WaitDrained(t, b.sys.JS)
	for _, c := range claims {
		systest.WaitFor(t, "object "+c.Object+" to be deleted", func() bool { return b.object(t, c.Object) == nil })
	}
}
