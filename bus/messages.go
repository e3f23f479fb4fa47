package bus

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"sync"
	"unicode"
	"unicode/utf8"
)

// Limits of the wire protocol.
const (
	// MaxKeyBytes is the longest key accepted, in bytes of UTF-8.
	MaxKeyBytes = 256
	// MaxValueBytes is the longest value accepted, in bytes of UTF-8.
	MaxValueBytes = 64 * 1024
	// MaxRequestBytes bounds a whole request body: the largest value, the
	// largest key and room for JSON escaping, which can turn one byte into
	// six ("\u0001", and "\u003c" for '<' since Encode escapes HTML).
	MaxRequestBytes = 6*(MaxValueBytes+MaxKeyBytes) + 1024
)

// Roles a node reports in replies and status.
const (
	RoleLeader       = "leader"
	RoleFollower     = "follower"
	RoleCandidate    = "candidate"
	RoleDisconnected = "disconnected"
)

// WriteRequest is the body of a request on Subjects.Write or
// Subjects.NodeWrite: {"key":"a","value":"1"}, {"op":"delete","key":"a"},
// {"op":"create","key":"a","value":"1"}, {"key":"a","value":"2","if_revision":7},
// {"op":"delete","key":"a/","prefix":true}, {"op":"purge","key":"a"},
// {"op":"compact","revision":120}, {"key":"a","value":"1","ttl_ms":30000}.
type WriteRequest struct {
	// Op is OpPut (the default, ""), OpDelete, OpCreate, OpPurge or
	// OpCompact.
	Op string `json:"op,omitempty"`
	// Key is the key written (for a delete by prefix, the prefix; empty
	// for a compact).
	Key string `json:"key,omitempty"`
	// Value is required for a put or create and absent for a delete
	// (checked by Decode; Encode writes it accordingly).
	Value string `json:"value,omitempty"`
	// IfRevision, if set, makes a put or delete conditional: the key's
	// revision must equal it (0: the key must not exist), or the write
	// fails with CodeConflict and applies nothing.
	IfRevision *uint64 `json:"if_revision,omitempty"`
	// RequestID, if set, makes the write idempotent: the leader applies a
	// request ID once and answers a retry with the first reply (marked
	// duplicate), within a window of recent IDs that every replica also
	// keeps, so it holds across a failover. Use a fresh random ID per
	// write, at most MaxRequestIDBytes.
	RequestID string `json:"request_id,omitempty"`
	// Acks overrides the server's --acks for this write: AcksLeader,
	// AcksMajority or AcksAll ("" means the server's default).
	Acks string `json:"acks,omitempty"`
	// Prefix makes a delete remove every key that begins with Key, at
	// one revision (Key must not be empty; no if_revision).
	Prefix bool `json:"prefix,omitempty"`
	// TTLMS gives a put or create a time to live in milliseconds (at most
	// MaxTTLMS): the leader deletes the key once it passes, unless it was
	// written again meanwhile. 0 means no expiry.
	TTLMS int64 `json:"ttl_ms,omitempty"`
	// Revision is what a compact keeps: history below it is dropped. A
	// compact names Revision or AgeMS (history older than that).
	Revision uint64 `json:"revision,omitempty"`
	AgeMS    int64  `json:"age_ms,omitempty"`
}

// MaxTTLMS is the longest time to live a key may be given: ten years.
const MaxTTLMS = 10 * 365 * 24 * 3600 * 1000

// Operations of a write.
const (
	// OpPut stores the value at the next revision (the default).
	OpPut = "put"
	// OpDelete removes the key with a tombstone at the next revision; a
	// key that does not exist is left alone (the reply says deleted false).
	OpDelete = "delete"
	// OpCreate is a put that fails with CodeExists if the key exists.
	OpCreate = "create"
	// OpPurge removes the key and its history at the next revision; reads
	// of it at older revisions fail with CodeCompacted.
	OpPurge = "purge"
	// OpCompact drops every key's history below a revision (or older
	// than an age), at the next revision, on every server.
	OpCompact = "compact"
)

// hasValue says whether op carries a value.
func hasValue(op string) bool { return op == "" || op == OpPut || op == OpCreate }

// MarshalJSON writes "value" for a put or create, even empty, and leaves
// it out of a delete, so everything Encode writes decodes again.
func (r WriteRequest) MarshalJSON() ([]byte, error) {
	type plain WriteRequest
	if !hasValue(r.Op) {
		return json.Marshal(plain(r))
	}
	return json.Marshal(struct {
		plain
		Value string `json:"value"`
	}{plain(r), r.Value})
}

// checkPresent is the field rule the tags cannot say: every operation but
// a compact needs "key"; a put or create needs "value", the others must
// not have one.
func (r *WriteRequest) checkPresent(p presence) error {
	switch r.Op {
	case "", OpPut, OpCreate, OpDelete, OpPurge, OpCompact:
	default:
		return nil // Validate names the unknown op
	}
	switch {
	case r.Op != OpCompact && !p.has("key"):
		return Errorf(CodeBadRequest, "missing required field \"key\"")
	case !hasValue(r.Op) && p.has("value"):
		return Errorf(CodeBadRequest, "field \"value\": a %s has no value", r.Op)
	case hasValue(r.Op) && !p.has("value"):
		return Errorf(CodeBadRequest, "missing required field \"value\"")
	}
	return nil
}

// Acknowledgement levels of a write.
const (
	// AcksLeader: the leader replies once it applied the write and handed
	// the update to NATS. A leader crash right after can lose it.
	AcksLeader = "leader"
	// AcksMajority: the leader replies once a majority of the registered
	// servers (the leader counts) confirmed they applied it.
	AcksMajority = "majority"
	// AcksAll: the leader replies once every registered server confirmed.
	AcksAll = "all"
)

// ValidAcks reports whether a is an acknowledgement level ("" allowed).
func ValidAcks(a string) error {
	switch a {
	case "", AcksLeader, AcksMajority, AcksAll:
		return nil
	}
	return Errorf(CodeBadRequest, "acks %q: want leader, majority or all", a)
}

// MaxRequestIDBytes is the longest request ID accepted.
const MaxRequestIDBytes = 128

// Validate checks the operation, its condition and the key and value
// limits.
func (r WriteRequest) Validate() error {
	switch r.Op {
	case "", OpPut, OpDelete, OpCreate, OpPurge, OpCompact:
	default:
		return Errorf(CodeBadRequest, "op %q: want put, delete, create, purge or compact", r.Op)
	}
	if err := r.validateFields(); err != nil {
		return err
	}
	if r.Op == OpCompact {
		return ValidAcks(r.Acks)
	}
	if err := ValidateKey(r.Key); err != nil {
		return err
	}
	if !utf8.ValidString(r.Value) {
		return Errorf(CodeBadRequest, "value is not valid UTF-8")
	}
	if len(r.Value) > MaxValueBytes {
		return Errorf(CodeValueTooLarge, "value is %d bytes, the limit is %d", len(r.Value), MaxValueBytes)
	}
	if err := ValidAcks(r.Acks); err != nil {
		return err
	}
	return validateRequestID(r.RequestID)
}

// validateFields checks which fields the operation allows.
func (r WriteRequest) validateFields() error {
	bad := func(format string, args ...any) error { return Errorf(CodeBadRequest, format, args...) }
	op := r.Op
	if op == "" {
		op = OpPut
	}
	switch {
	case r.IfRevision != nil && op != OpPut && op != OpDelete:
		return bad("if_revision applies to a put or delete, not a %s", op)
	case r.IfRevision != nil && *r.IfRevision > MaxSeq:
		return bad("if_revision %d past %d", *r.IfRevision, uint64(MaxSeq))
	case !hasValue(op) && r.Value != "":
		return bad("a %s has no value", op)
	case r.Prefix && op != OpDelete:
		return bad("prefix applies to a delete, not a %s", op)
	case r.Prefix && r.IfRevision != nil:
		return bad("a delete by prefix takes no if_revision")
	case r.TTLMS != 0 && op != OpPut && op != OpCreate:
		return bad("ttl_ms applies to a put or create, not a %s", op)
	case r.TTLMS < 0 || r.TTLMS > MaxTTLMS:
		return bad("ttl_ms %d: want 1 to %d", r.TTLMS, int64(MaxTTLMS))
	case (r.Revision != 0 || r.AgeMS != 0) && op != OpCompact:
		return bad("revision and age_ms apply to a compact, not a %s", op)
	case op == OpCompact && r.Key != "":
		return bad("a compact has no key")
	case op == OpCompact && (r.Revision == 0) == (r.AgeMS == 0):
		return bad("a compact names one of revision or age_ms")
	case r.Revision > MaxSeq || r.AgeMS < 0:
		return bad("revision %d or age_ms %d out of range", r.Revision, r.AgeMS)
	}
	return nil
}

func validateRequestID(id string) error {
	if len(id) > MaxRequestIDBytes {
		return Errorf(CodeBadRequest, "request_id is %d bytes, the limit is %d", len(id), MaxRequestIDBytes)
	}
	if !utf8.ValidString(id) {
		return Errorf(CodeBadRequest, "request_id is not valid UTF-8")
	}
	for _, r := range id {
		if unicode.IsControl(r) {
			return Errorf(CodeBadRequest, "request_id has a control character %U", r)
		}
	}
	return nil
}

// WriteReply is the success reply to a write:
// {"ok":true,"key":"a","revision":12,"epoch":3,"leader":"n1"}, and for a
// delete {"ok":true,"op":"delete","key":"a","deleted":true,"revision":13,...}.
type WriteReply struct {
	OK bool `json:"ok"`
	// Op is set for a delete or create (a put leaves it out).
	Op  string `json:"op,omitempty"`
	Key string `json:"key"`
	// Deleted says a delete removed the key (at Revision). A delete of a
	// key that does not exist applies nothing: Deleted is false and
	// Revision is the leader's revision when it found the key absent.
	// Likewise for a purge, a delete by prefix (of no key) and a compact
	// to a revision already compacted.
	Deleted bool `json:"deleted,omitempty"`
	// Count is how many keys a delete by prefix removed.
	Count int `json:"count,omitempty"`
	// Compacted is the revision a compact dropped history below.
	Compacted uint64 `json:"compacted,omitempty"`
	// Expires is the deadline a ttl_ms put set, in Unix milliseconds of
	// the leader's clock.
	Expires  int64  `json:"expires,omitempty"`
	Revision uint64 `json:"revision"`
	Epoch    uint64 `json:"epoch"`
	Leader   string `json:"leader"`
	// Duplicate is true when the request ID was applied before: Revision
	// and Epoch are those of the first time.
	Duplicate bool `json:"duplicate,omitempty"`
	// Acks is the acknowledgement level the write was held to; Confirmed
	// is how many servers (the leader included) confirmed it, of Members
	// registered when it was applied. Both are set for majority and all.
	Acks      string `json:"acks,omitempty"`
	Confirmed int    `json:"confirmed,omitempty"`
	Members   int    `json:"members,omitempty"`
}

// Ack is a replica's confirmation, on Subjects.Ack, that it applied the
// put (Epoch, Seq), or with From every update of Epoch from From to Seq
// (one ack for a batch).
type Ack struct {
	Node  string `json:"node"`
	Epoch uint64 `json:"epoch"`
	Seq   uint64 `json:"seq"`
	From  uint64 `json:"from,omitempty"`
}

// Validate checks the fields the leader relies on.
func (a Ack) Validate() error {
	if err := ValidNodeID(a.Node); err != nil {
		return Errorf(CodeBadRequest, "ack: %v", err)
	}
	if a.Epoch == 0 || a.Seq == 0 {
		return Errorf(CodeBadRequest, "ack without epoch or seq")
	}
	if a.Epoch > MaxSeq || a.Seq > MaxSeq {
		return Errorf(CodeBadRequest, "ack epoch %d or seq %d past %d", a.Epoch, a.Seq, uint64(MaxSeq))
	}
	if a.From != 0 && (a.From > a.Seq || a.Seq-a.From >= MaxBatchUpdates) {
		return Errorf(CodeBadRequest, "ack of seq %d to %d (at most %d at once)", a.From, a.Seq, MaxBatchUpdates)
	}
	return nil
}

// ReadRequest is the body of a request on Subjects.NodeRead: {"key":"a"}.
type ReadRequest struct {
	Key string `json:"key"`
	// Consistency is ConsistencyLocal (the default: this node's copy, even
	// if stale), ConsistencyLeader (answered by the leader at its current
	// epoch, while it holds its lease) or ConsistencyMinRevision (this
	// node's copy once it has applied MinRevision).
	Consistency string `json:"consistency,omitempty"`
	// MinRevision is the revision a min_revision read waits for, e.g. the
	// revision of the client's own last write.
	MinRevision uint64 `json:"min_revision,omitempty"`
	// WaitMS bounds a min_revision read's wait, in milliseconds (default
	// DefaultReadWaitMS, at most MaxReadWaitMS); past it the answer is a
	// "stale" error.
	WaitMS int `json:"wait_ms,omitempty"`
	// Revision, if set, reads the key as it was at that revision, from
	// this node's history (with local or min_revision consistency). A
	// node that does not hold it answers CodeCompacted, CodeFuture, or
	// CodeStale if its copy missed updates.
	Revision uint64 `json:"revision,omitempty"`
}

// Read consistency levels.
const (
	ConsistencyLocal       = "local"
	ConsistencyLeader      = "leader"
	ConsistencyMinRevision = "min_revision"
)

// Limits of a min_revision read's wait.
const (
	DefaultReadWaitMS = 1000
	MaxReadWaitMS     = 30000
)

// Validate checks the key and the consistency fields.
func (r ReadRequest) Validate() error {
	if err := ValidateKey(r.Key); err != nil {
		return err
	}
	switch r.Consistency {
	case "", ConsistencyLocal, ConsistencyLeader:
		if r.MinRevision != 0 {
			return Errorf(CodeBadRequest, "min_revision needs consistency %q", ConsistencyMinRevision)
		}
	case ConsistencyMinRevision:
		if r.MinRevision == 0 {
			return Errorf(CodeBadRequest, "consistency min_revision needs min_revision > 0")
		}
	default:
		return Errorf(CodeBadRequest, "consistency %q: want local, leader or min_revision", r.Consistency)
	}
	if r.WaitMS < 0 || r.WaitMS > MaxReadWaitMS {
		return Errorf(CodeBadRequest, "wait_ms %d: want 0 to %d", r.WaitMS, MaxReadWaitMS)
	}
	switch {
	case r.Revision > MaxSeq:
		return Errorf(CodeBadRequest, "revision %d past %d", r.Revision, uint64(MaxSeq))
	case r.Revision != 0 && r.Consistency == ConsistencyLeader:
		return Errorf(CodeBadRequest, "a read at a revision is answered from a node's history: use local or min_revision consistency")
	}
	return nil
}

// ReadReply is a node's answer from its own copy. A missing key has
// Found false and no value (the "empty" answer).
type ReadReply struct {
	Found    bool   `json:"found"`
	Key      string `json:"key"`
	Value    string `json:"value,omitempty"`
	Revision uint64 `json:"revision,omitempty"`
	Node     string `json:"node"`
	Role     string `json:"role"`
	Epoch    uint64 `json:"epoch"`
	// Stale says the answering copy knows it missed updates (a restarted
	// or lagging server): its answer may be out of date.
	Stale bool `json:"stale,omitempty"`
	// Expires is the key's expiry deadline in Unix milliseconds of the
	// leader's clock (0: none).
	Expires int64 `json:"expires,omitempty"`
	// AtRevision echoes the revision of a read at a revision.
	AtRevision uint64 `json:"at_revision,omitempty"`
}

// Status is a node's report of itself on Subjects.NodeStatus.
type Status struct {
	Node       string `json:"node"`
	Role       string `json:"role"`
	Epoch      uint64 `json:"epoch"`
	Leader     string `json:"leader"`
	AppliedSeq uint64 `json:"applied_seq"`
	Keys       int    `json:"keys"`
	Stale      bool   `json:"stale"`
	Gaps       uint64 `json:"gaps"`

	// AppliedRevision is the highest revision whose update this copy
	// applied itself (or received whole from the leader in a catch-up),
	// 0 for one that applied none since it started. AppliedSeq is instead
	// its place in the replication stream: a copy that missed updates (a
	// restarted one, Stale) is placed at the leader's revision it learned,
	// more than it holds.
	AppliedRevision uint64 `json:"applied_revision"`
	// Members are the IDs registered in the election in ZooKeeper as this
	// node last saw them, sorted: the servers of the cluster, each of
	// which should answer its status subject.
	Members []string `json:"members,omitempty"`

	// DroppedOldEpoch counts replication messages refused because they
	// came from an epoch older than the highest known (a deposed leader).
	DroppedOldEpoch uint64 `json:"dropped_old_epoch"`
	// LastApplied is when this node last applied an update from the
	// replication subject, in Unix nanoseconds (0: never).
	LastApplied int64 `json:"last_applied,omitempty"`
	// CatchingUp is true while a catch-up (--catch-up) runs.
	CatchingUp bool `json:"catching_up,omitempty"`
	// PublishedMessages and PublishedUpdates count the replication
	// messages this node published while leading and the updates they
	// carried: their ratio is the mean batch size.
	PublishedMessages uint64 `json:"published_messages,omitempty"`
	PublishedUpdates  uint64 `json:"published_updates,omitempty"`
	ZooKeeper         string `json:"zookeeper"`
	NATS              string `json:"nats"`
	// ZooKeeperCutOffMS and NATSCutOffMS are how long this node has been
	// unable to reach ZooKeeper (no usable session) and NATS, in
	// milliseconds (0 while connected).
	ZooKeeperCutOffMS int64  `json:"zookeeper_cut_off_ms,omitempty"`
	NATSCutOffMS      int64  `json:"nats_cut_off_ms,omitempty"`
	HTTP              string `json:"http,omitempty"`
	Znode             string `json:"znode,omitempty"`

	// HTTPWarning warns that the HTTP API is open to the network without
	// authentication ("" when it is not).
	HTTPWarning string `json:"http_warning,omitempty"`

	// Cluster is the cluster id from the cluster record in ZooKeeper.
	Cluster string `json:"cluster,omitempty"`
	// RecordRevision is the cluster record's lower bound on the highest
	// revision the cluster acknowledged, as this node last read it.
	RecordRevision uint64 `json:"record_revision"`
	// RecordReserved is the cluster record's reserved revision: no
	// revision above it was ever acknowledged.
	RecordReserved uint64 `json:"record_reserved,omitempty"`
	// BehindRecord is how many revisions this copy holds less than
	// RecordRevision (a restarted or lagging copy).
	BehindRecord uint64 `json:"behind_record,omitempty"`
	// LostRevisions is how many revisions this node started its epoch
	// past without holding them (it missed them, or the record says they
	// may have been acknowledged): acknowledged writes among them are
	// lost, for example by a restart of every server.
	LostRevisions uint64 `json:"lost_revisions,omitempty"`
	// RecordProblem says what is wrong with the cluster record, if
	// anything (e.g. ZooKeeper holds another cluster's).
	RecordProblem string `json:"record_problem,omitempty"`
	// Rejected* count server messages dropped because they carried no
	// signature or one that does not verify; Foreign* those naming
	// another cluster, whose id ForeignCluster gives while it is recent.
	RejectedUnsigned uint64 `json:"rejected_unsigned,omitempty"`
	RejectedForged   uint64 `json:"rejected_forged,omitempty"`
	ForeignMessages  uint64 `json:"foreign_messages,omitempty"`
	ForeignCluster   string `json:"foreign_cluster,omitempty"`
	// Diverged counts updates that claimed an (epoch, revision) this copy
	// already holds with other content.
	Diverged uint64 `json:"diverged,omitempty"`
	// Ready is what /readyz answers; NotReady says why not ("; "
	// between reasons).
	Ready    bool   `json:"ready"`
	NotReady string `json:"not_ready,omitempty"`

	// HistoryFrom is the oldest revision this copy answers a read at a
	// revision for; ReplayFrom the oldest a watch may start from.
	// HistoryKeys counts the keys with versions kept beyond the current
	// one (deleted keys included), ExpiringKeys those with a time to live.
	HistoryFrom  uint64 `json:"history_from"`
	ReplayFrom   uint64 `json:"replay_from"`
	HistoryKeys  int    `json:"history_keys"`
	ExpiringKeys int    `json:"expiring_keys"`

	// Budgets are the node's bounded request budgets, each with its slots
	// in use and its rejections.
	Budgets Budgets `json:"budgets,omitzero"`

	// HeldRevision is the revision up to which this copy holds every
	// update with no hole (below AppliedSeq when a gap was skipped).
	HeldRevision uint64 `json:"held_revision"`
	// HeldEpoch is the epoch that wrote the update at HeldRevision here (0:
	// not known, as after a copy of the leader's store).
	HeldEpoch uint64 `json:"held_epoch,omitempty"`
	// Data is the node's data directory, when it has one.
	Data *DataStatus `json:"data,omitempty"`
}

// DataStatus describes a node's data directory.
type DataStatus struct {
	// Fsync is when the log is fsynced: always, interval or never.
	Fsync string `json:"fsync"`
	// Bytes is the size of the snapshot and the log.
	Bytes int64 `json:"bytes"`
	// LogRecords is how many records the log holds past the snapshot.
	LogRecords int64 `json:"log_records"`
	// Fsyncs counts the log's fsyncs; LastFsyncUS is the latest one's
	// duration in microseconds.
	Fsyncs      uint64 `json:"fsyncs"`
	LastFsyncUS int64  `json:"last_fsync_us"`
	// Snapshots counts the snapshots written since the start; LastSnapshot
	// is when the latest was (Unix nanoseconds, 0: none yet).
	Snapshots    uint64 `json:"snapshots"`
	LastSnapshot int64  `json:"last_snapshot,omitempty"`
	// Loaded says the start found data in the directory.
	Loaded bool `json:"loaded"`
	// Failed says the log refused a record: the node takes no writes.
	Failed bool `json:"failed,omitempty"`
}

// Update kinds on the replication subject.
const (
	// KindPut is an applied write.
	KindPut = "put"
	// KindDelete is an applied delete: a tombstone that removes Key at
	// revision Seq (no value). It counts in the stream like a put. With
	// Prefix it removes every key beginning with Key; Expired marks the
	// leader's delete of a key whose time to live passed.
	KindDelete = "delete"
	// KindPurge removes Key and its history at revision Seq.
	KindPurge = "purge"
	// KindCompact drops history below revision Compact, at revision Seq.
	KindCompact = "compact"
	// KindEpoch marks the start of a leader's epoch; Seq is the leader's
	// revision when it took over, so the next put has Seq+1.
	KindEpoch = "epoch"
	// KindHeartbeat is the leader's periodic word that it still leads
	// Epoch at revision Seq, so a replica that lost the last updates of a
	// quiet stream learns it, and another cluster on the same subjects is
	// noticed even without writes.
	KindHeartbeat = "heartbeat"
)

// MaxSeq bounds epochs and sequence numbers on the wire: 2^53, the
// largest integer every JSON implementation holds exactly. Nothing near
// it is reached by a real cluster; a message past it is refused, so no
// counter can wrap.
const MaxSeq = 1 << 53

// Update is one message on Subjects.Replication. Within an epoch, puts
// and deletes carry contiguous Seq numbers; Seq equals the store revision the write
// created on the leader.
type Update struct {
	Kind   string `json:"kind"`
	Epoch  uint64 `json:"epoch"`
	Seq    uint64 `json:"seq"`
	Key    string `json:"key,omitempty"`
	Value  string `json:"value,omitempty"`
	Leader string `json:"leader"`
	// Time is the leader's wall clock at publish, in Unix nanoseconds.
	Time int64 `json:"time"`
	// RequestID is the client's request ID of the write, if any.
	RequestID string `json:"request_id,omitempty"`
	// Ack asks every replica to confirm this put on Subjects.Ack.
	Ack bool `json:"ack,omitempty"`
	// Prefix and Expired qualify a delete (see KindDelete).
	Prefix  bool `json:"prefix,omitempty"`
	Expired bool `json:"expired,omitempty"`
	// Expires is a put's expiry deadline, in Unix nanoseconds of the
	// leader's clock (0: none).
	Expires int64 `json:"expires,omitempty"`
	// Compact is a compact's revision: history below it is dropped.
	Compact uint64 `json:"compact,omitempty"`
}

// Validate checks the fields a replica relies on.
func (u Update) Validate() error {
	switch u.Kind {
	case KindPut, KindDelete, KindPurge:
		if err := ValidateKey(u.Key); err != nil {
			return err
		}
		if u.Seq == 0 {
			return Errorf(CodeBadRequest, "%s without seq", u.Kind)
		}
		if u.Kind != KindPut && (u.Value != "" || u.Expires != 0) {
			return Errorf(CodeBadRequest, "%s with a value or deadline", u.Kind)
		}
		if u.Kind != KindDelete && (u.Prefix || u.Expired) {
			return Errorf(CodeBadRequest, "%s with prefix or expired", u.Kind)
		}
		if u.Compact != 0 || u.Expires < 0 {
			return Errorf(CodeBadRequest, "%s with compact %d or deadline %d", u.Kind, u.Compact, u.Expires)
		}
	case KindCompact:
		if u.Seq == 0 || u.Compact == 0 || u.Compact >= u.Seq || u.Key != "" || u.Value != "" {
			return Errorf(CodeBadRequest, "compact to %d at seq %d with key %q", u.Compact, u.Seq, u.Key)
		}
	case KindEpoch, KindHeartbeat:
	default:
		return Errorf(CodeBadRequest, "unknown update kind %q", u.Kind)
	}
	if u.Epoch == 0 {
		return Errorf(CodeBadRequest, "update without epoch")
	}
	if u.Epoch > MaxSeq || u.Seq > MaxSeq {
		return Errorf(CodeBadRequest, "epoch %d or seq %d past %d", u.Epoch, u.Seq, uint64(MaxSeq))
	}
	if len(u.Key) > MaxKeyBytes {
		return Errorf(CodeInvalidKey, "key is %d bytes, the limit is %d", len(u.Key), MaxKeyBytes)
	}
	if len(u.Value) > MaxValueBytes {
		return Errorf(CodeValueTooLarge, "value is %d bytes, the limit is %d", len(u.Value), MaxValueBytes)
	}
	if u.Leader != "" && ValidNodeID(u.Leader) != nil {
		return Errorf(CodeBadRequest, "leader %q is not a node id", u.Leader)
	}
	return validateRequestID(u.RequestID)
}

// ValidateKey checks that key is 1 to MaxKeyBytes bytes of valid UTF-8
// without control characters.
func ValidateKey(key string) error {
	if key == "" {
		return Errorf(CodeInvalidKey, "key is empty")
	}
	return validateKeyText("key", key)
}

// ValidatePrefix checks that prefix could begin a key: at most
// MaxKeyBytes bytes of valid UTF-8 without control characters ("" is
// allowed and matches every key).
func ValidatePrefix(prefix string) error { return validateKeyText("prefix", prefix) }

func validateKeyText(what, s string) error {
	switch {
	case len(s) > MaxKeyBytes:
		return Errorf(CodeInvalidKey, "%s is %d bytes, the limit is %d", what, len(s), MaxKeyBytes)
	case !utf8.ValidString(s):
		return Errorf(CodeInvalidKey, "%s is not valid UTF-8", what)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return Errorf(CodeInvalidKey, "%s has a control character %U", what, r)
		}
	}
	return nil
}

// Decode strictly decodes one JSON object from data into v: unknown fields,
// trailing data, invalid UTF-8 and oversized bodies are bad_request errors.
// When v points to a struct, field names must match its json names exactly
// (case-sensitive), appear once and not be null, and every field without
// omitempty must be present; each of these is a bad_request naming the
// field. If v has a Validate method, its error is returned as well.
func Decode(data []byte, v any) error {
	if len(data) > MaxRequestBytes {
		return Errorf(CodeBadRequest, "body is %d bytes, the limit is %d", len(data), MaxRequestBytes)
	}
	if !utf8.Valid(data) {
		return Errorf(CodeBadRequest, "body is not valid UTF-8")
	}
	fs := fieldsOf(v)
	if err := decodeJSON(data, v, fs); err != nil {
		return err
	}
	if fs != nil {
		seen, err := checkFields(data, fs)
		if err != nil {
			return streamFirst(data, v, fs, err)
		}
		if p, ok := v.(interface{ checkPresent(presence) error }); ok {
			if err := p.checkPresent(presence{fs, seen}); err != nil {
				return err
			}
		}
	}
	if val, ok := v.(interface{ Validate() error }); ok {
		return val.Validate()
	}
	return nil
}

// decodeJSON decodes data, one JSON value, into v. A struct of scalar
// fields (fs.flat) in a plain body is read by decodeFlat, which
// allocates only the strings it returns; another body of such a struct
// is decoded with json.Unmarshal, which needs no stream decoder, reader
// or buffer copy. Either way checkFields, which runs next, refuses the
// unknown fields they skip, and a body Unmarshal refuses goes through
// the stream decoder, so it gets the same error as always. Other types
// take the stream decoder, which refuses unknown fields at every depth.
func decodeJSON(data []byte, v any, fs *fieldSet) error {
	if fs != nil && fs.flat && (decodeFlat(data, v, fs) || json.Unmarshal(data, v) == nil) {
		return nil
	}
	return decodeStream(data, v)
}

// streamFirst returns err, the verdict of checkFields on a body decodeJSON
// took, unless the stream decoder refuses the body (an unknown field):
// for a flat type decodeJSON did not run it, and its error comes first,
// as for every other type.
func streamFirst(data []byte, v any, fs *fieldSet, err error) error {
	if fs.flat {
		if serr := decodeStream(data, v); serr != nil {
			return serr
		}
	}
	return err
}

// decodeStream decodes data with a stream decoder that refuses unknown
// fields at every depth, and refuses data after the first value.
func decodeStream(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return Errorf(CodeBadRequest, "body is not a valid JSON object: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return Errorf(CodeBadRequest, "body has data after the JSON object")
	}
	return nil
}

// DecodeReply decodes a reply body into v, or returns the *Error it carries.
// Unlike Decode it tolerates unknown fields, so older clients read newer
// servers' replies.
func DecodeReply(data []byte, v any) error {
	var probe struct {
		Error *Error `json:"error"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return fmt.Errorf("decode reply %q: %w", Truncate(data, 80), err)
	}
	if probe.Error != nil {
		return probe.Error
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode reply %q: %w", Truncate(data, 80), err)
	}
	return nil
}

// Encode marshals v; the types of this package always marshal. The
// messages a server encodes for every read, write and replicated update
// (ReadReply, WriteReply, Update) are written without reflection, byte
// for byte as encoding/json writes them.
func Encode(v any) []byte {
	switch m := v.(type) {
	case ReadReply:
		return encodeFast(m)
	case WriteReply:
		return encodeFast(m)
	case Update:
		return encodeFast(m)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return EncodeError(fmt.Errorf("%w: encode %T: %v", ErrInternal, v, err))
	}
	return b
}

// encodeBuffers holds scratch buffers for encodeFast.
var encodeBuffers = sync.Pool{New: func() any { return new([]byte) }}

// maxPooledBuffer bounds the scratch buffers kept for reuse.
const maxPooledBuffer = 64 << 10

// encodeFast writes m into a scratch buffer and returns a copy of exactly
// its size, so a message costs one allocation.
func encodeFast[M interface{ appendJSON([]byte) []byte }](m M) []byte {
	bp := encodeBuffers.Get().(*[]byte)
	b := m.appendJSON((*bp)[:0])
	out := bytes.Clone(b)
	if cap(b) <= maxPooledBuffer {
		*bp = b
		encodeBuffers.Put(bp)
	}
	return out
}

// jsonObject appends the fields of one JSON object as encoding/json
// writes them: in order, strings HTML-escaped, numbers in decimal.
type jsonObject struct{ b []byte }

func (o *jsonObject) name(name string) {
	if len(o.b) == 0 || o.b[len(o.b)-1] != '{' {
		o.b = append(o.b, ',')
	}
	o.b = append(o.b, '"')
	o.b = append(o.b, name...)
	o.b = append(o.b, '"', ':')
}

// str writes a string field; omitEmpty leaves out "".
func (o *jsonObject) str(name, v string, omitEmpty bool) {
	if omitEmpty && v == "" {
		return
	}
	o.name(name)
	o.b = AppendJSONString(o.b, v)
}

// uint writes an unsigned field; omitEmpty leaves out 0.
func (o *jsonObject) uint(name string, v uint64, omitEmpty bool) {
	if omitEmpty && v == 0 {
		return
	}
	o.name(name)
	o.b = strconv.AppendUint(o.b, v, 10)
}

// int writes a signed field; omitEmpty leaves out 0.
func (o *jsonObject) int(name string, v int64, omitEmpty bool) {
	if omitEmpty && v == 0 {
		return
	}
	o.name(name)
	o.b = strconv.AppendInt(o.b, v, 10)
}

// bool writes a boolean field; omitEmpty leaves out false.
func (o *jsonObject) bool(name string, v bool, omitEmpty bool) {
	if omitEmpty && !v {
		return
	}
	o.name(name)
	o.b = strconv.AppendBool(o.b, v)
}

// AppendJSONString appends s as encoding/json writes it (HTML-escaped): a
// string of printable ASCII that needs no escaping directly, any other
// through encoding/json.
func AppendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendJSON appends r as encoding/json writes it (the field order and
// omitempty of its tags).
func (r ReadReply) appendJSON(b []byte) []byte {
	o := jsonObject{append(b, '{')}
	o.bool("found", r.Found, false)
	o.str("key", r.Key, false)
	o.str("value", r.Value, true)
	o.uint("revision", r.Revision, true)
	o.str("node", r.Node, false)
	o.str("role", r.Role, false)
	o.uint("epoch", r.Epoch, false)
	o.bool("stale", r.Stale, true)
	o.int("expires", r.Expires, true)
	o.uint("at_revision", r.AtRevision, true)
	return append(o.b, '}')
}

// appendJSON appends r as encoding/json writes it.
func (r WriteReply) appendJSON(b []byte) []byte {
	o := jsonObject{append(b, '{')}
	o.bool("ok", r.OK, false)
	o.str("op", r.Op, true)
	o.str("key", r.Key, false)
	o.bool("deleted", r.Deleted, true)
	o.int("count", int64(r.Count), true)
	o.uint("compacted", r.Compacted, true)
	o.int("expires", r.Expires, true)
	o.uint("revision", r.Revision, false)
	o.uint("epoch", r.Epoch, false)
	o.str("leader", r.Leader, false)
	o.bool("duplicate", r.Duplicate, true)
	o.str("acks", r.Acks, true)
	o.int("confirmed", int64(r.Confirmed), true)
	o.int("members", int64(r.Members), true)
	return append(o.b, '}')
}

// appendJSON appends u as encoding/json writes it.
func (u Update) appendJSON(b []byte) []byte {
	o := jsonObject{append(b, '{')}
	o.str("kind", u.Kind, false)
	o.uint("epoch", u.Epoch, false)
	o.uint("seq", u.Seq, false)
	o.str("key", u.Key, true)
	o.str("value", u.Value, true)
	o.str("leader", u.Leader, false)
	o.int("time", u.Time, false)
	o.str("request_id", u.RequestID, true)
	o.bool("ack", u.Ack, true)
	o.bool("prefix", u.Prefix, true)
	o.bool("expired", u.Expired, true)
	o.int("expires", u.Expires, true)
	o.uint("compact", u.Compact, true)
	return append(o.b, '}')
}

// Truncate is b as a string, cut to its first n bytes (with "..."), for
// error messages that quote a body.
func Truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "..."
}

// SnapshotRequest asks the leader, on Subjects.LeaderSnapshot, for one page
// of its store: keys after After, in key order, at most Limit of them.
type SnapshotRequest struct {
	After string `json:"after,omitempty"`
	Limit int    `json:"limit,omitempty"`
	// Requests asks for a page of the leader's window of recent request
	// IDs instead (IDs after After, in order), so a copy that catches up
	// also applies a retried request ID once.
	Requests bool `json:"requests,omitempty"`
}

// Validate checks the page size.
func (r SnapshotRequest) Validate() error {
	if r.Limit < 0 || r.Limit > MaxSnapshotPage {
		return Errorf(CodeBadRequest, "limit %d: want 0 to %d", r.Limit, MaxSnapshotPage)
	}
	return nil
}

// MaxSnapshotPage is the most entries one snapshot page holds; pages are
// also cut at about SnapshotPageBytes of keys and values.
const (
	MaxSnapshotPage   = 4096
	SnapshotPageBytes = 256 << 10
)

// SnapshotEntry is one key of a snapshot page.
type SnapshotEntry struct {
	Key      string `json:"key"`
	Value    string `json:"value"`
	Revision uint64 `json:"revision"`
	// Expires is the key's deadline in Unix nanoseconds (0: none).
	Expires int64 `json:"expires,omitempty"`
}

// SnapshotReply is one page of the leader's store, with the leader's epoch
// and revision when the page was taken. More says whether keys remain.
type SnapshotReply struct {
	Epoch    uint64          `json:"epoch"`
	Revision uint64          `json:"revision"`
	Entries  []SnapshotEntry `json:"entries"`
	More     bool            `json:"more"`
	Leader   string          `json:"leader"`
	// Requests is a page of the request-ID window, when asked for.
	Requests []RequestEntry `json:"requests,omitempty"`
}

// RequestEntry is one remembered request ID and the write it produced.
type RequestEntry struct {
	ID       string `json:"id"`
	Epoch    uint64 `json:"epoch"`
	Revision uint64 `json:"revision"`
	Key      string `json:"key"`
	Value    string `json:"value"`
	// Delete marks the write as a delete.
	Delete bool `json:"delete,omitempty"`
}

// NewRequestID returns a random request ID for one write.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}
