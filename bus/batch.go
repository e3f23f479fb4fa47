package bus

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// KindBatch is a replication message that carries several updates of one
// epoch and leader, with contiguous revisions, in order: a leader under
// load publishes one message for many writes, and a replica verifies and
// applies them at once. Epoch markers and heartbeats are never batched.
const KindBatch = "batch"

// Bounds of a batch. A leader starts a new message before either is
// passed; an update larger than MaxBatchBytes travels alone.
const (
	// MaxBatchUpdates is the most updates one batch carries.
	MaxBatchUpdates = 512
	// MaxBatchBytes is the most bytes of encoded updates one batch carries,
	// well under NATS's default 1 MB payload limit.
	MaxBatchBytes = 256 << 10
)

// Batch is a replication message of KindBatch. Every update has the
// batch's Epoch and Leader, is a put, delete, purge or compact, and has
// the Seq after the one before it.
type Batch struct {
	Kind    string   `json:"kind"`
	Epoch   uint64   `json:"epoch"`
	Leader  string   `json:"leader"`
	Updates []Update `json:"updates"`
}

// Validate checks what a replica relies on: every update valid on its own,
// of the batch's epoch and leader, and contiguous.
func (b Batch) Validate() error {
	if b.Kind != KindBatch {
		return Errorf(CodeBadRequest, "batch of kind %q", b.Kind)
	}
	if n := len(b.Updates); n == 0 || n > MaxBatchUpdates {
		return Errorf(CodeBadRequest, "batch of %d updates (1 to %d)", n, MaxBatchUpdates)
	}
	if err := ValidNodeID(b.Leader); err != nil {
		return Errorf(CodeBadRequest, "batch: %v", err)
	}
	for i, u := range b.Updates {
		if err := u.Validate(); err != nil {
			return err
		}
		switch {
		case u.Kind == KindEpoch || u.Kind == KindHeartbeat:
			return Errorf(CodeBadRequest, "batch holds a %s", u.Kind)
		case u.Epoch != b.Epoch || u.Leader != b.Leader:
			return Errorf(CodeBadRequest, "batch of epoch %d from %s holds an update of epoch %d from %s", b.Epoch, b.Leader, u.Epoch, u.Leader)
		case i > 0 && u.Seq != b.Updates[i-1].Seq+1:
			return Errorf(CodeBadRequest, "batch is not contiguous: seq %d after %d", u.Seq, b.Updates[i-1].Seq)
		}
	}
	return nil
}

// batchHead is how every batch's JSON begins (EncodeBatch writes Kind
// first), so a replica tells a batch from a single update without
// decoding twice.
var batchHead = []byte(`{"kind":"` + KindBatch + `"`)

// EncodeBatch joins updates, each already encoded with Encode, into one
// batch message of epoch and leader, without encoding them again.
func EncodeBatch(epoch uint64, leader string, encoded [][]byte) []byte {
	n := 64 + len(leader)
	for _, e := range encoded {
		n += len(e) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, batchHead...)
	b = append(b, `,"epoch":`...)
	b = strconv.AppendUint(b, epoch, 10)
	b = append(b, `,"leader":`...)
	b = AppendJSONString(b, leader)
	b = append(b, `,"updates":[`...)
	for i, e := range encoded {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, e...)
	}
	return append(b, "]}"...)
}

// DecodeReplication strictly decodes a message of the replication subject:
// a single update or a batch. It returns the updates in order.
func DecodeReplication(data []byte) ([]Update, error) {
	if bytes.HasPrefix(data, batchHead) {
		return decodeBatch(data)
	}
	var u Update
	if err := Decode(data, &u); err != nil {
		return nil, err
	}
	return []Update{u}, nil
}

// rawBatch is a Batch whose updates are not decoded yet, so that each is
// decoded as strictly as a single update is.
type rawBatch struct {
	Kind    string            `json:"kind"`
	Epoch   uint64            `json:"epoch"`
	Leader  string            `json:"leader"`
	Updates []json.RawMessage `json:"updates"`
}

// decodeBatch strictly decodes a batch: the envelope, then each update
// with Decode (field names exact and once, required fields present), then
// the batch's own rules.
func decodeBatch(data []byte) ([]Update, error) {
	var raw rawBatch
	if err := Decode(data, &raw); err != nil {
		return nil, err
	}
	if n := len(raw.Updates); n > MaxBatchUpdates {
		return nil, Errorf(CodeBadRequest, "batch of %d updates (1 to %d)", n, MaxBatchUpdates)
	}
	b := Batch{Kind: raw.Kind, Epoch: raw.Epoch, Leader: raw.Leader, Updates: make([]Update, len(raw.Updates))}
	for i, r := range raw.Updates {
		if err := Decode(r, &b.Updates[i]); err != nil {
			return nil, fmt.Errorf("update %d of a batch: %w", i, err)
		}
	}
	if err := b.Validate(); err != nil {
		return nil, err
	}
	return b.Updates, nil
}
