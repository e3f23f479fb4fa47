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
	// OpPut is a write (Add_Update), conditional when IfRevision is set.
	OpPut OpKind = "put"
	// OpCreate is a put that must find the key absent.
	OpCreate OpKind = "create"
	// OpDelete removes the key, conditional when IfRevision is set.
	OpDelete OpKind = "delete"
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
	// Value is the value written (OpPut, OpCreate) or read (when Found).
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
	// value read (the epoch of a read is the answering node's). A write
	// that failed with code conflict or exists has the key's revision the
	// error carried (0: absent).
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
	// IfRevision is the condition of a put or delete (nil: none; 0: the
	// key must be absent).
	IfRevision *uint64 `json:"if_revision,omitempty"`
	// Deleted says an acknowledged delete removed the key; false: the key
	// was absent and nothing was applied.
	Deleted bool `json:"deleted,omitempty"`
	// Via is the node whose write subject a write was sent to ("": the
	// leader subject).
	Via string `json:"via,omitempty"`
	// TTL is the time to live a put carried (0: none).
	TTL time.Duration `json:"ttl,omitempty"`
}

// Codes of a write that failed on its condition and applied nothing.
const (
	codeConflict = "conflict"
	codeExists   = "exists"
)

// isWriteKind reports whether op is a write of any kind, whatever its
// outcome.
func (op Op) isWriteKind() bool {
	return op.Kind == OpPut || op.Kind == OpCreate || op.Kind == OpDelete
}

// writesValue reports whether op is a put or create (it writes Value).
func (op Op) writesValue() bool { return op.Kind == OpPut || op.Kind == OpCreate }

// noOp reports whether op is an acknowledged delete that found the key
// absent: it applied nothing, and its revision is the leader's.
func (op Op) noOp() bool { return op.Kind == OpDelete && op.Outcome == OK && !op.Deleted }

// condFailed reports whether op is a write refused on its condition
// (conflict or exists): it applied nothing, and the revision it carries
// is the key's.
func (op Op) condFailed() bool {
	return op.isWriteKind() && op.Outcome == Failed && (op.Code == codeConflict || op.Code == codeExists)
}

// IsWrite reports whether op is a write (put, create or delete) that may
// have taken effect (ok or ambiguous).
func (op Op) IsWrite() bool { return op.isWriteKind() && op.Outcome != Failed }

// Acked reports whether op is an acknowledged write of any kind.
func (op Op) Acked() bool { return op.isWriteKind() && op.Outcome == OK }

// IsRead reports whether op is an answered read of either kind.
func (op Op) IsRead() bool { return !op.isWriteKind() && op.Outcome == OK }

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

// OpCounts summarises a history. Puts* count the writes of every kind.
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
	// Deletes, Creates and Conditional (puts and deletes with if_revision)
	// are among the writes; Refused counts those that failed with conflict
	// or exists.
	Deletes     int `json:"deletes,omitempty"`
	Creates     int `json:"creates,omitempty"`
	Conditional int `json:"conditional,omitempty"`
	Refused     int `json:"refused,omitempty"`
	// ViaNode counts the writes sent to a node's write subject.
	ViaNode int `json:"via_node,omitempty"`
	// TTL counts the puts that carried a time to live.
	TTL int `json:"ttl,omitempty"`
}

// Count summarises ops.
func Count(ops []Op) OpCounts {
	var c OpCounts
	for _, op := range ops {
		c.Total++
		switch op.Kind {
		case OpPut, OpCreate, OpDelete:
			c.Puts++
			switch {
			case op.Kind == OpDelete:
				c.Deletes++
			case op.Kind == OpCreate:
				c.Creates++
			}
			if op.IfRevision != nil {
				c.Conditional++
			}
			if op.condFailed() {
				c.Refused++
			}
			if op.Via != "" {
				c.ViaNode++
			}
			if op.TTL > 0 {
				c.TTL++
			}
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
		if !op.isWriteKind() && op.Outcome != OK {
			c.ReadsFailed++
		}
	}
	return c
}
