package node

import (
	"sync/atomic"

	"github.com/zkvstore/zkv/bus"
)

// budget bounds one kind of request that holds a goroutine or a slow
// resource: each kind has its own, so one kind filling its slots (a flood
// of long min_revision waits, say) leaves the others theirs. A full budget
// refuses at once rather than queueing.
type budget struct {
	name     string
	slots    chan struct{}
	rejected atomic.Uint64
}

func newBudget(name string, limit int) *budget {
	return &budget{name: name, slots: make(chan struct{}, limit)}
}

// acquire takes a slot if one is free; it never blocks. A refusal is
// counted.
func (b *budget) acquire() bool {
	select {
	case b.slots <- struct{}{}:
		return true
	default:
		b.rejected.Add(1)
		return false
	}
}

// release returns a slot taken by acquire.
func (b *budget) release() { <-b.slots }

// status reports the budget for bus.Status.
func (b *budget) status() bus.BudgetStatus {
	return bus.BudgetStatus{Limit: cap(b.slots), InUse: len(b.slots), Rejected: b.rejected.Load()}
}

// fullError is the "unavailable" answer of a request its budget refused.
func (b *budget) fullError(node string) error {
	return bus.Errorf(bus.CodeUnavailable, "node %s: budget %s is full (%d in flight)", node, b.name, cap(b.slots))
}

// budgets are a server's request budgets, one per kind.
type budgets struct {
	waitingReads    *budget // min_revision reads that wait
	forwardedWrites *budget // writes a follower forwards
	leaderReads     *budget // consistency=leader reads a follower forwards
	ackWaits        *budget // writes waiting for replicas' confirmations
	snapshotPages   *budget // snapshot pages served by the leader
	lists           *budget // list pages served from the local copy
	watches         *budget // changes requests waiting for an update
}

func newBudgets(cfg Config) budgets {
	return budgets{
		waitingReads:    newBudget(bus.BudgetWaitingReads, cfg.MaxWaitingReads),
		forwardedWrites: newBudget(bus.BudgetForwardedWrites, cfg.MaxForwards),
		leaderReads:     newBudget(bus.BudgetLeaderReads, cfg.MaxLeaderReads),
		ackWaits:        newBudget(bus.BudgetAckWaits, cfg.MaxAckWaits),
		snapshotPages:   newBudget(bus.BudgetSnapshotPages, cfg.MaxSnapshotPages),
		lists:           newBudget(bus.BudgetLists, cfg.MaxLists),
		watches:         newBudget(bus.BudgetWatches, cfg.MaxWatches),
	}
}

func (bs budgets) status() bus.Budgets {
	return bus.Budgets{
		WaitingReads:    bs.waitingReads.status(),
		ForwardedWrites: bs.forwardedWrites.status(),
		LeaderReads:     bs.leaderReads.status(),
		AckWaits:        bs.ackWaits.status(),
		SnapshotPages:   bs.snapshotPages.status(),
		Lists:           bs.lists.status(),
		Watches:         bs.watches.status(),
	}
}

// spawn runs f on a server-owned goroutine holding a slot of b. If b is
// full or the server is shutting down it runs nothing and returns the
// "unavailable" error to answer.
func (s *Server) spawn(b *budget, f func()) error {
	if !b.acquire() {
		return b.fullError(s.cfg.ID)
	}
	if !s.goFunc(func() {
		defer b.release()
		f()
	}) {
		b.release()
		return s.shuttingDown()
	}
	return nil
}

// take holds a slot of b for a request served on the caller's goroutine
// (the HTTP API) and returns its release, or the "unavailable" error to
// answer if b is full.
func (s *Server) take(b *budget) (release func(), err error) {
	if !b.acquire() {
		return nil, b.fullError(s.cfg.ID)
	}
	return b.release, nil
}

func (s *Server) shuttingDown() error {
	return bus.Errorf(bus.CodeUnavailable, "node %s is shutting down", s.cfg.ID)
}
