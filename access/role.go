package access

import "fmt"

// Role is a kind of NATS client, with its own credentials and
// permissions.
type Role string

// The roles. Each is described by its permissions in permissions.go and
// in docs/architecture.md, "Roles and permissions".
const (
	// Producer publishes accepted mail on the mail subject, nothing else.
	Producer Role = "producer"
	// Worker consumes mail and held mail through the workers' durable
	// consumers, publishes outcomes, dead letters, held and resumed mail
	// and the commands handler's command and reply events, reads the flag
	// rules (and the staging key bucket) and writes worker status entries.
	Worker Role = "worker"
	// Provisioner creates and updates the streams, consumers and buckets;
	// it can neither delete nor purge them, nor read or write messages.
	Provisioner Role = "provisioner"
	// Operator writes flag rules (and staging keys), reads everything,
	// and can never delete or purge a stream, nor change or take from the
	// workers' consumers.
	Operator Role = "operator"
	// Observer reads the state of streams and consumers (lag), the flag
	// rules and worker status; never mail or outcomes.
	Observer Role = "observer"
	// Service implements external services (docs/handlers.md, "External
	// services"): it takes requests on the service subjects and answers
	// them, and answers micro service discovery ($SRV.>); it publishes
	// nothing but those replies.
	Service Role = "service"
	// LoadTest measures the ceilings of `mailscope loadtest` on a scratch
	// stream of its own and reads outcomes. Only the servers the load
	// test starts (`mailscope server`, `mailscope dev`) have it; no
	// deployment does.
	LoadTest Role = "loadtest"
)

// Roles returns the roles of a deployment, in a fixed order (LoadTest is
// not one of them).
func Roles() []Role { return []Role{Producer, Worker, Provisioner, Operator, Observer, Service} }

// ParseRole returns the role named s, or an error listing the roles.
func ParseRole(s string) (Role, error) {
	for _, r := range append(Roles(), LoadTest) {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("unknown role %q (want producer, worker, provisioner, operator, observer, service or loadtest)", s)
}

// InboxPrefix is the prefix of the role's reply subjects
// ("_INBOX_producer" ...), the only inboxes its user may subscribe to.
// A client of the role must use it (nats.CustomInboxPrefix; the nats
// CLI's --inbox-prefix), or every request it makes goes unanswered.
func (r Role) InboxPrefix() string { return "_INBOX_" + string(r) }

// EnvVar is the environment variable through which the NATS server's
// configuration takes the role's public key in deploy/k8s
// ("MAILSCOPE_PRODUCER_NKEY" ...).
func (r Role) EnvVar() string {
	b := []byte("MAILSCOPE_" + string(r) + "_NKEY")
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
