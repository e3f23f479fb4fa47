// Package failover tells, within tens of milliseconds, that a server's
// process is gone, by what NATS says about its subscriptions.
//
// # Why it works
//
// When a process dies on a live host (SIGKILL, a panic, the OOM killer),
// its kernel closes its sockets at once: its NATS connection drops (and,
// when the server is a NATS node, its routes too), so the NATS server
// removes its subscriptions and answers a request to one of its per-node
// subjects with "no responders" immediately. A server that is merely slow
// or paused (SIGSTOP, a GC pause) keeps its connection and subscriptions:
// a request to it times out instead. A Detector therefore probes one
// subject of the watched server every Interval, one request at a time,
// and calls it dead only after a run of "no responders" answers, and
// nothing else, lasting at least Window and MinProbes probes.
//
// # What must not look like a death
//
//   - A paused or slow server: its probe times out, which ends the run.
//   - A NATS server restart, which drops everyone's subscriptions at once:
//     a "no responders" counts only while the Detector's own connection
//     has been connected since its last reconnect for at least Stable, and
//     a death is declared only if a witness (another server's subject)
//     answered after the run began, so the NATS server the Detector talks
//     to does route to live servers.
//   - The Detector cut off itself: a disconnected or reconnecting
//     connection ends the run and restarts the Stable wait.
//
// "No responders" is a status message the NATS server sends; a client
// allowed to subscribe to the probed subject could also forge one (and
// could equally answer for a dead server, which only delays the
// detection). What a Detector concludes is a hint: the caller acts on it
// through ZooKeeper (election.Elector.Depose), and the epoch fencing
// there keeps a wrong guess from costing an acknowledged write.
//
// # Caller's duties
//
// Watch blocks until it declares a death or its ctx ends; run it from a
// goroutine the caller owns, and only on the server that would take over
// (the next in line), so one death wakes one prober.
package failover
