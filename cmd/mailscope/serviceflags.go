package main

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/mailscope/mailscope/workers"
)

// addServiceFlags adds the worker's external service flags
// (docs/handlers.md, "External services"): --service NAME[=SUBJECT],
// repeatable, --service-timeout and --service-attachment-limit.
func addServiceFlags(fs *flag.FlagSet, c *workers.ServiceConfig) {
	fs.Var(serviceFlag{c}, "service", "NAME or NAME=SUBJECT: an external service (a NATS micro service) rules may choose by name (mail.service) for the service handler; SUBJECT under --service-prefix, default PREFIX.NAME; repeat for more")
	fs.Func("service-timeout", fmt.Sprintf("bound on the wait for one service's reply, below --handler-timeout (default %v)", workers.DefaultServiceTimeout), func(v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("timeout %q: want a positive duration", v)
		}
		c.Timeout = d
		return nil
	})
	fs.Func("service-attachment-limit", fmt.Sprintf("attachment bytes one service request carries inline, in all; larger parts are described, not sent; 0: none (default %d)", workers.DefaultServiceAttachmentLimit), func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("attachment limit %q: want bytes", v)
		}
		if n == 0 {
			n = -1 // none inline
		}
		c.AttachmentLimit = n
		return nil
	})
}

// serviceFlag is --service NAME[=SUBJECT].
type serviceFlag struct{ c *workers.ServiceConfig }

func (f serviceFlag) String() string { return "" }

func (f serviceFlag) Set(v string) error {
	name, subject, _ := strings.Cut(v, "=")
	if name == "" {
		return fmt.Errorf("want NAME or NAME=SUBJECT")
	}
	f.c.Services = append(f.c.Services, workers.Service{Name: name, Subject: subject})
	return nil
}
