package rules

import (
	"errors"
	"slices"
	"strconv"
	"strings"
)

// Type is the type of a flag's value. Every rule value of a flag is
// validated against the flag's Type when the rules are parsed, so a value
// that reaches a worker has always been checked.
type Type int

// The flag value types.
const (
	// TypeString accepts any text, including the empty string.
	TypeString Type = iota
	// TypeBool accepts only the literals listed at ParseBool.
	TypeBool
	// TypeEnum accepts only one of Flag.Enum (exact, case-sensitive).
	TypeEnum
)

// String returns the lower-case name of the type ("bool", "string",
// "enum").
func (t Type) String() string {
	switch t {
	case TypeBool:
		return "bool"
	case TypeString:
		return "string"
	case TypeEnum:
		return "enum"
	}
	return "Type(" + strconv.Itoa(int(t)) + ")"
}

// Flag describes one registered flag.
type Flag struct {
	// Name is the flag name and the KV key holding its rules.
	Name string
	// Type is the type every rule value must have.
	Type Type
	// Default is the text form of the value used when no rule matches.
	Default string
	// Enum lists the allowed values when Type is TypeEnum.
	Enum []string
	// Description is a one-line summary for operators.
	Description string
}

// Names of the known flags.
const (
	// FlagHandler selects the handler that processes a mail: one of
	// "publish", "quarantine", "discard", "webhook", "service", "commands". Default
	// "publish".
	FlagHandler = "mail.handler"
	// FlagReject rejects matching mail with the value as the reason; the
	// empty value means "do not reject". Default "".
	FlagReject = "mail.reject"
	// FlagDKIMVerify is the kill switch for DKIM verification. Default true.
	FlagDKIMVerify = "mail.dkim.verify"
	// FlagDKIMStrong makes an aligned DKIM pass count as strong
	// authentication. Default false.
	FlagDKIMStrong = "mail.auth.dkim_strong"
	// FlagPause holds matching mail safely in the queue. Default false.
	FlagPause = "mail.pause"
	// FlagDryRun lets the handler decide but perform no side effect.
	// Default false.
	FlagDryRun = "mail.dry_run"
	// FlagWebhookEndpoint names the operator-configured endpoint the
	// webhook handler posts to (never a URL). Default "" (none: a mail
	// the webhook handler takes without one is retried, then
	// dead-lettered).
	FlagWebhookEndpoint = "mail.webhook.endpoint"
	// FlagShadowHandler names a second handler that runs in dry run
	// beside the one mail.handler chose, on the same mail: its decision
	// is recorded in the outcome (shadow) and compared, and it never
	// changes what becomes of the mail. One of "none" (no shadow run) or
	// a value of mail.handler. Default "none".
	FlagShadowHandler = "mail.shadow_handler"
	// FlagService names the operator-configured external service (a NATS
	// micro service, never a subject) the service handler asks to decide
	// a mail. Default "" (none: a mail the service handler takes without
	// one is retried, then dead-lettered).
	FlagService = "mail.service"
)

// ShadowNone is the value of mail.shadow_handler that runs no shadow
// handler.
const ShadowNone = "none"

// handlerNames are the values of mail.handler, each a handler the
// workers have.
var handlerNames = []string{"publish", "quarantine", "discard", "webhook", "service", "commands"}

// registry is the table of known flags, sorted by name.
var registry = func() []Flag {
	r := []Flag{
		{Name: FlagHandler, Type: TypeEnum, Default: "publish", Enum: handlerNames,
			Description: "which handler processes the mail"},
		{Name: FlagReject, Type: TypeString, Default: "",
			Description: "reject the mail with the value as reason; empty means do not reject"},
		{Name: FlagDKIMVerify, Type: TypeBool, Default: "true",
			Description: "kill switch for DKIM verification"},
		{Name: FlagDKIMStrong, Type: TypeBool, Default: "false",
			Description: "an aligned DKIM pass makes the mail strongly authenticated"},
		{Name: FlagPause, Type: TypeBool, Default: "false",
			Description: "hold matching mail safely in the queue; resume when switched off"},
		{Name: FlagDryRun, Type: TypeBool, Default: "false",
			Description: "the handler decides but performs no side effect"},
		{Name: FlagWebhookEndpoint, Type: TypeString, Default: "",
			Description: "the configured endpoint (by name) the webhook handler posts to"},
		{Name: FlagShadowHandler, Type: TypeEnum, Default: ShadowNone, Enum: append([]string{ShadowNone}, handlerNames...),
			Description: "a second handler run in dry run beside the live one; its decision is recorded and compared"},
		{Name: FlagService, Type: TypeString, Default: "",
			Description: "the configured external service (by name) the service handler asks to decide the mail"},
	}
	slices.SortFunc(r, func(a, b Flag) int { return strings.Compare(a.Name, b.Name) })
	return r
}()

// Known returns the registry of known flags, sorted by name. The result is
// a copy; changing it does not change the registry.
func Known() []Flag {
	out := make([]Flag, len(registry))
	for i, f := range registry {
		out[i] = f.clone()
	}
	return out
}

// Lookup returns the registered flag with the given name.
func Lookup(name string) (Flag, bool) {
	f, ok := lookup(name)
	if !ok {
		return Flag{}, false
	}
	return f.clone(), true
}

// lookup returns the registry entry without copying its Enum slice.
func lookup(name string) (Flag, bool) {
	i, ok := slices.BinarySearchFunc(registry, name, func(f Flag, n string) int { return strings.Compare(f.Name, n) })
	if !ok {
		return Flag{}, false
	}
	return registry[i], true
}

func (f Flag) clone() Flag {
	f.Enum = slices.Clone(f.Enum)
	return f
}

// ErrBadBool is returned by ParseBool for a word that is not a bool literal.
var ErrBadBool = errors.New(`not a bool: want true/false, on/off, yes/no or 1/0`)

// ParseBool parses a bool flag value. It accepts exactly "true", "on",
// "yes", "1" (true) and "false", "off", "no", "0" (false), compared
// case-insensitively. Any other word, including the empty string, is an
// error: an unrecognised word never means true.
func ParseBool(s string) (bool, error) {
	switch {
	case strings.EqualFold(s, "true"), strings.EqualFold(s, "on"), strings.EqualFold(s, "yes"), s == "1":
		return true, nil
	case strings.EqualFold(s, "false"), strings.EqualFold(s, "off"), strings.EqualFold(s, "no"), s == "0":
		return false, nil
	}
	return false, ErrBadBool
}
