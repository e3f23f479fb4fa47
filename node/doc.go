// Package node joins zkv's parts into one server: the ZooKeeper election
// (package election), the NATS wire protocol (package bus) and the
// in-memory copy (package store), plus a small HTTP API.
//
// # Data flow
//
// A write arrives on the leader subject (kv.write), on a node's own write
// subject, or as an HTTP PUT. A follower forwards it to the leader subject
// and relays the leader's reply unchanged. The leader, holding one lock for
// the whole write so the replication stream stays in order, checks its
// lease and epoch, applies the write to its store (the next revision),
// publishes the Update on the replication subject, checks its lease again,
// and only then acknowledges. Every node, leader included, subscribes to
// the replication subject without a queue group; replicas apply updates in
// order, drop those of old epochs, and count gaps.
//
// Reads are answered from the node's own store and never wait on a write or
// touch ZooKeeper, so a follower may answer with stale data, and a
// restarted node answers "not found" until the key is written again.
//
// # Bounded under abuse
//
// Every request that holds a goroutine or the store for a while takes a
// slot of its kind's budget (see budget.go and Config.MaxWaitingReads and
// the fields after it): min_revision reads that wait, writes and leader
// reads a follower forwards, writes waiting for replicas' confirmations,
// and snapshot pages. A full budget answers "unavailable" at once and names
// itself; no kind can take another's slots, so a flood of long waits
// cannot refuse writes. A write that will wait for confirmations takes its
// slot before it is applied, so that refusal never hides an applied write.
// Status reports each budget's slots in use and refusals.
//
// A catch-up page is one pass over the store's ordered key index under its
// read lock, and the follower installs pages in batches while it fetches
// the next, so paging the leader's store does not stall its writes.
//
// # Leadership changes
//
// When the Elector reports that this server leads, the server adopts the
// epoch in its store (refusing if a higher one is known), publishes an
// epoch marker on the replication subject, starts the "zkv-leader" NATS
// micro service that answers kv.write (through a queue group), and then
// publishes the leader znode. When it loses leadership (disconnection,
// expiry, a higher epoch seen on the bus, shutdown) it stops that service
// first; requests already queued are answered not_leader, because the
// handler checks the lease and epoch itself.
//
// # Fast failover
//
// The server right after the leader in the election line probes the
// leader's kv.node.<id>.ping subject (detector.go, with package failover)
// and, when NATS says the leader's process is gone, deposes it through the
// election (its Depose removes the leader's znodes), so a crash is
// replaced in tens of milliseconds instead of a session timeout. Every
// server answers its own ping subject. FastFailover.Off turns it off.
//
// # The HTTP face
//
// The HTTP API (http.go) serves the same reads and writes. Its security
// (http_security.go, http_tls.go, http_auth.go) is loaded by New and
// replaced whole by ReloadHTTP: TLS with an optional client CA, taken per
// handshake from an atomic pointer; users of an auth file checked by an
// httpauth.Verifier, whose bcrypt work is bounded so bad credentials cannot
// slow the server. Every /v1 request carries a deadline a little shorter
// than the server's write timeout and longer than its longest wait, so a
// JSON answer is always written.
//
// # Lifetimes
//
// Server.Run owns every goroutine it starts and returns only when they have
// stopped. On a clean stop it steps down, resigns from the election (so a
// successor takes over in milliseconds), stops its NATS services, drains
// the NATS connection and shuts the HTTP server down.
package node
