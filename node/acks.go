package node

import (
	"sync"

	"github.com/zkvstore/zkv/bus"
)

// ackKey names one put: its epoch and sequence number.
type ackKey struct{ epoch, seq uint64 }

// ackWait is a write waiting for replicas to confirm it.
type ackWait struct {
	level   string
	members int             // servers registered when the write was applied, leader included
	need    map[string]bool // acks=all: the replicas still required
	quorum  int             // acks=majority: confirmations needed from replicas
	got     map[string]bool // replicas that confirmed
	done    chan struct{}   // closed once satisfied
}

// satisfiedLocked reports whether w has what its level asks for.
func (w *ackWait) satisfiedLocked() bool {
	if w.level == bus.AcksAll {
		for id := range w.need {
			if !w.got[id] {
				return false
			}
		}
		return true
	}
	return len(w.got) >= w.quorum
}

// ackTracker matches replicas' confirmations to waiting writes. Waits stay
// known after they end, for a bounded window, so a retried request ID finds
// the outcome of its first attempt.
type ackTracker struct {
	mu    sync.Mutex
	waits map[ackKey]*ackWait
	ring  []ackKey
	next  int
}

func newAckTracker(window int) *ackTracker {
	return &ackTracker{waits: make(map[ackKey]*ackWait), ring: make([]ackKey, window)}
}

// register starts tracking put k at level, with members registered now
// (self is the leader and confirms by applying).
func (t *ackTracker) register(k ackKey, level, self string, members []string) *ackWait {
	w := &ackWait{level: level, need: make(map[string]bool), got: make(map[string]bool), done: make(chan struct{})}
	n := 1
	for _, id := range members {
		if id != self {
			w.need[id] = true
			n++
		}
	}
	w.members = n
	w.quorum = n/2 + 1 - 1 // a majority of n, less the leader
	t.mu.Lock()
	defer t.mu.Unlock()
	if old := t.ring[t.next]; old != (ackKey{}) {
		delete(t.waits, old)
	}
	t.ring[t.next] = k
	t.next = (t.next + 1) % len(t.ring)
	t.waits[k] = w
	if w.satisfiedLocked() {
		close(w.done)
	}
	return w
}

// get returns the wait of put k, if still known.
func (t *ackTracker) get(k ackKey) *ackWait {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.waits[k]
}

// confirm records node's confirmation of put k.
func (t *ackTracker) confirm(k ackKey, node string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.confirmLocked(k, node)
}

// confirmRange records node's confirmation of every update of epoch from
// from to to (an ack of a batch; bus.Ack bounds the run).
func (t *ackTracker) confirmRange(epoch, from, to uint64, node string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for seq := from; seq <= to && seq >= from; seq++ {
		t.confirmLocked(ackKey{epoch, seq}, node)
	}
}

func (t *ackTracker) confirmLocked(k ackKey, node string) {
	w := t.waits[k]
	if w == nil || w.got[node] {
		return
	}
	if w.level == bus.AcksAll && !w.need[node] {
		return // not a member when the write was applied
	}
	w.got[node] = true
	select {
	case <-w.done:
	default:
		if w.satisfiedLocked() {
			close(w.done)
		}
	}
}

// prune drops from an acks=all wait the replicas that are no longer
// registered (their sessions expired), so they stop holding the write.
func (t *ackTracker) prune(w *ackWait, current []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	still := make(map[string]bool, len(current))
	for _, id := range current {
		still[id] = true
	}
	for id := range w.need {
		if !still[id] {
			delete(w.need, id)
		}
	}
	select {
	case <-w.done:
	default:
		if w.satisfiedLocked() {
			close(w.done)
		}
	}
}

// confirmed returns how many servers confirmed w, the leader included.
func (t *ackTracker) confirmed(w *ackWait) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(w.got) + 1
}
