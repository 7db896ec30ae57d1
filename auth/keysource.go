package auth

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go/jetstream"
)

// KeySource is a source of DKIM key records that a [Verifier] asks before
// DNS ([Config.KeySource]).
type KeySource interface {
	// LookupKey returns the key record (the TXT value, "v=DKIM1; k=...;
	// p=...") published under name, "selector._domainkey.domain". When
	// it has none, the error wraps [ErrNotFound] and the key is looked up
	// in DNS; any other error makes the signature a temperror.
	LookupKey(ctx context.Context, name string) (string, error)
}

// KVKeys is a [KeySource] backed by a NATS KV bucket: the staging key
// source (contracts.Names.KeyBucket). Each key is [KeyName] of a record's
// DNS name, each value the record. It is read on every lookup, never
// cached, so a key put or deleted applies to the next mail.
//
// It is for staging and development only: whoever can write the bucket
// can make a signature of any domain pass, so a production worker must
// not be given one.
type KVKeys struct {
	kv jetstream.KeyValue
}

// NewKVKeys returns a key source reading (and writing, for tools) kv.
func NewKVKeys(kv jetstream.KeyValue) *KVKeys { return &KVKeys{kv: kv} }

// KeyName returns the KV key of the key record with DNS name name: the
// name lower-cased (DNS names are not case-sensitive, KV keys are) and
// without a trailing dot, e.g. "sel._domainkey.example.com". KV keys may
// contain dots.
func KeyName(name string) string {
	return strings.TrimSuffix(strings.ToLower(name), ".")
}

// LookupKey returns the record stored under KeyName(name). A key that is
// absent, deleted, or not a valid KV key (d= and s= come from the mail, so
// anything is possible) wraps ErrNotFound.
func (k *KVKeys) LookupKey(ctx context.Context, name string) (string, error) {
	e, err := k.kv.Get(ctx, KeyName(name))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrInvalidKey):
		return "", fmt.Errorf("auth: key bucket %s: %s: %w", k.kv.Bucket(), KeyName(name), ErrNotFound)
	case err != nil:
		return "", fmt.Errorf("auth: key bucket %s: %s: %w", k.kv.Bucket(), KeyName(name), err)
	}
	return string(e.Value()), nil
}

// Put stores record under KeyName(name) and returns its revision.
func (k *KVKeys) Put(ctx context.Context, name, record string) (uint64, error) {
	rev, err := k.kv.PutString(ctx, KeyName(name), record)
	if err != nil {
		return 0, fmt.Errorf("auth: key bucket %s: put %s: %w", k.kv.Bucket(), KeyName(name), err)
	}
	return rev, nil
}

// Delete removes the record under KeyName(name); lookups then go to DNS.
func (k *KVKeys) Delete(ctx context.Context, name string) error {
	if err := k.kv.Delete(ctx, KeyName(name)); err != nil {
		return fmt.Errorf("auth: key bucket %s: delete %s: %w", k.kv.Bucket(), KeyName(name), err)
	}
	return nil
}
