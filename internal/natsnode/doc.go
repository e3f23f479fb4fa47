// Package natsnode runs the real nats-server inside the calling process,
// so that a kvserver is a NATS node (embedded mode): clients connect to
// the kvserver's own NATS listener, and the kvserver connects to its
// server in-process (nats.InProcessServer), without a socket.
//
// The servers of several kvservers form one NATS cluster through routes,
// as nats-server's own --cluster and --routes do; a client connected to
// any of them reaches every subject, and the servers advertise the
// cluster's client URLs, so a client whose server stops reconnects to
// another. The in-process connection is the node's alone: no other client
// goes through it.
//
// The caller owns the lifecycle: Start before connecting, Shutdown after
// the connection is closed, on every exit path. Start waits until the
// server accepts connections (ReadyForConnections), or fails with what the
// server reported (a busy port, a bad config file). The server installs no
// signal handlers and logs through the caller's slog.Logger with the key
// component=nats-server.
package natsnode
