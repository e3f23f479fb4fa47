// Package chaos is zkv's fault suite. Each case starts real ZooKeeper,
// NATS and kvserver processes on loopback, runs concurrent clients that
// record a history of every operation, injects one kind of fault (SIGKILL or
// SIGSTOP of the leader, a ZooKeeper partition of the leader, a NATS
// restart, the loss of ZooKeeper ensemble members, an empty server left
// alone, a client without the cluster key forging server messages, every
// server killed and restarted empty or from its data directory, a torn
// last log record), and then checks the history:
//
//   - acknowledged writes are never missing afterwards (the last
//     acknowledged value of each key, or a later write's, is what the leader
//     and every current copy return);
//   - leader reads and writes are linearizable per key (porcupine, with a
//     write whose outcome is unknown modelled as possibly applied);
//   - no copy goes back to a value of an older epoch once it has one of a
//     newer epoch, and a deposed leader acknowledges nothing;
//   - no read returns a value only an attacker sent, forged messages
//     neither depose the leader nor confirm an acks=all write, and every
//     server counts them;
//   - revisions never go backwards, even after every server restarted
//     empty, and the new leader reports the revisions lost;
//   - a server restarted from its data directory loaded every write it
//     confirmed, reports a torn last record at WARN, catches up and ends
//     with exactly the leader's copy;
//   - a watch (client.Client.WatchFrom) started with the load, on a server
//     the fault is not aimed at, delivers revisions in strictly increasing
//     order, every acknowledged write at its revision with its content,
//     and the expiry of every key whose time to live passed well before it
//     stopped; if the fault killed its server it is resumed on another
//     from the last revision seen, and the union is checked;
//   - a key written with a time to live (a few of the puts, each on a key
//     of its own, left out of the linearizability check) is gone from the
//     leader and every current copy once it has passed by the session
//     timeout and 2 s more;
//   - the times to stop acknowledging and to elect a new leader stay within
//     generous bounds (they are measured and reported, not asserted tightly).
//
// The watcher of the replication subject keeps only the messages signed
// with the cluster key, read from the cluster record in ZooKeeper.
//
// Every run starts its own cluster with cluster.StartLocal: three
// kvservers and an embedded NATS server on the suite's shared ZooKeeper
// (under paths and a subject prefix of the run's own), or on an ensemble
// of its own, and with a toxiproxy proxy per server to ZooKeeper where a
// case cuts one off. Each case is a row of one table (cases.go): its
// name and variants, its cluster options (session timeout, --acks,
// --catch-up, proxies, an ensemble), how far the cluster is brought
// before the fault, and the steps that differ between cases (inject,
// heal, expect); one skeleton runs every row. A new fault is a new row.
//
// Suite runs every case a number of times and returns the results; Report
// renders them as docs/reliability.md. Command is the `chaos` command for
// a urfave/cli application.
//
// # Outcomes of a write
//
// A client sends each write itself on the leader subject, with one request
// ID for all its attempts (so the leader applies it at most once), and
// classifies it from every attempt's answer:
//
//   - ok: some attempt was acknowledged;
//   - failed: no attempt can have been applied: every attempt got "no
//     responders" (nobody subscribed), a validation error (bad_request,
//     invalid_key, value_too_large), or a not_leader answer that the leader
//     gives before applying ("is not the leader", "cannot confirm its
//     ZooKeeper session", "a newer epoch exists");
//   - ambiguous: anything else, i.e. some attempt timed out without an
//     answer, or was answered timeout, unavailable, internal, or not_leader
//     after the write was applied ("may or may not survive", "while revision
//     N was being confirmed").
//
// For linearizability an ambiguous write is a write that returns at the end
// of the history: it may take effect at any point after its invocation, or
// never. A failed write must never be seen by a read.
package chaos
