package bus

// HistoryRequest is the body of a request on Subjects.NodeHistory:
// {"key":"a","limit":10}. It returns the key's versions the node holds,
// newest last.
type HistoryRequest struct {
	Key string `json:"key"`
	// Limit is the most versions returned, the newest ones (0: all held,
	// at most MaxHistory).
	Limit int `json:"limit,omitempty"`
}

// MaxHistory is the most versions of a key a server keeps (kvserver
// --history), as NATS KV's history.
const MaxHistory = 64

// Validate checks the key and the limit.
func (r HistoryRequest) Validate() error {
	if err := ValidateKey(r.Key); err != nil {
		return err
	}
	if r.Limit < 0 || r.Limit > MaxHistory {
		return Errorf(CodeBadRequest, "limit %d: want 0 to %d", r.Limit, MaxHistory)
	}
	return nil
}

// Version is one revision of a key: its value, or a tombstone (Deleted:
// a delete, a purge, a delete by prefix or an expiry removed the key).
type Version struct {
	Revision uint64 `json:"revision"`
	Value    string `json:"value,omitempty"`
	Deleted  bool   `json:"deleted,omitempty"`
	// Expires is the deadline the version set, in Unix milliseconds of
	// the leader's clock (0: none).
	Expires int64 `json:"expires,omitempty"`
}

// HistoryReply is a node's history of one key from its own copy, oldest
// first. Trimmed says older versions existed and are no longer held.
type HistoryReply struct {
	Node     string    `json:"node"`
	Role     string    `json:"role"`
	Epoch    uint64    `json:"epoch"`
	Revision uint64    `json:"revision"`
	Stale    bool      `json:"stale,omitempty"`
	Key      string    `json:"key"`
	Versions []Version `json:"versions"`
	Trimmed  bool      `json:"trimmed,omitempty"`
}

// Limits of a changes page, like a list page's.
const (
	DefaultChangesPage = 100
	MaxChangesPage     = 1000
	ChangesPageBytes   = 128 << 10
	// MaxChangesWaitMS bounds how long a changes request waits for a
	// new update when none is held after its revision.
	MaxChangesWaitMS = 30000
)

// ChangesRequest is the body of a request on Subjects.NodeChanges:
// {"after":120,"prefix":"a/","limit":100,"wait_ms":5000}. It replays, in
// revision order, the updates the node holds after revision After that
// touch keys beginning with Prefix ("" for every key).
type ChangesRequest struct {
	After uint64 `json:"after"`
	// AfterEpoch, if set, is the epoch that wrote revision After in the
	// stream the caller followed (a reply's NextEpoch): a node that holds
	// After from another epoch (a leader lost it, and its successor reused
	// the revision) answers CodeCompacted instead of going on past it.
	AfterEpoch uint64 `json:"after_epoch,omitempty"`
	Prefix     string `json:"prefix,omitempty"`
	Limit      int    `json:"limit,omitempty"`
	// WaitMS, if set, makes a request that finds nothing after After wait
	// up to that long for a matching update (a long poll).
	WaitMS int `json:"wait_ms,omitempty"`
}

// Validate checks the prefix, the limit and the wait.
func (r ChangesRequest) Validate() error {
	if err := ValidatePrefix(r.Prefix); err != nil {
		return err
	}
	switch {
	case r.After > MaxSeq || r.AfterEpoch > MaxSeq:
		return Errorf(CodeBadRequest, "after %d or after_epoch %d past %d", r.After, r.AfterEpoch, uint64(MaxSeq))
	case r.Limit < 0 || r.Limit > MaxChangesPage:
		return Errorf(CodeBadRequest, "limit %d: want 0 to %d", r.Limit, MaxChangesPage)
	case r.WaitMS < 0 || r.WaitMS > MaxChangesWaitMS:
		return Errorf(CodeBadRequest, "wait_ms %d: want 0 to %d", r.WaitMS, MaxChangesWaitMS)
	}
	return nil
}

// ChangesReply is one page of a node's replay. Updates are the matching
// updates (as published on Subjects.Replication, without Ack); Next is
// the revision through which the node examined its updates: the next
// request's After. More says updates remain past Next now. A start
// older than the node holds fails with CodeCompacted, whose Revision is
// the oldest revision it can replay from.
type ChangesReply struct {
	Node     string   `json:"node"`
	Role     string   `json:"role"`
	Epoch    uint64   `json:"epoch"`
	Revision uint64   `json:"revision"`
	Stale    bool     `json:"stale,omitempty"`
	Updates  []Update `json:"updates"`
	Next     uint64   `json:"next"`
	// NextEpoch is the epoch that wrote revision Next here: the next
	// request's AfterEpoch.
	NextEpoch uint64 `json:"next_epoch,omitempty"`
	More      bool   `json:"more"`
}
