package access

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// Keyring is a directory of NKey seeds, one file per role
// ("producer.nk" ...), each readable by its owner alone: the
// credentials of a development or test system, and what `mailscope keys`
// makes for a deployment's Secrets.
type Keyring struct {
	dir  string
	pubs map[Role]string
}

// OpenKeyring reads the seeds of roles in dir, making the directory
// (mode 0700) and every missing seed (mode 0600) first, so a system
// restarted on the same directory keeps its credentials. A seed that is
// not a user NKey is an error, never replaced.
func OpenKeyring(dir string, roles ...Role) (*Keyring, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("access: keyring: %w", err)
	}
	k := &Keyring{dir: dir, pubs: map[Role]string{}}
	for _, r := range roles {
		pub, err := k.load(r)
		if errors.Is(err, fs.ErrNotExist) {
			pub, err = k.create(r)
		}
		if err != nil {
			return nil, err
		}
		k.pubs[r] = pub
	}
	return k, nil
}

func (k *Keyring) load(r Role) (string, error) {
	data, err := os.ReadFile(k.SeedFile(r))
	if err != nil {
		return "", err
	}
	kp, err := nkeys.FromSeed(bytes.TrimSpace(data))
	if err != nil {
		return "", fmt.Errorf("access: %s: not an NKey seed: %w", k.SeedFile(r), err)
	}
	defer kp.Wipe()
	pub, err := kp.PublicKey()
	if err != nil {
		return "", err
	}
	if !nkeys.IsValidPublicUserKey(pub) {
		return "", fmt.Errorf("access: %s: not a user NKey seed", k.SeedFile(r))
	}
	return pub, nil
}

func (k *Keyring) create(r Role) (string, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return "", err
	}
	defer kp.Wipe()
	seed, err := kp.Seed()
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(k.SeedFile(r), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("access: keyring: %w", err)
	}
	_, err = f.Write(append(seed, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("access: keyring: %w", err)
	}
	return kp.PublicKey()
}

// Dir returns the keyring's directory.
func (k *Keyring) Dir() string { return k.dir }

// SeedFile returns the path of r's seed file (present once the keyring
// was opened with r).
func (k *Keyring) SeedFile(r Role) string { return filepath.Join(k.dir, string(r)+".nk") }

// PublicKey returns r's public NKey ("U..."), "" when the keyring was
// not opened with r.
func (k *Keyring) PublicKey(r Role) string { return k.pubs[r] }

// PublicKeys returns every role's public key, by role.
func (k *Keyring) PublicKeys() map[Role]string {
	out := make(map[Role]string, len(k.pubs))
	for r, p := range k.pubs {
		out[r] = p
	}
	return out
}

// Options returns the connection options of a client of role r: its
// NKey from the keyring and its inbox prefix.
func (k *Keyring) Options(r Role) ([]nats.Option, error) {
	opt, err := nats.NkeyOptionFromSeed(k.SeedFile(r))
	if err != nil {
		return nil, fmt.Errorf("access: %s credentials: %w", r, err)
	}
	return []nats.Option{opt, nats.CustomInboxPrefix(r.InboxPrefix())}, nil
}
