// Package testdriver runs zkv's end-to-end scenarios against a real
// cluster: local kvserver processes with their own ZooKeeper and NATS
// (cluster.Local), or an existing deployment such as the docker compose one
// (cluster.Compose).
//
// Run drives any cluster.Cluster through the scenarios of the specification, in
// order:
//
//   - add-read: the servers agree on a leader; a write on kv.write is
//     answered by it; every server then returns the value on its own
//     kv.node.<id>.read.
//   - leader-election: the leader is stopped (SIGKILL or SIGTERM); the
//     time until every running server reports a new leader, and until the
//     new leader acknowledges a write, is measured; later writes carry the
//     new leader and a higher epoch.
//   - stale-read: the stopped server is started again; it follows the
//     leader with an empty store, answers found:false for a key the others
//     hold, and returns the key's new value once it is written again.
//   - zookeeper-loss: one ZooKeeper member (the ensemble's leader) is
//     killed and the others must serve again; then the kvserver leader is
//     killed, and the remaining servers must agree on a new leader with a
//     higher epoch that acknowledges a write they all return; then both
//     are started again. It runs only on a cluster.Cluster that implements
//     cluster.ZooKeeperFaults with an ensemble of at least MinEnsemble members
//     (a cluster.Compose, a cluster.Local started with ZooKeeperEnsemble),
//     and is skipped, with the reason, on any other.
//
// Every step is printed for people, numbered, with what was sent, which
// server answered, the epoch and how long it took; a failed check prints
// what was expected and what came. Every check reads the reply body: a
// NATS "no responders" answer is a failure. Conditions are polled with
// deadlines, never waited for with sleeps.
//
// RunLocal wraps Run for `testdriver run`: it creates a log directory
// (driver.log, every process's log, summary.json), starts a cluster.Local,
// and stops everything again, also when its context is cancelled.
// RunCompose does the same for `testdriver run --cluster compose` on a
// compose project that is up (logs in <timestamp>/compose, with the
// containers' logs). Up does it for `testdriver up`, keeping the cluster
// up until its context ends.
package testdriver
