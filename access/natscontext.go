package access

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// NATSContext is a context of the nats CLI (github.com/nats-io/natscli):
// where a server is and whose credentials to use, so that `nats
// --context NAME ...` (or plain `nats ...` once `nats context select
// NAME`) acts as that role.
type NATSContext struct {
	// Description is shown by `nats context ls`.
	Description string `json:"description"`
	// URL is the server's client URL.
	URL string `json:"url"`
	// NKey is the path of the role's seed file.
	NKey string `json:"nkey"`
	// InboxPrefix must be the role's (Role.InboxPrefix): the only
	// inboxes its user may subscribe to.
	InboxPrefix string `json:"inbox_prefix"`
}

// NATSContext returns the context of role r on the server at url.
func (k *Keyring) NATSContext(r Role, url, description string) NATSContext {
	return NATSContext{Description: description, URL: url, NKey: k.SeedFile(r), InboxPrefix: r.InboxPrefix()}
}

// NATSConfigRoot is where the nats CLI keeps its contexts:
// $XDG_CONFIG_HOME, else ~/.config.
func NATSConfigRoot() (string, error) {
	if x := os.Getenv("XDG_CONFIG_HOME"); x != "" {
		return x, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("access: where the nats CLI keeps contexts: %w", err)
	}
	return filepath.Join(home, ".config"), nil
}

// Write writes the context as root/nats/context/NAME.json, the file the
// nats CLI reads for `--context NAME`, replacing one of the same name,
// and returns its path. It selects nothing.
func (c NATSContext) Write(root, name string) (string, error) {
	dir := filepath.Join(root, "nats", "context")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("access: nats context: %w", err)
	}
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, name+".json")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(data, '\n'), 0o600); err != nil {
		return "", fmt.Errorf("access: nats context: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return "", fmt.Errorf("access: nats context: %w", err)
	}
	return path, nil
}
