package testdriver

import (
	"context"
	"fmt"
	"strings"
)

// Stop says how a node is stopped.
type Stop string

// The ways to stop a node.
const (
	StopKill Stop = "sigkill" // crash: the successor waits for the session timeout
	StopTerm Stop = "sigterm" // clean: the node resigns and hands over at once
)

// ParseStop parses "sigkill" or "sigterm" (case-insensitive, with or
// without the "sig" prefix).
func ParseStop(s string) (Stop, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "sigkill", "kill", "9":
		return StopKill, nil
	case "sigterm", "term", "15":
		return StopTerm, nil
	}
	return "", fmt.Errorf("stop %q: want sigkill or sigterm", s)
}

// Signal is the name of the signal, for people: "SIGKILL" or "SIGTERM".
func (s Stop) Signal() string { return strings.ToUpper(string(s)) }

// Cluster is what the scenarios need from a deployment: its nodes, and a
// way to stop and restart one. Clients reach the nodes over NATS (URL).
type Cluster interface {
	// NATSURL is the URL the driver's NATS client connects to.
	NATSURL() string
	// Nodes are the IDs of every node, running or not.
	Nodes() []string
	// Stop stops node id as how says and waits until it is gone.
	Stop(ctx context.Context, id string, how Stop) error
	// Start starts node id again (after Stop), with an empty store, and
	// waits until it answers its health check.
	Start(ctx context.Context, id string) error
	// Describe names where node id runs, for people (a PID, a container).
	Describe(id string) string
	// Close stops everything the Cluster itself started.
	Close(ctx context.Context) error
}

// Versioned is implemented by a Cluster that can name the versions of
// the parts it runs (ZooKeeper, the NATS server); Run records them in the
// Summary. It is optional.
type Versioned interface {
	// Versions maps a part's name to its version. It gives up when ctx
	// ends and leaves out what it could not find.
	Versions(ctx context.Context) map[string]string
}
