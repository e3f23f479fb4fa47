// Package client is the Go client of zkv, a replicated key-value store
// whose servers elect a leader in ZooKeeper and talk over NATS.
//
//	nc, _ := nats.Connect(nats.DefaultURL)
//	kv, _ := client.New(nc)
//	r, _ := kv.Put(ctx, "config/a", "1")
//	e, _ := kv.Get(ctx, "config/a", client.WithMinRevision(r.Revision, time.Second))
//
// # Keys, values and revisions
//
// A key is 1 to 256 bytes of UTF-8 without control characters; a value is
// at most 64 KiB of UTF-8 text. Every write the leader applies (a put, a
// delete, a purge, an expiry, a compaction) takes the next store-wide
// revision. A key's revision is the revision of its last put; a
// compare-and-set names it (WithIfRevision, Update), and reads at a
// revision (WithRevision) and watches (FromRevision) start from one. Revisions
// never go back, across leaders too.
//
// # Leaders and epochs
//
// Writes go to the leader, which ZooKeeper elects; each leadership is an
// epoch, a number that only grows. A write is acknowledged by the leader
// alone (bus.AcksLeader, the servers' default), or once a majority or
// every server holds it (WithAcks). A deposed leader's writes are refused by every server, by
// epoch.
//
// # Stale copies
//
// Every server holds a full copy, and a read is answered from one copy: by
// default any server's (FromNode picks one), which may be stale: a server
// restarted empty, or one that missed updates, answers "not found" for a
// key until it is written again. Entry.Stale says when the answering copy
// knows it is behind. WithLeaderRead asks the leader, which holds every
// acknowledged write; WithMinRevision waits until the copy has applied a
// revision, such as the one of your own last write.
//
// # Errors, retries and backoff
//
// Errors from servers carry a stable code and match this package's
// sentinels with errors.Is: ErrNotFound, ErrConflict (a compare-and-set
// lost; CurrentRevision says the key's revision), ErrExists, ErrNotLeader,
// ErrNoLeader, ErrUnavailable, ErrTimeout, ErrStale, ErrCompacted,
// ErrBadRequest and the others below. A call retries, with exponential
// backoff and jitter between WithRetryBackoff's bounds, while no leader
// answers, a request times out, or the answer is not_leader, no_leader,
// unavailable or stale, until its context ends; every other error is
// returned at once. Each write carries a fresh request ID, so a retry of
// a write whose reply was lost is applied once, even across a failover.
//
// # Concurrency
//
// A Client is safe for concurrent use. Watchers deliver on their own
// goroutine and stop when their context ends or Stop is called.
//
// # Stability
//
// The exported API of this package follows semantic versioning from
// 1.0; before it, a minor version may change it, and the changes are
// listed in the project's README. The wire types live in package bus and
// follow the protocol's compatibility rule (docs/protocol.md): a client
// one minor version newer than the servers keeps working for the
// operations the servers have. The client tells servers its version in
// the Zkv-Client header of every request.
package client
