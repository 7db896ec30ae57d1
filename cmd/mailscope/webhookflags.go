package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mailscope/mailscope/workers"
)

// webhookFlags are the worker's webhook endpoint flags (docs/handlers.md,
// "Endpoints"), each NAME=VALUE and repeatable: --webhook NAME=URL,
// --webhook-secret-file NAME=PATH, --webhook-timeout NAME=DURATION and
// --webhook-attachment-limit NAME=BYTES. Secrets are read from files,
// never given on the command line.
type webhookFlags struct {
	c *workers.WebhookConfig
}

func addWebhookFlags(fs *flag.FlagSet, c *workers.WebhookConfig) {
	w := webhookFlags{c}
	fs.Var(endpointFlag{w, func(e *workers.WebhookEndpoint, v string) error {
		if e.URL != "" {
			return fmt.Errorf("URL given twice")
		}
		e.URL = v
		return nil
	}}, "webhook", "NAME=URL: an endpoint rules may choose by name (mail.webhook.endpoint) for the webhook handler; http or https; repeat for more")
	fs.Var(endpointFlag{w, func(e *workers.WebhookEndpoint, path string) error {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("secret file: %w", err)
		}
		if e.Secret = bytes.TrimRight(b, "\r\n"); len(e.Secret) == 0 {
			return fmt.Errorf("secret file %s is empty", path)
		}
		return nil
	}}, "webhook-secret-file", "NAME=PATH: the file holding endpoint NAME's signing secret (required for every endpoint; a trailing newline is dropped)")
	fs.Var(endpointFlag{w, func(e *workers.WebhookEndpoint, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("timeout %q: want a positive duration", v)
		}
		e.Timeout = d
		return nil
	}}, "webhook-timeout", fmt.Sprintf("NAME=DURATION: bound on one request to endpoint NAME, below --handler-timeout (default %v)", workers.DefaultWebhookTimeout))
	fs.Var(endpointFlag{w, func(e *workers.WebhookEndpoint, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("attachment limit %q: want bytes", v)
		}
		if n == 0 {
			n = -1 // none inline
		}
		e.AttachmentLimit = n
		return nil
	}}, "webhook-attachment-limit", fmt.Sprintf("NAME=BYTES: attachment bytes one request to endpoint NAME carries inline, in all; larger parts are described, not sent; 0: none (default %d)", workers.DefaultWebhookAttachmentLimit))
}

// endpoint returns the endpoint named name, added if new.
func (w webhookFlags) endpoint(name string) *workers.WebhookEndpoint {
	for i := range w.c.Endpoints {
		if w.c.Endpoints[i].Name == name {
			return &w.c.Endpoints[i]
		}
	}
	w.c.Endpoints = append(w.c.Endpoints, workers.WebhookEndpoint{Name: name})
	return &w.c.Endpoints[len(w.c.Endpoints)-1]
}

// endpointFlag is one NAME=VALUE flag setting a field of endpoint NAME.
type endpointFlag struct {
	w   webhookFlags
	set func(e *workers.WebhookEndpoint, value string) error
}

func (f endpointFlag) String() string { return "" }

func (f endpointFlag) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	if !ok || name == "" || value == "" {
		return fmt.Errorf("want NAME=VALUE")
	}
	if err := f.set(f.w.endpoint(name), value); err != nil {
		return fmt.Errorf("endpoint %s: %w", name, err)
	}
	return nil
}
