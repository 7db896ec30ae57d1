package dev_test

import (
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mailscope/mailscope/dev"
	"github.com/mailscope/mailscope/workers"
)

// TestWebhookConfigRefused: a system whose worker is given a webhook
// configuration it cannot use does not start, and its error names every
// mistake at once, so that an operator fixes them in one go; a secret is
// never in it.
func TestWebhookConfigRefused(t *testing.T) {
	secret := []byte("s3cr3t-never-printed")
	ok := func(name, url string) workers.WebhookEndpoint {
		return workers.WebhookEndpoint{Name: name, URL: url, Secret: secret}
	}
	eps := []workers.WebhookEndpoint{
		ok("crm", "https://crm.example/hooks/mail"),
		ok("crm", "https://crm.example/other"),
		ok("bad name!", "https://x.example/"),
		ok("nourl", ""),
		ok("notparsed", "http://[::1"),
		ok("ftp", "ftp://files.example/in"),
		ok("nohost", "https:///path"),
		{Name: "nosecret", URL: "https://x.example/"},
		{Name: "slow", URL: "https://x.example/", Secret: secret, Timeout: time.Minute},
	}
	cfg := dev.Config{DataDir: t.TempDir(), NATSPort: -1, MonitorPort: 0, SMTPAddr: "127.0.0.1:0", LMTPAddr: "127.0.0.1:0",
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	cfg.Worker.HandlerTimeout = 30 * time.Second
	cfg.Worker.Webhook.Endpoints = eps
	sys, err := dev.Start(t.Context(), cfg)
	if err == nil {
		sys.Close()
		t.Fatal("started with a webhook configuration it cannot use")
	}
	for _, want := range []string{
		"webhook endpoint crm: configured twice",
		`webhook endpoint name "bad name!": only letters, digits`,
		"webhook endpoint nourl: no URL",
		"webhook endpoint notparsed: URL does not parse",
		`webhook endpoint ftp: URL scheme "ftp", want http or https`,
		"webhook endpoint nohost: URL has no host",
		"webhook endpoint nosecret: no secret",
		"webhook endpoint slow: timeout 1m0s not below the handler timeout 30s",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not say %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), string(secret)) {
		t.Errorf("the error shows a secret: %v", err)
	}
}
