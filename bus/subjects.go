package bus

import (
	"fmt"
	"regexp"
	"strconv"
)

// DefaultPrefix is the subject prefix used when none is configured.
const DefaultPrefix = "kv"

// Service names under which nodes register with NATS micro, so that
// `nats micro ls` lists every node ("zkv") and the current leader
// ("zkv-leader").
const (
	NodeServiceName   = "zkv"
	LeaderServiceName = "zkv-leader"
	// WriteQueueGroup is the queue group of the leader's read and snapshot
	// endpoints. (Its write endpoints have none: while a paused or deposed
	// leader is still subscribed, every write reaches the live leader too,
	// and the first answer wins; epochs fence what the old one does.)
	WriteQueueGroup = "zkv-leader"
	// ReadQueueGroup is the queue group of Subjects.Read: one node answers.
	ReadQueueGroup = "zkv-read"
)

var tokenRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// ValidNodeID reports whether id can be used as a node ID: one NATS subject
// token of letters, digits, '-' and '_' (1 to 64 characters).
func ValidNodeID(id string) error {
	if len(id) == 0 || len(id) > 64 || !tokenRE.MatchString(id) {
		return fmt.Errorf("node id %q: want 1-64 letters, digits, '-' or '_'", id)
	}
	return nil
}

// ValidPrefix reports whether p is a usable subject prefix: one or more
// dot-separated tokens of letters, digits, '-' and '_'.
func ValidPrefix(p string) error {
	if !prefixRE.MatchString(p) {
		return fmt.Errorf("subject prefix %q: want dot-separated tokens of letters, digits, '-' or '_'", p)
	}
	return nil
}

var prefixRE = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// Subjects builds every NATS subject of one zkv cluster. All subjects live
// under Prefix, so two clusters can share one NATS server. The zero value
// uses DefaultPrefix.
type Subjects struct {
	// Prefix is the first token(s) of every subject; "" means DefaultPrefix.
	Prefix string
}

func (s Subjects) p() string { return s.Prefixed() }

// Prefixed is the prefix the subjects start with: Prefix, or
// DefaultPrefix if it is empty.
func (s Subjects) Prefixed() string {
	if s.Prefix == "" {
		return DefaultPrefix
	}
	return s.Prefix
}

// Write is the subject only the leader answers: "kv.write".
func (s Subjects) Write() string { return s.p() + ".write" }

// EpochWrite is the write subject of the leader of epoch only, advertised
// in its leader znode: unlike Write, a paused or deposed leader of an
// older epoch is never among its responders, so a server forwarding a
// write to the leader it knows never waits on an old one.
func (s Subjects) EpochWrite(epoch uint64) string {
	return s.p() + ".write." + strconv.FormatUint(epoch, 10)
}

// Read is the subject any one node answers reads on, from its own copy
// (a queue group picks the node): "kv.read".
func (s Subjects) Read() string { return s.p() + ".read" }

// LeaderRead is the subject only the leader answers reads on, at its
// current epoch: "kv.leader.read". Nodes forward consistency=leader reads
// to it.
func (s Subjects) LeaderRead() string { return s.p() + ".leader.read" }

// LeaderSnapshot is the subject on which the leader serves pages of its
// store to replicas catching up: "kv.leader.snapshot".
func (s Subjects) LeaderSnapshot() string { return s.p() + ".leader.snapshot" }

// NodeRead is the subject on which node id answers reads from its own copy:
// "kv.node.<id>.read".
func (s Subjects) NodeRead(id string) string { return s.p() + ".node." + id + ".read" }

// NodeList is the subject on which node id lists the keys of its own
// copy that begin with a prefix, a page at a time: "kv.node.<id>.list".
func (s Subjects) NodeList(id string) string { return s.p() + ".node." + id + ".list" }

// NodeHistory is the subject on which node id answers a key's history
// from its own copy: "kv.node.<id>.history".
func (s Subjects) NodeHistory(id string) string { return s.p() + ".node." + id + ".history" }

// NodeChanges is the subject on which node id replays its recent updates
// from a revision, a page at a time, for watchers: "kv.node.<id>.changes".
func (s Subjects) NodeChanges(id string) string { return s.p() + ".node." + id + ".changes" }

// NodeWrite is the subject on which node id accepts writes and routes them
// to the leader: "kv.node.<id>.write".
func (s Subjects) NodeWrite(id string) string { return s.p() + ".node." + id + ".write" }

// NodeStatus is the subject on which node id reports its status:
// "kv.node.<id>.status".
func (s Subjects) NodeStatus(id string) string { return s.p() + ".node." + id + ".status" }

// NodePing is the subject on which node id answers an empty request with
// an empty reply: "kv.node.<id>.ping". The next server in line probes the
// leader's to learn at once that its process is gone (NATS answers "no
// responders"); see package failover.
func (s Subjects) NodePing(id string) string { return s.p() + ".node." + id + ".ping" }

// AllStatus matches the status subject of every node: "kv.node.*.status".
func (s Subjects) AllStatus() string { return s.p() + ".node.*.status" }

// Ack is the subject on which replicas confirm puts that asked for it:
// "kv.ack". The leader subscribes to it.
func (s Subjects) Ack() string { return s.p() + ".ack" }

// Replication is the subject on which the leader publishes every applied
// write, in order: "kv.replication". Every node subscribes to it without a
// queue group.
func (s Subjects) Replication() string { return s.p() + ".replication" }

// Metadata keys a node sets on its NATS micro service (NodeServiceName).
const (
	// MetadataNode holds the node's ID.
	MetadataNode = "node"
	// MetadataPrefix, if set, holds the node's subject prefix; Client.Nodes
	// then ignores nodes of other prefixes.
	MetadataPrefix = "prefix"
)
