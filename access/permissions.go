package access

import "github.com/mailscope/mailscope/contracts"

// Permissions are a user's publish and subscribe permissions, as
// nats-server takes them: a subject is allowed when it matches an Allow
// entry and no Deny entry.
type Permissions struct {
	Publish   Subjects
	Subscribe Subjects
	// Responses lets the user publish one reply to each request it
	// received (nats-server's allow_responses: to the request's reply
	// subject, within 2 minutes), whatever Publish says; with Publish
	// empty, replies are all it may publish.
	Responses bool
}

// Subjects are the allowed and denied subjects (wildcards included) of
// one direction.
type Subjects struct {
	Allow []string
	Deny  []string
}

const api = "$JS.API."

// Permissions returns what r may do on a system named n (empty fields
// take their defaults). An unknown role may do nothing.
func (r Role) Permissions(n contracts.Names) Permissions {
	n = n.WithDefaults()
	var p Permissions
	switch r {
	case Producer:
		p.Publish.Allow = concat([]string{n.MailSubject}, claimWrite(n.ClaimBucket))
	case Worker:
		p.Publish.Allow = concat(
			consume(n.MailStream, n.Consumer),
			consume(n.HeldStream, n.HeldConsumer),
			[]string{n.OutcomePrefix + ".>", n.DeadSubject, n.HeldSubject, n.ResumeSubject},
			// Requests to the external services (the replies come to
			// its inbox).
			[]string{n.ServicePrefix + ".>"},
			// The commands handler's command and reply events.
			[]string{n.CommandPrefix + ".>", n.ReplySubject},
			// The first outcome of a mail whose outcome publish was
			// acknowledged as a duplicate, by sequence: whether it is
			// dead decides the dead path (workers/deadletter.go).
			[]string{api + "STREAM.MSG.GET." + n.OutcomeStream},
			kvRead(n.FlagsBucket),
			kvRead(n.KeyBucket),
			[]string{api + "STREAM.INFO." + kvStream(n.StatusBucket), "$KV." + n.StatusBucket + ".*"},
			claimTake(n.ClaimBucket),
			// The orphan collector reads the mail stream's oldest message
			// time (docs/architecture.md, "Large mail").
			[]string{api + "STREAM.INFO." + n.MailStream},
		)
	case Provisioner:
		p.Publish.Allow = []string{api + "INFO"}
		for _, s := range streams(n) {
			p.Publish.Allow = append(p.Publish.Allow, api+"STREAM.CREATE."+s, api+"STREAM.UPDATE."+s, api+"STREAM.INFO."+s)
		}
		for _, c := range [][2]string{{n.MailStream, n.Consumer}, {n.HeldStream, n.HeldConsumer}} {
			p.Publish.Allow = append(p.Publish.Allow,
				api+"CONSUMER.CREATE."+c[0]+"."+c[1], api+"CONSUMER.CREATE."+c[0]+"."+c[1]+".>",
				api+"CONSUMER.DURABLE.CREATE."+c[0]+"."+c[1], api+"CONSUMER.INFO."+c[0]+"."+c[1])
		}
	case Operator:
		p.Publish.Allow = concat(inspect(), []string{
			// Read messages: by sequence or subject, and through
			// consumers of its own (nats kv history, nats stream view),
			// which it may delete again.
			api + "STREAM.MSG.GET.*", api + "DIRECT.GET.>",
			api + "CONSUMER.CREATE.>", api + "CONSUMER.MSG.NEXT.*.*", api + "CONSUMER.DELETE.*.*",
			"$JS.FC.>",
			// Write flag rules (and staging keys).
			"$KV." + n.FlagsBucket + ".>",
			// Retry dead letters (mailscope dead retry): the mail back on
			// the mail subject, then the dead letter deleted.
			n.MailSubject, api + "STREAM.MSG.DELETE." + n.DeadStream,
			// Discover the external services: nats micro ls, info, stats.
			"$SRV.>",
		})
		if n.KeyBucket != "" {
			p.Publish.Allow = append(p.Publish.Allow, "$KV."+n.KeyBucket+".>")
		}
		p.Publish.Deny = []string{api + "STREAM.DELETE.>", api + "STREAM.PURGE.>", api + "CONSUMER.DURABLE.CREATE.>"}
		// No message of any other stream may it delete: not mail, not
		// outcomes, not the rules' history.
		for _, s := range streams(n) {
			if s != n.DeadStream {
				p.Publish.Deny = append(p.Publish.Deny, api+"STREAM.MSG.DELETE."+s)
			}
		}
		// The workers' consumers are the workers' own: the operator
		// neither redefines, deletes nor takes from them.
		for _, c := range [][2]string{{n.MailStream, n.Consumer}, {n.HeldStream, n.HeldConsumer}} {
			p.Publish.Deny = append(p.Publish.Deny,
				api+"CONSUMER.CREATE."+c[0]+"."+c[1], api+"CONSUMER.CREATE."+c[0]+"."+c[1]+".>",
				api+"CONSUMER.DELETE."+c[0]+"."+c[1], api+"CONSUMER.MSG.NEXT."+c[0]+"."+c[1])
		}
		p.Subscribe.Allow = []string{n.MailSubject, n.ResumeSubject, n.OutcomePrefix + ".>", n.DeadSubject, n.HeldSubject, n.CommandPrefix + ".>", n.ReplySubject}
	case Observer:
		p.Publish.Allow = concat(inspect(), kvRead(n.FlagsBucket), kvRead(n.StatusBucket))
	case Service:
		// Requests on the service subjects (queue groups included) and
		// micro discovery; it answers them and publishes nothing else.
		p.Subscribe.Allow = []string{n.ServicePrefix + ".>", "$SRV.>"}
		p.Responses = true
	case LoadTest:
		s := LoadTestStream
		p.Publish.Allow = []string{
			api + "STREAM.CREATE." + s, api + "STREAM.DELETE." + s, api + "STREAM.INFO." + s,
			api + "CONSUMER.CREATE." + s, api + "CONSUMER.CREATE." + s + ".>", api + "CONSUMER.MSG.NEXT." + s + ".*",
			"$JS.ACK." + s + ".>", LoadTestSubject,
			// The outcomes of the mail it sent.
			api + "STREAM.INFO." + n.OutcomeStream, api + "CONSUMER.CREATE." + n.OutcomeStream + ".>",
			api + "CONSUMER.DELETE." + n.OutcomeStream + ".*", "$JS.FC." + n.OutcomeStream + ".>",
			api + "CONSUMER.INFO." + n.MailStream + "." + n.Consumer,
		}
		p.Subscribe.Allow = []string{n.OutcomePrefix + ".>"}
	default:
		return Permissions{Publish: Subjects{Deny: []string{">"}}, Subscribe: Subjects{Deny: []string{">"}}}
	}
	p.Subscribe.Allow = append(p.Subscribe.Allow, r.InboxPrefix()+".>")
	return p
}

// LoadTestStream and LoadTestSubject are the load test's scratch stream
// and its subject, the only ones the LoadTest role may create, write and
// delete.
const (
	LoadTestStream  = "LOADTEST_CEILING"
	LoadTestSubject = "loadtest.ceiling"
)

// consume is what a client of the durable pull consumer c on stream s
// sends: looking it up, pulling, and acknowledging (ack, nak, term,
// in progress) in both forms of the acknowledgement subject.
func consume(s, c string) []string {
	return []string{
		api + "CONSUMER.INFO." + s + "." + c, api + "CONSUMER.MSG.NEXT." + s + "." + c,
		"$JS.ACK." + s + "." + c + ".>", "$JS.ACK.*.*." + s + "." + c + ".>",
	}
}

// kvRead is what reading bucket b takes: binding to it, getting keys
// (direct or not), and watching or listing through ordered consumers of
// its own, with their flow control. None for an empty name.
func kvRead(b string) []string {
	if b == "" {
		return nil
	}
	s := kvStream(b)
	return []string{
		api + "STREAM.INFO." + s, api + "STREAM.MSG.GET." + s, api + "DIRECT.GET." + s, api + "DIRECT.GET." + s + ".>",
		api + "CONSUMER.CREATE." + s, api + "CONSUMER.CREATE." + s + ".>", api + "CONSUMER.INFO." + s + ".*",
		api + "CONSUMER.DELETE." + s + ".*", "$JS.FC." + s + ".>",
	}
}

// inspect is looking at the state of streams and consumers: what the
// observer and the operator share.
func inspect() []string {
	return []string{
		api + "INFO", api + "STREAM.NAMES", api + "STREAM.LIST", api + "STREAM.INFO.*",
		api + "CONSUMER.NAMES.*", api + "CONSUMER.LIST.*", api + "CONSUMER.INFO.*.*",
	}
}

// streams names every stream provisioning makes, the buckets' included.
func streams(n contracts.Names) []string {
	s := []string{n.MailStream, n.HeldStream, n.OutcomeStream, n.DeadStream, n.CommandStream, kvStream(n.FlagsBucket), kvStream(n.StatusBucket), objStream(n.ClaimBucket), n.ArchiveStream}
	if n.KeyBucket != "" {
		s = append(s, kvStream(n.KeyBucket))
	}
	return s
}

func kvStream(bucket string) string { return "KV_" + bucket }

func objStream(bucket string) string { return "OBJ_" + bucket }

// claimWrite is what the producer needs of the claim bucket b, through
// nats.go's jetstream.ObjectStore: binding to it (stream info), looking
// an object's metadata up (Put does, before writing; direct get of the
// last message on $O.b.M.<name>, or a message get), writing chunks
// ($O.b.C.<nuid>) and metadata ($O.b.M.<name>), and deleting an object
// it wrote but no message references (a delete marker on $O.b.M.<name>,
// then a purge of the object's chunks, which Put also does to clean up a
// partial write). No consumer: the producer never reads an object back.
func claimWrite(b string) []string {
	s := objStream(b)
	return []string{
		api + "STREAM.INFO." + s, api + "DIRECT.GET." + s + ".>", api + "STREAM.MSG.GET." + s,
		"$O." + b + ".C.>", "$O." + b + ".M.>", api + "STREAM.PURGE." + s,
	}
}

// claimTake is what a worker needs of the claim bucket b: binding,
// metadata lookups, reading an object (an ordered push consumer of its
// own on the object's chunks, with flow control; recreated on a gap,
// the old one deleted), listing objects for the orphan collector (an
// ordered consumer on $O.b.M.>), metadata updates (the adopted mark on
// $O.b.M.<name>) and deletes (a marker there, then a purge of the
// chunks). It never writes chunks: a worker cannot change a mail's body.
func claimTake(b string) []string {
	s := objStream(b)
	return []string{
		api + "STREAM.INFO." + s, api + "DIRECT.GET." + s + ".>", api + "STREAM.MSG.GET." + s,
		api + "CONSUMER.CREATE." + s, api + "CONSUMER.CREATE." + s + ".>", api + "CONSUMER.DELETE." + s + ".*",
		"$JS.FC." + s + ".>",
		"$O." + b + ".M.>", api + "STREAM.PURGE." + s,
	}
}

func concat(lists ...[]string) []string {
	var out []string
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}
