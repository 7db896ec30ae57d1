package access

import (
	"bytes"
	"cmp"
	"encoding/json"
	"slices"

	"github.com/mailscope/mailscope/contracts"
)

// Account is the NATS account every role's user belongs to, with
// JetStream enabled: what KEDA's scaler is told (`account`) and what
// /jsz?acc= names.
const Account = "MAILSCOPE"

// Accounts returns the `accounts` block of a nats-server configuration,
// as a value that encodes to JSON (nats-server reads JSON as
// configuration): Account with JetStream and one NKey user per role in
// keys, with its permissions on a system named n. A key is either a
// public NKey or, in configuration rendered for the Helm chart, a
// reference such as "<< $MAILSCOPE_WORKER_NKEY >>" that nats-server
// resolves from its environment. Users are in the order of Roles, then
// LoadTest.
func Accounts(n contracts.Names, keys map[Role]string) map[string]any {
	roles := make([]Role, 0, len(keys))
	for r := range keys {
		roles = append(roles, r)
	}
	order := append(Roles(), LoadTest)
	slices.SortFunc(roles, func(a, b Role) int {
		return cmp.Or(cmp.Compare(slices.Index(order, a), slices.Index(order, b)), cmp.Compare(a, b))
	})
	users := make([]any, 0, len(roles))
	for _, r := range roles {
		users = append(users, map[string]any{"nkey": keys[r], "permissions": r.Permissions(n).config()})
	}
	return map[string]any{Account: map[string]any{"jetstream": "enabled", "users": users}}
}

// config is p as nats-server configuration: {"publish": {"allow": [...],
// "deny": [...]}, "subscribe": {...}, "allow_responses": true}, empty
// lists (and allow_responses unless set) left out.
func (p Permissions) config() map[string]any {
	out := map[string]any{}
	for dir, s := range map[string]Subjects{"publish": p.Publish, "subscribe": p.Subscribe} {
		m := map[string]any{}
		if len(s.Allow) > 0 {
			m["allow"] = anys(s.Allow)
		}
		if len(s.Deny) > 0 {
			m["deny"] = anys(s.Deny)
		}
		if len(m) > 0 {
			out[dir] = m
		}
	}
	if p.Responses {
		out["allow_responses"] = true
	}
	return out
}

func anys(s []string) []any {
	out := make([]any, len(s))
	for i, v := range s {
		out[i] = v
	}
	return out
}

// ConfigJSON encodes v as nats-server configuration: JSON without HTML
// escapes ('>' stays '>'; the configuration parser knows no \u escape),
// as the Helm chart's toRawJson renders it.
func ConfigJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
