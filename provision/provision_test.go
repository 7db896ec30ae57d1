package provision_test

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/groupcommit"
	"github.com/mailscope/mailscope/provision"
	"github.com/mailscope/mailscope/systest"
)

func jetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	_, js := systest.JetStream(t)
	return js
}

// TestRunIdempotent provisions twice, the second time with changed
// settings, and checks what the server holds.
func TestRunIdempotent(t *testing.T) {
	js := jetStream(t)
	ctx := t.Context()
	if err := provision.Run(ctx, js, provision.Config{}); err != nil {
		t.Fatal(err)
	}
	if err := provision.Run(ctx, js, provision.Config{AckWait: time.Minute,
		Names: contracts.Names{KeyBucket: "mail_dkim_keys"}}); err != nil {
		t.Fatalf("second run with changed settings: %v", err)
	}
	n := contracts.DefaultNames()
	for _, c := range []struct {
		stream    string
		subjects  []string
		retention jetstream.RetentionPolicy
		discard   jetstream.DiscardPolicy
		atomic    bool
	}{
		{n.MailStream, []string{n.MailSubject, n.ResumeSubject}, jetstream.WorkQueuePolicy, jetstream.DiscardNew, true},
		{n.HeldStream, []string{n.HeldSubject}, jetstream.WorkQueuePolicy, jetstream.DiscardNew, false},
		{n.OutcomeStream, []string{n.OutcomePrefix + ".>"}, jetstream.LimitsPolicy, jetstream.DiscardOld, true},
		{n.DeadStream, []string{n.DeadSubject}, jetstream.LimitsPolicy, jetstream.DiscardNew, false},
		{n.CommandStream, []string{n.CommandPrefix + ".>", n.ReplySubject}, jetstream.LimitsPolicy, jetstream.DiscardNew, false},
	} {
		s, err := js.Stream(ctx, c.stream)
		if err != nil {
			t.Fatalf("stream %s: %v", c.stream, err)
		}
		cfg := s.CachedInfo().Config
		if !slices.Equal(cfg.Subjects, c.subjects) || cfg.Retention != c.retention ||
			cfg.Discard != c.discard || cfg.Storage != jetstream.FileStorage || cfg.AllowAtomicPublish != c.atomic {
			t.Errorf("stream %s: %+v", c.stream, cfg)
		}
	}
	for stream, name := range map[string]string{n.MailStream: n.Consumer, n.HeldStream: n.HeldConsumer} {
		cons, err := js.Consumer(ctx, stream, name)
		if err != nil {
			t.Fatalf("consumer %s: %v", name, err)
		}
		cfg := cons.CachedInfo().Config
		if cfg.AckPolicy != jetstream.AckExplicitPolicy || cfg.MaxDeliver != -1 || cfg.AckWait != time.Minute {
			t.Errorf("consumer %s: %+v", name, cfg)
		}
	}
	for _, b := range []string{n.FlagsBucket, n.StatusBucket, "mail_dkim_keys"} {
		if _, err := js.KeyValue(ctx, b); err != nil {
			t.Errorf("bucket %s: %v", b, err)
		}
	}
}

// TestNoKeyBucketUnlessAsked: the staging key bucket is never created by
// default.
func TestNoKeyBucketUnlessAsked(t *testing.T) {
	js := jetStream(t)
	if err := provision.Run(t.Context(), js, provision.Config{}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.KeyValue(t.Context(), "mail_dkim_keys"); err == nil {
		t.Error("a key bucket exists without being asked for")
	}
}

// TestOutcomeStreamAtomic: an outcome stream provisioned without atomic
// publish is updated to allow it, on every run, and then takes the
// workers' group-committed outcome events as atomic batches.
func TestOutcomeStreamAtomic(t *testing.T) {
	js := jetStream(t)
	ctx := t.Context()
	c := provision.Config{}.WithDefaults()
	old := c.OutcomeStream()
	old.AllowAtomicPublish = false
	if _, err := js.CreateStream(ctx, old); err != nil {
		t.Fatal(err)
	}
	wantAtomicAfterRuns(t, js, c.Names.OutcomeStream)

	const n = 4
	pub := groupcommit.New(js, groupcommit.Config{Window: time.Minute, MinMsgs: 2, MaxMsgs: n, Timeout: time.Minute})
	errs := make(chan error, n)
	for i := range n {
		go func() {
			subject := c.Names.OutcomePrefix + []string{".processed", ".dead"}[i%2]
			_, err := pub.Publish(ctx, &nats.Msg{Subject: subject, Data: []byte("{}")}, fmt.Sprintf("mail-%d", i))
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if s := pub.Stats(); s.Batches != 1 || s.BatchedMails != n {
		t.Errorf("stats %+v, want one batch of %d outcomes", s, n)
	}
}

// TestMailStreamAtomic: a mail stream provisioned without atomic publish
// (before the producer's group commit became the default) is updated to
// allow it, on every run, and then takes the producer's batches.
func TestMailStreamAtomic(t *testing.T) {
	js := jetStream(t)
	ctx := t.Context()
	c := provision.Config{}.WithDefaults()
	old := c.MailStream()
	old.AllowAtomicPublish = false
	if _, err := js.CreateStream(ctx, old); err != nil {
		t.Fatal(err)
	}
	wantAtomicAfterRuns(t, js, c.Names.MailStream)

	const n = 4
	pub := groupcommit.New(js, groupcommit.Config{Window: time.Minute, MinMsgs: 2, MaxMsgs: n, Timeout: time.Minute})
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := pub.Publish(ctx, &nats.Msg{Subject: c.Names.MailSubject, Data: []byte("mail")}, fmt.Sprintf("mail-%d", i))
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if s := pub.Stats(); s.Batches != 1 || s.BatchedMails != n {
		t.Errorf("stats %+v, want one batch of %d mails", s, n)
	}
}

// wantAtomicAfterRuns provisions twice and checks, after each run, that
// the stream allows atomic publish.
func wantAtomicAfterRuns(t *testing.T, js jetstream.JetStream, stream string) {
	t.Helper()
	for run := range 2 {
		if err := provision.Run(t.Context(), js, provision.Config{}); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		s, err := js.Stream(t.Context(), stream)
		if err != nil {
			t.Fatal(err)
		}
		if !s.CachedInfo().Config.AllowAtomicPublish {
			t.Fatalf("run %d: stream %s does not allow atomic publish", run, stream)
		}
	}
}

// TestResumeSubjectUpgrade: a mail stream and workers consumer
// provisioned before held mail had a resume subject of its own (one
// subject, one filter) take it on the next run, keeping stored mail.
func TestResumeSubjectUpgrade(t *testing.T) {
	js := jetStream(t)
	ctx := t.Context()
	c := provision.Config{}.WithDefaults()
	old := c.MailStream()
	old.Subjects = []string{c.Names.MailSubject}
	if _, err := js.CreateStream(ctx, old); err != nil {
		t.Fatal(err)
	}
	oldCons := c.Consumer()
	oldCons.FilterSubjects, oldCons.FilterSubject = nil, c.Names.MailSubject
	if _, err := js.CreateConsumer(ctx, c.Names.MailStream, oldCons); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, c.Names.MailSubject, []byte("stored before")); err != nil {
		t.Fatal(err)
	}
	if err := provision.Run(ctx, js, provision.Config{}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, c.Names.ResumeSubject, []byte("resumed")); err != nil {
		t.Fatalf("publish on the resume subject after the upgrade: %v", err)
	}
	cons, err := js.Consumer(ctx, c.Names.MailStream, c.Names.Consumer)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{c.Names.MailSubject, c.Names.ResumeSubject}
	if got := cons.CachedInfo().Config.FilterSubjects; !slices.Equal(got, want) {
		t.Errorf("filter subjects %q, want %q", got, want)
	}
	// The server counts the pending mail asynchronously after a publish:
	// wait for both, and fail if it ever counts more.
	systest.WaitFor(t, "the stored mail and the resumed one pending", func() bool {
		info, err := cons.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.NumPending > 2 {
			t.Fatalf("%d mails pending, want the stored one and the resumed one", info.NumPending)
		}
		return info.NumPending == 2
	})
}

// TestOutcomeAndDeadCapped: neither stream that grows with mail can fill
// the server's store; outcomes make room by age, dead letters (mail)
// by refusing the new one, which then stays on the mail stream.
func TestOutcomeAndDeadCapped(t *testing.T) {
	js := jetStream(t)
	if err := provision.Run(t.Context(), js, provision.Config{DeadMaxBytes: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	n := contracts.DefaultNames()
	for name, want := range map[string]struct {
		max     int64
		discard jetstream.DiscardPolicy
	}{n.OutcomeStream: {4 << 30, jetstream.DiscardOld}, n.DeadStream: {1 << 20, jetstream.DiscardNew}} {
		s, err := js.Stream(t.Context(), name)
		if err != nil {
			t.Fatal(err)
		}
		if cfg := s.CachedInfo().Config; cfg.MaxBytes != want.max || cfg.Discard != want.discard {
			t.Errorf("%s: max bytes %d discard %v, want %d %v", name, cfg.MaxBytes, cfg.Discard, want.max, want.discard)
		}
	}
	big := make([]byte, 600<<10)
	if _, err := js.Publish(t.Context(), n.DeadSubject, big); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(t.Context(), n.DeadSubject, big); err == nil {
		t.Error("a dead letter past the cap was stored")
	}
}

// TestDuplicateWindowsUpgrade: streams provisioned with the old 2- and
// 10-minute duplicate windows take the long ones on the next run,
// keeping stored mail, and a window set by flag is applied; outcome and
// dead-letter windows shorter than the mail window are refused.
func TestDuplicateWindowsUpgrade(t *testing.T) {
	js := jetStream(t)
	ctx := t.Context()
	c := provision.Config{}.WithDefaults()
	for _, sc := range []jetstream.StreamConfig{c.MailStream(), c.OutcomeStream(), c.DeadStream()} {
		sc.Duplicates = 2 * time.Minute
		if sc.Name == c.Names.OutcomeStream {
			sc.Duplicates = 10 * time.Minute
		}
		if _, err := js.CreateStream(ctx, sc); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := js.Publish(ctx, c.Names.MailSubject, []byte("stored before"), jetstream.WithMsgID("before")); err != nil {
		t.Fatal(err)
	}
	windows := func() map[string]time.Duration {
		got := map[string]time.Duration{}
		for _, name := range []string{c.Names.MailStream, c.Names.OutcomeStream, c.Names.DeadStream, c.Names.CommandStream} {
			s, err := js.Stream(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			got[name] = s.CachedInfo().Config.Duplicates
		}
		return got
	}
	if err := provision.Run(ctx, js, provision.Config{}); err != nil {
		t.Fatal(err)
	}
	want := map[string]time.Duration{c.Names.MailStream: time.Hour, c.Names.OutcomeStream: 70 * time.Minute, c.Names.DeadStream: 70 * time.Minute,
		c.Names.CommandStream: 70 * time.Minute}
	if got := windows(); !maps.Equal(got, want) {
		t.Errorf("windows after the upgrade %v, want %v", got, want)
	}
	ack, err := js.Publish(ctx, c.Names.MailSubject, []byte("stored before"), jetstream.WithMsgID("before"))
	if err != nil || !ack.Duplicate {
		t.Errorf("the mail stored before, again: ack %+v err %v, want a duplicate", ack, err)
	}

	if err := provision.Run(ctx, js, provision.Config{DuplicateWindow: 6 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	want = map[string]time.Duration{c.Names.MailStream: 6 * time.Hour, c.Names.OutcomeStream: 6*time.Hour + 10*time.Minute, c.Names.DeadStream: 6*time.Hour + 10*time.Minute,
		c.Names.CommandStream: 6*time.Hour + 10*time.Minute}
	if got := windows(); !maps.Equal(got, want) {
		t.Errorf("windows with a 6h mail window %v, want %v", got, want)
	}
	for _, bad := range []provision.Config{
		{DuplicateWindow: time.Hour, OutcomeDuplicateWindow: 30 * time.Minute},
		{DuplicateWindow: time.Hour, DeadDuplicateWindow: 30 * time.Minute},
		{DuplicateWindow: time.Hour, CommandDuplicateWindow: 30 * time.Minute},
	} {
		if err := provision.Run(ctx, js, bad); err == nil || !strings.Contains(err.Error(), "shorter than the mail stream's") {
			t.Errorf("%+v: err %v, want the window refused", bad, err)
		}
	}
}

// TestArchiveOptIn: no archive unless asked; asked, every mail the mail
// stream stores is copied into it (resumed held mail is not), and it
// stays when the workers take the mail; provisioned without it again,
// the mail stream stops copying and the archive is left for an
// administrator to remove.
func TestArchiveOptIn(t *testing.T) {
	js := jetStream(t)
	ctx := t.Context()
	if err := provision.Run(ctx, js, provision.Config{}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Stream(ctx, "MAIL_ARCHIVE"); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("archive without asking: %v", err)
	}
	c := provision.Config{ArchiveMaxBytes: 1 << 20}
	if err := provision.Run(ctx, js, c); err != nil {
		t.Fatal(err)
	}
	ar, err := js.Stream(ctx, "MAIL_ARCHIVE")
	if err != nil {
		t.Fatal(err)
	}
	if cfg := ar.CachedInfo().Config; cfg.MaxAge != 24*time.Hour || cfg.MaxBytes != 1<<20 || cfg.Discard != jetstream.DiscardOld || cfg.Retention != jetstream.LimitsPolicy {
		t.Errorf("archive config: max age %s, max bytes %d, discard %v, retention %v", cfg.MaxAge, cfg.MaxBytes, cfg.Discard, cfg.Retention)
	}
	for _, subject := range []string{"mail.incoming", "mail.resumed"} {
		if _, err := js.Publish(ctx, subject, []byte(subject)); err != nil {
			t.Fatal(err)
		}
	}
	archived := func() uint64 {
		i, err := ar.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return i.State.Msgs
	}
	systest.WaitFor(t, "the incoming mail archived", func() bool { return archived() == 1 })
	m, err := ar.GetLastMsgForSubject(ctx, "mail.archived")
	if err != nil || string(m.Data) != "mail.incoming" {
		t.Fatalf("archived %v %q, want the incoming mail", err, m.Data)
	}
	if err := provision.Run(ctx, js, provision.Config{}); err != nil {
		t.Fatal(err)
	}
	mail, err := js.Stream(ctx, "MAIL")
	if err != nil {
		t.Fatal(err)
	}
	if rp := mail.CachedInfo().Config.RePublish; rp != nil {
		t.Errorf("archive off: the mail stream still republishes %+v", rp)
	}
	if n := archived(); n != 1 {
		t.Errorf("archive off: it holds %d, want the 1 archived, left alone", n)
	}
}
