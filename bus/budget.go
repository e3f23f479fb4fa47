package bus

// Names of a node's request budgets, as an "unavailable" error names the
// one that was full; Budgets has a field of the same name for each.
const (
	BudgetWaitingReads    = "waiting_reads"    // min_revision reads waiting for their revision
	BudgetForwardedWrites = "forwarded_writes" // writes a follower forwards to the leader
	BudgetLeaderReads     = "leader_reads"     // consistency=leader reads a follower forwards
	BudgetAckWaits        = "ack_waits"        // acks=majority|all writes waiting for confirmations
	BudgetSnapshotPages   = "snapshot_pages"   // snapshot pages the leader is serving
	BudgetLists           = "lists"            // list pages a node is building and encoding
	BudgetWatches         = "watches"          // changes requests waiting for a new update (watchers' long polls)
)

// Budgets are a node's bounded request budgets, one per kind of request
// that holds a goroutine or the store for a while. Each kind has its own,
// so one kind filling its slots does not refuse the others.
type Budgets struct {
	WaitingReads    BudgetStatus `json:"waiting_reads"`
	ForwardedWrites BudgetStatus `json:"forwarded_writes"`
	LeaderReads     BudgetStatus `json:"leader_reads"`
	AckWaits        BudgetStatus `json:"ack_waits"`
	SnapshotPages   BudgetStatus `json:"snapshot_pages"`
	Lists           BudgetStatus `json:"lists"`
	Watches         BudgetStatus `json:"watches"`
}

// BudgetStatus is one request budget: Limit slots, InUse taken now, and
// Rejected requests refused "unavailable" since the node started because
// every slot was taken.
type BudgetStatus struct {
	Limit    int    `json:"limit"`
	InUse    int    `json:"in_use"`
	Rejected uint64 `json:"rejected"`
}
