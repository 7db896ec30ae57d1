package contracts

// Names are the NATS object names the system uses. Every one can be
// overridden (see [DefaultNames] for the defaults); the producer, the
// workers and provisioning must be given the same values.
type Names struct {
	// MailStream is the stream that holds incoming mail. Default "MAIL".
	MailStream string
	// MailSubject is the subject incoming mail is published on.
	// Default "mail.incoming".
	MailSubject string
	// ResumeSubject is where workers put held mail back on the mail
	// stream when its hold ends: a subject of its own, so that a worker
	// never needs to publish on MailSubject, which only the producer may.
	// Default "mail.resumed".
	ResumeSubject string
	// Consumer is the durable pull consumer shared by every worker
	// replica. Default "workers".
	Consumer string
	// OutcomeStream stores outcome events. Default "MAIL_OUTCOMES".
	OutcomeStream string
	// OutcomePrefix is the subject prefix of outcome events; an event for
	// disposition D is published on OutcomePrefix + "." + D.
	// Default "mail.outcome".
	OutcomePrefix string
	// DeadStream stores dead letters. Default "MAIL_DEAD".
	DeadStream string
	// DeadSubject is the subject of dead letters. Default "mail.dead".
	DeadSubject string
	// HeldStream holds mail that mail.pause holds, apart from incoming
	// mail so that a long pause cannot fill the mail stream.
	// Default "MAIL_HELD".
	HeldStream string
	// HeldSubject is where held mail waits. Default "mail.held".
	HeldSubject string
	// HeldConsumer is the durable consumer through which workers watch
	// held mail and resume it. Default "held".
	HeldConsumer string
	// FlagsBucket is the KV bucket of flag rules, one key per flag.
	// Default "mail_flags".
	FlagsBucket string
	// StatusBucket is the KV bucket where every worker keeps its status
	// (rules loaded, rule problems), one key per worker.
	// Default "mail_status".
	StatusBucket string
	// KeyBucket is an opt-in KV bucket of DKIM public keys for staging
	// and development, consulted before DNS: key
	// "selector._domainkey.domain" (lower case), value the TXT record
	// ("v=DKIM1; k=rsa; p=..."). It lets a staging fleet accept mail
	// signed with `mailscope testkit` keys without touching real DNS.
	// Default "" (none: keys come from DNS only, as in production). Not
	// for production: whoever can write the bucket can make any domain
	// pass. Provisioning creates it only when it is set.
	KeyBucket string
	// ClaimBucket is the Object Store bucket that holds the raw mail of
	// claimed mail: mail above the producer's claim threshold travels as
	// a reference (HeaderClaim) to an object here. Default "mail_claims".
	ClaimBucket string
	// ArchiveStream is the opt-in archive of recent incoming mail, a
	// copy of every mail MailStream stores (republished on
	// ArchiveSubject), bounded in age and size, kept for
	// `mailscope flags preview` to replay mail against proposed rules.
	// It holds raw mail (bodies and headers, personal data included), so
	// it is off by default: provisioning creates it only when given an
	// archive bound (provision.Config.ArchiveMaxAge, ArchiveMaxBytes).
	// Default "MAIL_ARCHIVE".
	ArchiveStream string
	// ArchiveSubject is where the mail stream republishes each mail it
	// stores while the archive is on; only the server publishes there.
	// Default "mail.archived".
	ArchiveSubject string
	// ServicePrefix is the subject prefix of requests to external
	// services (the service handler, docs/handlers.md): every service a
	// worker is configured with listens on a subject under it, by
	// default ServicePrefix + "." + the service's name, so that the
	// workers may publish there and nowhere else. Default "mail.service".
	ServicePrefix string
	// CommandStream stores the commands handler's events: command events
	// (CommandPrefix) and reply events (ReplySubject).
	// Default "MAIL_COMMANDS".
	CommandStream string
	// CommandPrefix is the subject prefix of command events; a command
	// named N is published on CommandPrefix + "." + N.
	// Default "mail.command".
	CommandPrefix string
	// ReplySubject is the subject of reply events, for an outbound
	// mailer to answer refused command mail. Default "mail.reply".
	ReplySubject string
}

// DefaultNames returns the default names documented on [Names].
func DefaultNames() Names {
	return Names{
		MailStream:     "MAIL",
		MailSubject:    "mail.incoming",
		ResumeSubject:  "mail.resumed",
		Consumer:       "workers",
		OutcomeStream:  "MAIL_OUTCOMES",
		OutcomePrefix:  "mail.outcome",
		DeadStream:     "MAIL_DEAD",
		DeadSubject:    "mail.dead",
		HeldStream:     "MAIL_HELD",
		HeldSubject:    "mail.held",
		HeldConsumer:   "held",
		FlagsBucket:    "mail_flags",
		StatusBucket:   "mail_status",
		ClaimBucket:    "mail_claims",
		ArchiveStream:  "MAIL_ARCHIVE",
		ArchiveSubject: "mail.archived",
		ServicePrefix:  "mail.service",
		CommandStream:  "MAIL_COMMANDS",
		CommandPrefix:  "mail.command",
		ReplySubject:   "mail.reply",
	}
}

// WithDefaults returns n with every empty field set to its default
// (KeyBucket has none: it stays empty, and off, unless set).
func (n Names) WithDefaults() Names {
	d := DefaultNames()
	set := func(v *string, def string) {
		if *v == "" {
			*v = def
		}
	}
	set(&n.MailStream, d.MailStream)
	set(&n.MailSubject, d.MailSubject)
	set(&n.ResumeSubject, d.ResumeSubject)
	set(&n.Consumer, d.Consumer)
	set(&n.OutcomeStream, d.OutcomeStream)
	set(&n.OutcomePrefix, d.OutcomePrefix)
	set(&n.DeadStream, d.DeadStream)
	set(&n.DeadSubject, d.DeadSubject)
	set(&n.HeldStream, d.HeldStream)
	set(&n.HeldSubject, d.HeldSubject)
	set(&n.HeldConsumer, d.HeldConsumer)
	set(&n.FlagsBucket, d.FlagsBucket)
	set(&n.StatusBucket, d.StatusBucket)
	set(&n.ClaimBucket, d.ClaimBucket)
	set(&n.ArchiveStream, d.ArchiveStream)
	set(&n.ArchiveSubject, d.ArchiveSubject)
	set(&n.ServicePrefix, d.ServicePrefix)
	set(&n.CommandStream, d.CommandStream)
	set(&n.CommandPrefix, d.CommandPrefix)
	set(&n.ReplySubject, d.ReplySubject)
	return n
}

// ServiceSubject returns the default request subject of the external
// service named name: ServicePrefix + "." + name.
func (n Names) ServiceSubject(name string) string {
	return n.ServicePrefix + "." + name
}

// OutcomeSubject returns the subject of an outcome event with the given
// disposition.
func (n Names) OutcomeSubject(d Disposition) string {
	return n.OutcomePrefix + "." + string(d)
}

// CommandSubject returns the subject of a command event for the command
// named name.
func (n Names) CommandSubject(name string) string {
	return n.CommandPrefix + "." + name
}
