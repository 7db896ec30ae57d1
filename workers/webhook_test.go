package workers

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRetryAfterHeader(t *testing.T) {
	now := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":     0,
		"soon": 0,
		"-3":   0,
		"0":    time.Millisecond,
		"120":  2 * time.Minute,
		" 7 ":  7 * time.Second,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Hour).Format(http.TimeFormat):       time.Millisecond,
		"99999999999": 24 * time.Hour,
	} {
		if got := retryAfterHeader(v, now); got != want {
			t.Errorf("Retry-After %q: %v, want %v", v, got, want)
		}
	}
}

func TestWebhookOutcome(t *testing.T) {
	for _, c := range []struct {
		status   int
		timedOut bool
		err      error
		result   string
		class    Class // when the outcome is an error
		after    time.Duration
	}{
		{200, false, nil, webhookDelivered, -1, 0},
		{204, false, nil, webhookDelivered, -1, 0},
		{301, false, nil, webhookServerError, Transient, 0},
		{400, false, nil, webhookRejected, Permanent, 0},
		{410, false, nil, webhookRejected, Permanent, 0},
		{429, false, nil, webhookRetryLater, Transient, 5 * time.Second},
		{500, false, nil, webhookServerError, Transient, 0},
		{503, false, nil, webhookServerError, Transient, 0},
		{0, true, errors.New("no answer"), webhookTimeout, Transient, 0},
		{0, false, errors.New("connection refused"), webhookConnError, Transient, 0},
	} {
		result, err := webhookOutcome("e", c.status, 5*time.Second, "detail", c.timedOut, c.err)
		if result != c.result {
			t.Errorf("%d %v: result %s, want %s", c.status, c.err, result, c.result)
		}
		if c.class < 0 {
			if err != nil {
				t.Errorf("%d: %v, want success", c.status, err)
			}
			continue
		}
		if err == nil || ClassOf(err) != c.class || retryAfter(err) != c.after {
			t.Errorf("%d %v: %v (class %v, after %v), want class %v after %v", c.status, c.err, err, ClassOf(err), retryAfter(err), c.class, c.after)
		}
	}
}

func TestWebhookValidate(t *testing.T) {
	good := WebhookEndpoint{Name: "a", URL: "https://hooks.example/x?token=t0k", Secret: []byte("s")}
	if err := (WebhookConfig{Endpoints: []WebhookEndpoint{good}}).Validate(30 * time.Second); err != nil {
		t.Errorf("good endpoint: %v", err)
	}
	twice := WebhookConfig{Endpoints: []WebhookEndpoint{good, good}}
	if err := twice.Validate(30 * time.Second); err == nil || !strings.Contains(err.Error(), "configured twice") {
		t.Errorf("twice: %v", err)
	}
	bad := good
	bad.URL = "file:///etc/passwd"
	err := (WebhookConfig{Endpoints: []WebhookEndpoint{bad}}).Validate(30 * time.Second)
	if err == nil || strings.Contains(err.Error(), "/etc/passwd") {
		t.Errorf("file URL: %v, want an error without the URL", err)
	}
	slow := good
	slow.Timeout = time.Minute
	if err := (WebhookConfig{Endpoints: []WebhookEndpoint{slow}}).Validate(30 * time.Second); err == nil {
		t.Error("a timeout above the handler timeout passed")
	}
}
