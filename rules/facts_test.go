package rules

import (
	"slices"
	"testing"
)

func TestHeaderValue(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"plain", "plain"},
		{"  padded \r\n", "padded"},
		{"=?UTF-8?B?w5xiZXI=?=", "Über"},
		{"=?utf-8?q?caf=C3=A9?= au lait", "café au lait"},
		{"=?UTF-8?B?w5w=?= =?UTF-8?B?YmVy?=", "Über"}, // space between adjacent words dropped
		{"=?ISO-8859-1?Q?Andr=E9?= Pirard", "André Pirard"},
		{"=?windows-1252?Q?=80uro?=", "€uro"},
		{"=?KOI8-R?B?8NLJ18XU?=", "Привет"},
		{"=?x-unknown-charset?Q?raw?= text", "=?x-unknown-charset?Q?raw?= text"},
		{"ok =?UTF-8?B?w5w=?= and =?bogus?Q?kept?= end", "ok Ü and =?bogus?Q?kept?= end"},
		{"=?UTF-8?B?!!!?=", "=?UTF-8?B?!!!?="},
		{"=?not an encoded word", "=?not an encoded word"},
		{"price =? 3", "price =? 3"},
	}
	for _, tt := range tests {
		if got := HeaderValue(tt.raw); got != tt.want {
			t.Errorf("HeaderValue(%q) = %q, want %q", tt.raw, got, tt.want)
		}
	}
}

func TestHeadersFromFields(t *testing.T) {
	h := headers("Subject", "one", "SUBJECT", "=?UTF-8?Q?two?=", "X-A", " a b ")
	if got := h["subject"]; !slices.Equal(got, []string{"one", "two"}) {
		t.Errorf("subject = %q", got)
	}
	if got := h["x-a"]; !slices.Equal(got, []string{"a b"}) {
		t.Errorf("x-a = %q", got)
	}
	if _, ok := h["Subject"]; ok {
		t.Error("keys not lower-cased")
	}
	// Stopping early is honoured.
	n := 0
	HeadersFromFields(func(yield func(k, v string) bool) {
		for range 3 {
			n++
			if !yield("a", "b") {
				return
			}
		}
	})
	if n != 3 {
		t.Errorf("n = %d", n)
	}
}
