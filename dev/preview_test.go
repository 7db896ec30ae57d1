package dev_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/auth"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/dev"
	"github.com/mailscope/mailscope/preview"
	"github.com/mailscope/mailscope/rules"
	"github.com/mailscope/mailscope/systest"
	"github.com/mailscope/mailscope/workers"
)

// TestFlagsPreview: with the opt-in archive on, ten mails go through the
// real wiring and are archived although the workers acknowledged them (group commit on);
// replayed as the operator against proposed mail.handler rules that move
// three of them to the webhook, the preview reports exactly those three
// (by proposed value and by transition, with their ids), and nothing is
// published, posted or consumed: the outcome and archive streams and the
// webhook receiver are as before. Without the archive, the preview says
// how to turn it on.
func TestFlagsPreview(t *testing.T) {
	rv := newReceiver(t, func(w http.ResponseWriter, _ *http.Request, _ string, _ int) { w.WriteHeader(http.StatusNoContent) })
	var cfg dev.Config
	cfg.Provision.ArchiveMaxAge = time.Hour
	cfg.Worker.Webhook = workers.WebhookConfig{Endpoints: []workers.WebhookEndpoint{rv.endpoint("tickets", 5*time.Second, 1000)}}
	b := setupDev(t, cfg)
	b.putRules(t, rules.FlagHandler, "rcpt:^p-quarantine 10 quarantine\ndefault 0 publish\n")
	b.putRules(t, rules.FlagWebhookEndpoint, "default 0 tickets\n")

	var rcpts []string
	for i := range 3 {
		rcpts = append(rcpts, fmt.Sprintf("p-move-%d@example.org", i))
	}
	for i := range 2 {
		rcpts = append(rcpts, fmt.Sprintf("p-quarantine-%d@example.org", i))
	}
	for i := range 5 {
		rcpts = append(rcpts, fmt.Sprintf("p-stay-%d@example.org", i))
	}
	ids := map[string]string{} // rcpt -> mail id
	for _, rcpt := range rcpts {
		b.sendSMTP(t, mail(t, rcpt, "preview me", b.rsaKey, "example.com", "s1"), rcpt)
		o := b.outcomes.First(t, rcpt)
		ids[rcpt] = o.ID
		if o.Handler != "publish" && o.Handler != "quarantine" {
			t.Fatalf("mail to %s handled by %q before the preview", rcpt, o.Handler)
		}
	}
	// The server republishes each stored mail into the archive
	// asynchronously, before any worker can take it.
	systest.WaitFor(t, "the 10 mails in the archive", func() bool { return b.streamCount(t, "MAIL_ARCHIVE") >= 10 })
	if n := b.streamCount(t, "MAIL_ARCHIVE"); n != 10 {
		t.Fatalf("the archive holds %d mails, want the 10 sent (acknowledged by the workers)", n)
	}
	outcomesBefore := b.streamCount(t, "MAIL_OUTCOMES")

	// The command's view, as the operator: the live rules loaded once,
	// a pipeline without webhook endpoints, DNS on the test's server.
	js := b.js(t, access.Operator)
	kv, err := js.KeyValue(t.Context(), "mail_flags")
	if err != nil {
		t.Fatal(err)
	}
	store := rules.NewStore(kv, nil)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if err := store.Start(ctx); err != nil {
		t.Fatal(err)
	}
	pcfg := workers.Config{Names: b.sys.Config.Worker.Names, Auth: auth.Config{DNSServers: []string{b.keys.Addr()}}}
	pipe := workers.NewPipeline(pcfg)

	mails, skipped, err := preview.Archive(t.Context(), js, contracts.Names{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(mails) != 10 || len(skipped) != 0 {
		t.Fatalf("archive read %d mails, %d skipped (%+v), want 10 and 0", len(mails), len(skipped), skipped)
	}
	proposed, err := rules.Parse(rules.FlagHandler, 0, []byte("rcpt:^p-move 20 webhook\nrcpt:^p-quarantine 10 quarantine\ndefault 0 publish\n"))
	if err != nil {
		t.Fatal(err)
	}
	r, err := preview.Run(t.Context(), pipe, store.Snapshot(), rules.FlagHandler, proposed, mails)
	if err != nil {
		t.Fatal(err)
	}
	moved := []string{ids[rcpts[0]], ids[rcpts[1]], ids[rcpts[2]]}
	slices.Sort(moved)
	if r.Replayed != 10 || r.Changed != 3 || len(r.Skipped) != 0 {
		t.Errorf("replayed %d, changed %d, skipped %+v: want 10, 3, none", r.Replayed, r.Changed, r.Skipped)
	}
	wantValues := []preview.Value{{Value: "publish", Mails: 5}, {Value: "quarantine", Mails: 2}, {Value: "webhook", Mails: 3, Changed: 3, Examples: moved}}
	for i := range r.Values {
		slices.Sort(r.Values[i].Examples)
	}
	if fmt.Sprint(r.Values) != fmt.Sprint(wantValues) {
		t.Errorf("by value %+v, want %+v", r.Values, wantValues)
	}
	if len(r.Transitions) != 1 {
		t.Fatalf("transitions %+v, want one", r.Transitions)
	}
	tr := r.Transitions[0]
	slices.Sort(tr.Examples)
	if tr.From != "publish" || tr.To != "webhook tickets" || tr.Mails != 3 || !slices.Equal(tr.Examples, moved) {
		t.Errorf("transition %+v, want publish -> webhook tickets for %v", tr, moved)
	}

	// The same rules as live change nothing.
	same, err := preview.Run(t.Context(), pipe, store.Snapshot(), rules.FlagHandler, store.Snapshot().RuleSet(rules.FlagHandler), mails)
	if err != nil {
		t.Fatal(err)
	}
	if same.Changed != 0 || same.Replayed != 10 || len(same.Transitions) != 0 {
		t.Errorf("the live rules as proposal: %+v, want no change", same)
	}
	// A mail that does not evaluate is skipped with its reason.
	bad := []preview.Mail{{Envelope: contracts.Envelope{ID: "not-a-mail", RcptTo: []string{"x@example.org"}}, Raw: []byte("no header section at all")}}
	sk, err := preview.Run(t.Context(), pipe, store.Snapshot(), rules.FlagHandler, proposed, bad)
	if err != nil {
		t.Fatal(err)
	}
	if len(sk.Skipped) != 1 || sk.Skipped[0].ID != "not-a-mail" || !strings.Contains(sk.Skipped[0].Reason, "malformed") || sk.Replayed != 0 {
		t.Errorf("malformed mail: %+v, want skipped as malformed", sk)
	}

	if n := b.streamCount(t, "MAIL_OUTCOMES"); n != outcomesBefore {
		t.Errorf("outcome stream went from %d to %d during the preview, want nothing published", outcomesBefore, n)
	}
	if n := b.streamCount(t, "MAIL_ARCHIVE"); n != 10 {
		t.Errorf("archive holds %d after the preview, want 10: a preview consumes nothing", n)
	}
	for _, rcpt := range rcpts {
		if n := len(rv.got(rcpt)); n != 0 {
			t.Errorf("the receiver got %d requests for %s, want none", n, rcpt)
		}
	}

	t.Run("without the archive: an error that says how to turn it on", func(t *testing.T) {
		plain := setup(t, workers.Config{})
		_, _, err := preview.Archive(t.Context(), plain.js(t, access.Operator), contracts.Names{}, 0)
		if !errors.Is(err, preview.ErrNoArchive) || !strings.Contains(err.Error(), "--archive-max-age") {
			t.Errorf("err %v, want ErrNoArchive naming --archive-max-age", err)
		}
	})
	t.Run("the observer may not read the archive (raw mail)", func(t *testing.T) {
		_, _, err := preview.Archive(t.Context(), b.js(t, access.Observer), contracts.Names{}, 0)
		if err == nil {
			t.Fatal("the observer read the archive")
		}
	})
}
