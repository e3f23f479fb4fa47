package bus

// ClusterView is the cluster as one node sees it: what GET /v1/cluster
// answers and the status page shows. The node lists the members
// registered in the election in ZooKeeper (and itself), asks each for its
// status on Subjects.NodeStatus, and marks those that do not answer in
// time unreachable.
type ClusterView struct {
	// Node is the ID of the node that answered; Time when it collected
	// the view, in Unix milliseconds.
	Node string `json:"node"`
	Time int64  `json:"time"`
	// Leader and Epoch are the leader and epoch this node knows ("", 0
	// while it knows none). LeaderRevision is the leader's revision from
	// its status (0 if it did not answer).
	Leader         string `json:"leader"`
	Epoch          uint64 `json:"epoch"`
	LeaderRevision uint64 `json:"leader_revision"`
	// Members are one row per node, sorted by ID.
	Members []MemberView `json:"members"`
	// Elections are the recent leader changes this node saw, oldest first.
	Elections []ElectionEvent `json:"elections"`
}

// MemberView is one node's row in a ClusterView.
type MemberView struct {
	// Status is the node's own report; only Node is set when it did not
	// answer.
	Status
	// Reachable is false when the node did not answer its status subject
	// in time: it crashed, is paused, or is cut off from NATS.
	Reachable bool `json:"reachable"`
	// InZooKeeper is true while the node holds an election znode.
	InZooKeeper bool `json:"in_zookeeper"`
	// Lag is how many revisions the node applied less than the leader's
	// revision (0 for the leader, or when either did not answer).
	Lag uint64 `json:"lag"`
	// Error says why an unreachable node is so.
	Error string `json:"error,omitempty"`
}

// ElectionEvent is one change of leader as a node saw it.
type ElectionEvent struct {
	// Leader took over Epoch; Previous is the leader known before it (""
	// when none was known: the first leader this node saw).
	Leader   string `json:"leader"`
	Epoch    uint64 `json:"epoch"`
	Previous string `json:"previous,omitempty"`
	// At is when this node learned of the new leader, in Unix
	// milliseconds.
	At int64 `json:"at"`
	// LeaderlessMS is how long this node knew no leader: from when it saw
	// the previous leader's znode go (ZooKeeper ended its session, or it
	// resigned) until it learned that the new one takes writes, in
	// milliseconds. 0 when the change came without a gap or the previous
	// leader was not known. A crash adds the session timeout before the
	// znode goes, which no node can see.
	LeaderlessMS int64 `json:"leaderless_ms"`
}
