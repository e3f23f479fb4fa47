// Package harness starts and stops the real parts of a zkv deployment for
// tests and for the command-line test driver: ZooKeeper (a standalone server
// or a loopback ensemble, run from Debian's zookeeper package), an embedded
// NATS server, the zkv binaries built from this module, and kvserver
// processes.
//
// The package does not import "testing"; internal/testenv wraps it for Go
// tests.
//
// Conventions kept by every part of the package:
//
//   - Every blocking call takes a context.Context and gives up when it ends.
//   - Ports are never fixed: each one is found by binding 127.0.0.1:0.
//   - Readiness is polled (srvr for ZooKeeper, /healthz and /readyz for
//     kvserver), never waited for with a fixed sleep.
//   - Child processes run in their own process group (so a Ctrl-C on the
//     terminal reaches only the driver), are signalled by PID, and are reaped
//     by exactly one goroutine per process, which closes an Exited channel.
//     On Linux they also receive SIGKILL if the process that started them
//     dies, so a crashed driver leaves no orphans.
//   - When a setup step fails, everything it had started is stopped and
//     every temporary directory it had created is removed.
//   - Errors are wrapped with %w, and errors about a child process that
//     died carry the tail of its log.
package harness
