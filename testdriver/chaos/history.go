package chaos

import (
	"encoding/json"
	"io"
	"slices"
	"sync"
	"time"
)

// OpKind is what an operation did.
type OpKind string

// The kinds of operations in a history.
const (
	// OpPut is a write (Add_Update) sent to the leader subject.
	OpPut OpKind = "put"
	// OpGet is a read with consistency=leader.
	OpGet OpKind = "get"
	// OpLocalGet is a read of one node's own copy (consistency=local).
	OpLocalGet OpKind = "local"
)

// Outcome is how an operation ended, as the client saw it.
type Outcome string

// The outcomes; see the package documentation for how a write's is chosen.
const (
	// OK: acknowledged (a write) or answered (a read).
	OK Outcome = "ok"
	// Failed: a write that cannot have been applied, or a read that got
	// no answer.
	Failed Outcome = "failed"
	// Ambiguous: a write that may or may not have been applied.
	Ambiguous Outcome = "ambiguous"
)

// Op is one operation of a history. Times are offsets from the start of the
// run on the monotonic clock.
type Op struct {
	ID     int    `json:"id"`
	Client int    `json:"client"` // -1: the suite's own checks
	Kind   OpKind `json:"kind"`
	Key    string `json:"key"`
	// Value is the value written (OpPut) or read (when Found).
	Value string `json:"value,omitempty"`
	Found bool   `json:"found,omitempty"`
	// Node is the node asked (OpLocalGet) or the node that answered.
	Node    string        `json:"node,omitempty"`
	Invoke  time.Duration `json:"invoke"`
	Return  time.Duration `json:"return"`
	Outcome Outcome       `json:"outcome"`
	// Code is the error code of the last failed attempt ("no_responders"
	// and "no_reply" for NATS-level failures), Err its message.
	Code string `json:"code,omitempty"`
	Err  string `json:"err,omitempty"`
	// Revision and Epoch come from the reply: of the write, or of the
	// value read (the epoch of a read is the answering node's).
	Revision  uint64 `json:"revision,omitempty"`
	Epoch     uint64 `json:"epoch,omitempty"`
	Leader    string `json:"leader,omitempty"`
	Role      string `json:"role,omitempty"`
	Attempts  int    `json:"attempts,omitempty"`
	Duplicate bool   `json:"duplicate,omitempty"`
	// MinRevision is the revision a min_revision read waited for (the
	// client's own last acknowledged write of the key).
	MinRevision uint64 `json:"min_revision,omitempty"`
	// Members and Confirmed are the acks=majority|all counts of the reply.
	Members   int `json:"members,omitempty"`
	Confirmed int `json:"confirmed,omitempty"`
}

// IsWrite reports whether op is a put that may have taken effect (ok or
// ambiguous).
func (op Op) IsWrite() bool { return op.Kind == OpPut && op.Outcome != Failed }

// Acked reports whether op is an acknowledged put.
func (op Op) Acked() bool { return op.Kind == OpPut && op.Outcome == OK }

// IsRead reports whether op is an answered read of either kind.
func (op Op) IsRead() bool { return op.Kind != OpPut && op.Outcome == OK }

// History collects operations from concurrent clients.
type History struct {
	base time.Time
	mu   sync.Mutex
	ops  []Op
}

// NewHistory returns an empty history whose times count from base.
func NewHistory(base time.Time) *History { return &History{base: base} }

// Now is the current offset from the history's base.
func (h *History) Now() time.Duration { return time.Since(h.base) }

// Base is the time offsets count from.
func (h *History) Base() time.Time { return h.base }

// Add records op (its ID is assigned) and returns it.
func (h *History) Add(op Op) Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	op.ID = len(h.ops)
	h.ops = append(h.ops, op)
	return op
}

// Ops returns a copy of the operations recorded so far, in the order they
// were added.
func (h *History) Ops() []Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.ops)
}

// WriteJSONLines writes ops, one JSON object a line.
func WriteJSONLines(w io.Writer, ops []Op) error {
	enc := json.NewEncoder(w)
	for _, op := range ops {
		if err := enc.Encode(op); err != nil {
			return err
		}
	}
	return nil
}

// OpCounts summarises a history.
type OpCounts struct {
	Total         int `json:"total"`
	Puts          int `json:"puts"`
	PutsOK        int `json:"puts_ok"`
	PutsAmbiguous int `json:"puts_ambiguous"`
	PutsFailed    int `json:"puts_failed"`
	LeaderReads   int `json:"leader_reads"`
	LeaderReadsOK int `json:"leader_reads_ok"`
	LocalReads    int `json:"local_reads"`
	LocalReadsOK  int `json:"local_reads_ok"`
	ReadsFailed   int `json:"reads_failed"`
}

// Count summarises ops.
func Count(ops []Op) OpCounts {
	var c OpCounts
	for _, op := range ops {
		c.Total++
		switch op.Kind {
		case OpPut:
			c.Puts++
			switch op.Outcome {
			case OK:
				c.PutsOK++
			case Ambiguous:
				c.PutsAmbiguous++
			default:
				c.PutsFailed++
			}
		case OpGet:
			c.LeaderReads++
			if op.Outcome == OK {
				c.LeaderReadsOK++
			}
		case OpLocalGet:
			c.LocalReads++
			if op.Outcome == OK {
				c.LocalReadsOK++
			}
		}
		if op.Kind != OpPut && op.Outcome != OK {
			c.ReadsFailed++
		}
	}
	return c
}
