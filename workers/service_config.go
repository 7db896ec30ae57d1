package workers

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mailscope/mailscope/contracts"
)

// ServiceHandler is the value of mail.handler that chooses the service
// handler; mail.service names the service (docs/handlers.md, "External
// services").
const ServiceHandler = "service"

// ServiceConfig configures the service handler: the external services
// (NATS micro services, in any language) operators allow rules to choose
// by name. A rule never names a subject.
type ServiceConfig struct {
	// Services are the services by name. Default none.
	Services []Service
	// Timeout bounds the wait for one service's reply; below the
	// worker's HandlerTimeout. Default 10s.
	Timeout time.Duration
	// AttachmentLimit is how many bytes of attachments (decoded) one
	// request carries inline, in all; a part that does not fit is
	// described, not sent. A request that would still not fit the NATS
	// server's max payload is sent with no attachment inline. Default
	// 256 KiB; negative: none inline.
	AttachmentLimit int
}

// Service is one external service a rule may choose by name.
type Service struct {
	// Name is what mail.service names it by: non-empty, at most 64
	// bytes of letters, digits, '-', '_' and '.'. It is a metric label,
	// so the set of names is the operator's, bounded.
	Name string
	// Subject is the subject the service listens on for requests: a
	// literal subject (no wildcards) under Names.ServicePrefix, the only
	// subjects the worker may publish requests on. Default
	// Names.ServicePrefix + "." + Name ("mail.service.NAME").
	Subject string
}

// Defaults of ServiceConfig.
const (
	DefaultServiceTimeout         = 10 * time.Second
	DefaultServiceAttachmentLimit = 256 << 10
)

// withDefaults returns c with its defaults, subjects under names'
// ServicePrefix (defaults applied).
func (c ServiceConfig) withDefaults(names contracts.Names) ServiceConfig {
	names = names.WithDefaults()
	if c.Timeout <= 0 {
		c.Timeout = DefaultServiceTimeout
	}
	if c.AttachmentLimit == 0 {
		c.AttachmentLimit = DefaultServiceAttachmentLimit
	}
	svcs := make([]Service, len(c.Services))
	for i, s := range c.Services {
		if s.Subject == "" {
			s.Subject = names.ServiceSubject(s.Name)
		}
		svcs[i] = s
	}
	c.Services = svcs
	return c
}

// Validate checks every service, with its defaults applied: a valid
// unique name and a literal subject under names.ServicePrefix, and a
// timeout below handlerTimeout. The error names every mistake.
func (c ServiceConfig) Validate(handlerTimeout time.Duration, names contracts.Names) error {
	names = names.WithDefaults()
	c = c.withDefaults(names)
	var errs []error
	if handlerTimeout > 0 && len(c.Services) > 0 && c.Timeout >= handlerTimeout {
		errs = append(errs, fmt.Errorf("service timeout %v not below the handler timeout %v", c.Timeout, handlerTimeout))
	}
	seen := map[string]bool{}
	for _, s := range c.Services {
		if err := validName("service", s.Name); err != nil {
			errs = append(errs, err)
			continue
		}
		if seen[s.Name] {
			errs = append(errs, fmt.Errorf("service %s: configured twice", s.Name))
		}
		seen[s.Name] = true
		if err := validServiceSubject(s.Subject, names.ServicePrefix); err != nil {
			errs = append(errs, fmt.Errorf("service %s: %w", s.Name, err))
		}
	}
	return errors.Join(errs...)
}

// validServiceSubject checks that s is a literal subject under prefix.
func validServiceSubject(s, prefix string) error {
	if !strings.HasPrefix(s, prefix+".") {
		return fmt.Errorf("subject %q is not under the service prefix %s (workers send requests on %s.> only)", s, prefix, prefix)
	}
	for _, tok := range strings.Split(s, ".") {
		if tok == "" || tok == "*" || tok == ">" || strings.ContainsAny(tok, " \t\r\n*>") {
			return fmt.Errorf("subject %q: want a literal subject (no wildcards, spaces or empty tokens)", s)
		}
	}
	return nil
}

// validName checks the name of a configured endpoint or service (what):
// 1 to 64 bytes of letters, digits, '-', '_' and '.'.
func validName(what, n string) error {
	if n == "" || len(n) > 64 {
		return fmt.Errorf("%s name %q: want 1 to 64 bytes", what, n)
	}
	for _, r := range n {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("%s name %q: only letters, digits, '-', '_' and '.'", what, n)
		}
	}
	return nil
}
