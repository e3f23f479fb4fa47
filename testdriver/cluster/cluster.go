package cluster

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

// ZooKeeperFaults is implemented by a Cluster that can kill and start the
// members of its ZooKeeper ensemble (a Compose, or a Local
// that runs an ensemble). The zookeeper-loss scenario needs it, and a
// member list of at least three; without it, that scenario is skipped.
type ZooKeeperFaults interface {
	// ZooKeeperMembers names the members the cluster can kill and start,
	// in order; empty when it has none (a standalone ZooKeeper, or one it
	// does not control).
	ZooKeeperMembers() []string
	// ZooKeeperMode asks member for its mode (srvr): "leader",
	// "follower" or "standalone". A member that is not serving (down, or
	// without a quorum) is an error.
	ZooKeeperMode(ctx context.Context, member string) (string, error)
	// KillZooKeeper kills member with SIGKILL and waits until it is gone.
	KillZooKeeper(ctx context.Context, member string) error
	// StartZooKeeper starts member again (with its data) and waits until
	// it serves.
	StartZooKeeper(ctx context.Context, member string) error
}
