// Package election elects one leader among zkv servers with ZooKeeper.
//
// # Algorithm
//
// Each server creates an EPHEMERAL|SEQUENTIAL znode under the election path,
// /election/server_NNNNNNNNNN, whose data names the server (ID, address) and
// carries a random per-process token. Children are ordered by the number
// parsed from their suffix (never as strings: protected names and counters
// past ten digits sort wrongly as text). The server with the smallest number
// leads, and that number is its epoch: later leaders always have larger
// numbers, because ZooKeeper never reuses a sequence number and every
// smaller znode is gone when a server takes over. (The epoch is the number
// plus one, as ZooKeeper counts from 0 and epoch 0 means "none": the leader
// holding server_0000000004 leads epoch 5.)
//
// Every other server watches only its predecessor (no herd effect): when
// that znode goes, it lists the children again and either leads or watches
// its new predecessor. Watches fire once; the loop re-arms them.
//
// A leader publishes an ephemeral leader znode (/leader by default) with its
// ID and epoch once it is ready to take writes (Announce). Every server
// watches it, so each learns a new epoch even when the new leader was not
// its predecessor.
//
// # Sessions and the lease
//
// The session event channel of go-zookeeper is drained for the whole life
// of the connection. On Disconnected, a leader steps down at once: go-zookeeper
// reports Expired only after it has reconnected, by which time another server
// may lead. After an expiry the server's znode is gone; it registers a new
// one and goes to the back of the line.
//
// go-zookeeper hides its own pings, so the Elector makes a light request
// every tenth of the session timeout and records, on the monotonic clock,
// the send time of each round trip that succeeded on the session its znode
// was created in. LeaseValid is true only while the newest such time is
// younger than half the session timeout: a leader that was paused (SIGSTOP, a long GC) or cut off
// past that point does not acknowledge writes, even before it learns that
// its session expired. The session timeout is the one ZooKeeper granted,
// read from its connect reply (go-zookeeper does not export it), not the
// one asked for: ZooKeeper clamps the request to [2, 20] × tickTime.
//
// # Fast failover
//
// Depose lets the server right after the leader delete the leader's
// election znode and the leader znode when it has seen, through NATS, that
// the leader's process is gone (package failover), instead of waiting for
// the session to expire. A leader deposed while alive learns it from its
// watch on its own znode, and its lease round trips check that znode
// exists, so it stops acknowledging; epochs fence what it already sent.
// The session timeout asked for is the configured one less ZooKeeper's
// tick, which expiry is rounded up to, so a session expiry also comes
// within the configured timeout.
//
// A create whose reply was lost may still have succeeded. After such a
// failure the Elector looks for its own token among the children (and checks
// that the znode belongs to its current session) before it creates another.
//
// # Caller's duties
//
// Run blocks; Leadership delivers the latest Term (a 1-buffered channel:
// intermediate terms may be skipped, the last one is always delivered).
// Check LeaseValid before applying a write and again before acknowledging
// it. Call Resign for a clean stop: it deletes the znodes and closes the
// session, so a successor takes over within a few ZooKeeper round trips
// instead of a session timeout.
//
// # Files
//
// elector.go holds the API (Elector, New, Run, Term and the accessors);
// each loop lives apart: session.go (the connection, its events and the
// negotiated timeout), lease.go (the round trips that keep the lease),
// register.go (the election znode, with lost-reply recovery), watch.go
// (the position watch and the campaign loop), fence.go (Depose: the next
// in line removes a dead leader's znodes), leader.go (the leader znode:
// Announce, Resign, Requeue), members.go (who is registered), record.go
// (the cluster record) and acl.go (the ACL check).
package election
