package workers

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// WebhookHandler is the value of mail.handler that chooses the webhook
// handler; mail.webhook.endpoint names the endpoint (docs/handlers.md).
const WebhookHandler = "webhook"

// WebhookConfig configures the webhook handler: the endpoints operators
// allow rules to choose by name. A rule never names a URL.
type WebhookConfig struct {
	// Endpoints are the endpoints by name. Default none.
	Endpoints []WebhookEndpoint
	// Transport carries the requests. Default a clone of
	// http.DefaultTransport (proxy from the environment).
	Transport http.RoundTripper
	// MaxResponse bounds how much of a response body is read, in bytes;
	// the rest is discarded with the connection. Default 64 KiB.
	MaxResponse int64
}

// WebhookEndpoint is one endpoint a rule may choose by name.
type WebhookEndpoint struct {
	// Name is what mail.webhook.endpoint names it by: non-empty, at most
	// 64 bytes of letters, digits, '-', '_' and '.'. It is a metric label,
	// so the set of names is the operator's, bounded.
	Name string
	// URL is an absolute http or https URL. It is never logged or put in
	// an outcome (it may carry a token); the host is, in spans.
	URL string
	// Secret signs every request (HMAC-SHA256; docs/handlers.md,
	// "Signing"). Required. Never logged.
	Secret []byte
	// Timeout bounds one request, response included; below the worker's
	// HandlerTimeout. Default 10s.
	Timeout time.Duration
	// AttachmentLimit is how many bytes of attachments (decoded) one
	// request carries inline, in all; a part that does not fit is
	// described, not sent. Default 1 MiB; negative: none inline.
	AttachmentLimit int
}

// Defaults of WebhookConfig and WebhookEndpoint.
const (
	DefaultWebhookTimeout         = 10 * time.Second
	DefaultWebhookAttachmentLimit = 1 << 20
	DefaultWebhookMaxResponse     = 64 << 10
)

func (c WebhookConfig) withDefaults() WebhookConfig {
	if c.MaxResponse <= 0 {
		c.MaxResponse = DefaultWebhookMaxResponse
	}
	eps := make([]WebhookEndpoint, len(c.Endpoints))
	for i, e := range c.Endpoints {
		if e.Timeout <= 0 {
			e.Timeout = DefaultWebhookTimeout
		}
		if e.AttachmentLimit == 0 {
			e.AttachmentLimit = DefaultWebhookAttachmentLimit
		}
		eps[i] = e
	}
	c.Endpoints = eps
	return c
}

// Validate checks every endpoint, with its defaults applied: a valid
// unique name, an absolute http or https URL with a host, a secret, and
// a timeout below handlerTimeout. The error names the endpoint, never
// its URL's credentials or its secret.
func (c WebhookConfig) Validate(handlerTimeout time.Duration) error {
	c = c.withDefaults()
	seen := map[string]bool{}
	var errs []error
	for _, e := range c.Endpoints {
		if err := validName("webhook endpoint", e.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[e.Name] {
			errs = append(errs, fmt.Errorf("webhook endpoint %s: configured twice", e.Name))
		}
		seen[e.Name] = true
		u, err := url.Parse(e.URL)
		switch {
		case e.URL == "":
			errs = append(errs, fmt.Errorf("webhook endpoint %s: no URL", e.Name))
		case err != nil:
			errs = append(errs, fmt.Errorf("webhook endpoint %s: URL does not parse", e.Name))
		case u.Scheme != "http" && u.Scheme != "https":
			errs = append(errs, fmt.Errorf("webhook endpoint %s: URL scheme %q, want http or https", e.Name, u.Scheme))
		case u.Host == "":
			errs = append(errs, fmt.Errorf("webhook endpoint %s: URL has no host", e.Name))
		}
		if len(e.Secret) == 0 {
			errs = append(errs, fmt.Errorf("webhook endpoint %s: no secret (every request is signed)", e.Name))
		}
		if handlerTimeout > 0 && e.Timeout >= handlerTimeout {
			errs = append(errs, fmt.Errorf("webhook endpoint %s: timeout %v not below the handler timeout %v", e.Name, e.Timeout, handlerTimeout))
		}
	}
	return errors.Join(errs...)
}
