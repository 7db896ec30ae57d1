package access_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/mailscope/mailscope/access"
	"github.com/mailscope/mailscope/contracts"
	"github.com/mailscope/mailscope/provision"
	"github.com/mailscope/mailscope/systest"
)

// claimBody is larger than one chunk (128 KiB), so that reads and writes
// take several messages, as a large mail does.
var claimBody = bytes.Repeat([]byte("0123456789abcdef"), 40<<10)

// roleStore binds to the claim bucket as role r, on a connection that
// reports permission violations on errs.
func roleStore(t *testing.T, env *systest.Env, r access.Role) (jetstream.ObjectStore, <-chan error) {
	t.Helper()
	errs := make(chan error, 64)
	nc := env.Conn(t, r, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) {
			select {
			case errs <- err:
			default:
			}
		}
	}))
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	obs, err := js.ObjectStore(t.Context(), contracts.DefaultNames().ClaimBucket)
	if err != nil {
		t.Fatalf("%s binds to the claim bucket: %v", r, err)
	}
	return obs, errs
}

// noViolation fails the test when the server reported one to the role.
func noViolation(t *testing.T, r access.Role, errs <-chan error) {
	t.Helper()
	select {
	case err := <-errs:
		t.Errorf("%s: %v", r, err)
	default:
	}
}

// TestClaimBucketPermissions drives the claim bucket through nats.go's
// ObjectStore as every role, on the real server with the roles'
// permissions: the provisioner creates and updates it, the producer
// writes and deletes objects, the worker reads, marks, lists and deletes
// them, the operator reads; and each is refused what it should not do.
func TestClaimBucketPermissions(t *testing.T) {
	env := systest.Start(t)
	ctx := t.Context()
	prov := env.JetStream(t, access.Provisioner)
	for run := range 2 {
		if err := provision.Run(ctx, prov, provision.Config{ClaimMaxBytes: int64(64 << 20 * (run + 1))}); err != nil {
			t.Fatalf("provision run %d: %v", run, err)
		}
	}

	prod, prodErrs := roleStore(t, env, access.Producer)
	for _, name := range []string{"claim.kept", "claim.dropped"} {
		if _, err := prod.Put(ctx, jetstream.ObjectMeta{Name: name}, bytes.NewReader(claimBody)); err != nil {
			t.Fatalf("producer puts %s: %v", name, err)
		}
	}
	if err := prod.Delete(ctx, "claim.dropped"); err != nil {
		t.Fatalf("producer deletes the object it wrote: %v", err)
	}
	noViolation(t, access.Producer, prodErrs)

	work, workErrs := roleStore(t, env, access.Worker)
	info, err := work.GetInfo(ctx, "claim.kept")
	if err != nil {
		t.Fatalf("worker looks up an object: %v", err)
	}
	meta := info.ObjectMeta
	meta.Headers = nats.Header{contracts.ClaimAdopted: []string{"now"}}
	if err := work.UpdateMeta(ctx, "claim.kept", meta); err != nil {
		t.Fatalf("worker marks an object adopted: %v", err)
	}
	readAll(t, access.Worker, work, "claim.kept")
	if list, err := work.List(ctx); err != nil || len(list) != 1 || list[0].Headers.Get(contracts.ClaimAdopted) != "now" {
		t.Fatalf("worker lists objects: %v %v", list, err)
	}
	wjs := env.JetStream(t, access.Worker)
	if _, err := wjs.Stream(ctx, contracts.DefaultNames().MailStream); err != nil {
		t.Fatalf("worker reads the mail stream's state: %v", err)
	}
	noViolation(t, access.Worker, workErrs)

	op, opErrs := roleStore(t, env, access.Operator)
	readAll(t, access.Operator, op, "claim.kept")
	if _, err := op.List(ctx); err != nil {
		t.Fatalf("operator lists objects: %v", err)
	}
	noViolation(t, access.Operator, opErrs)

	// Refused, each as a permission violation naming what was refused:
	// a worker or an operator writing a body, an operator deleting one,
	// an observer reading one. (The calls themselves only end by their
	// context: a refused request gets no answer.)
	refused := func(r access.Role, errs <-chan error, what string, call func(ctx context.Context) error) {
		t.Helper()
		cctx, cancel := context.WithTimeout(ctx, systest.Wait)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- call(cctx) }()
		for {
			select {
			case err := <-errs:
				if strings.Contains(err.Error(), what) {
					cancel()
					<-done
					return
				}
			case err := <-done:
				if err == nil {
					t.Fatalf("%s may %s", r, what)
				}
			case <-cctx.Done():
				t.Fatalf("%s: %s was not refused", r, what)
			}
		}
	}
	refused(access.Worker, workErrs, `Publish to "$O.mail_claims.C.`, func(ctx context.Context) error {
		_, err := work.Put(ctx, jetstream.ObjectMeta{Name: "claim.forged"}, bytes.NewReader(claimBody))
		return err
	})
	refused(access.Operator, opErrs, `Publish to "$O.mail_claims.C.`, func(ctx context.Context) error {
		_, err := op.Put(ctx, jetstream.ObjectMeta{Name: "claim.forged"}, strings.NewReader("x"))
		return err
	})
	refused(access.Operator, opErrs, `Publish to "$O.mail_claims.M.`, func(ctx context.Context) error {
		return op.Delete(ctx, "claim.kept")
	})
	obs, obsErrs := roleStore(t, env, access.Observer)
	refused(access.Observer, obsErrs, `Publish to "$JS.API.DIRECT.GET.OBJ_mail_claims.`, func(ctx context.Context) error {
		r, err := obs.Get(ctx, "claim.kept")
		if err == nil {
			_, err = io.ReadAll(r)
		}
		return err
	})
	readAll(t, access.Worker, work, "claim.kept")

	// The worker deletes the object once the mail has its outcome.
	if err := work.Delete(ctx, "claim.kept"); err != nil {
		t.Fatalf("worker deletes an object: %v", err)
	}
	if _, err := work.GetInfo(ctx, "claim.kept"); !errors.Is(err, jetstream.ErrObjectNotFound) {
		t.Errorf("after the delete: %v, want not found", err)
	}
}

func readAll(t *testing.T, r access.Role, obs jetstream.ObjectStore, name string) {
	t.Helper()
	res, err := obs.Get(t.Context(), name)
	if err != nil {
		t.Fatalf("%s gets %s: %v", r, name, err)
	}
	defer res.Close()
	got, err := io.ReadAll(res)
	if err != nil || !bytes.Equal(got, claimBody) {
		t.Fatalf("%s reads %s: %d bytes, %v", r, name, len(got), err)
	}
}
