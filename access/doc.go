// Package access says who may do what on NATS: one role per kind of
// client (producer, worker, provisioner, operator, observer, service), each with
// its own NKey user and permissions in one account, and no anonymous
// access. The permissions are derived from contracts.Names, so renamed
// streams and buckets keep their protection.
//
// The same definition serves every server: the embedded one of
// `mailscope dev`, `mailscope server` and the tests (package embedded),
// and the official NATS Helm chart in deploy/k8s, whose values a test
// checks against [Accounts]. What works in development therefore works in
// production, and a permission mistake fails a test.
//
// Every role has its own inbox prefix ([Role.InboxPrefix]): a reply
// subject (a pull consumer's deliveries, a KV get's answer) can be
// subscribed to by its role alone, so no role reads mail through another
// role's inbox.
package access
