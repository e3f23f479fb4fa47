package election

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/go-zookeeper/zk"
)

// ErrRecordMismatch means ZooKeeper holds the record of another cluster
// than the one this server belongs to.
var ErrRecordMismatch = errors.New("ZooKeeper holds another cluster's record")

// ClusterKeyBytes is the size of the cluster key a new record gets.
const ClusterKeyBytes = 32

// Record is the durable record of one cluster, a persistent znode next to
// the election (Config.RecordPath). The first server of a cluster creates
// it; every server reads it before it takes part in the election.
//
// Key signs every message only servers may send, so the znode is readable
// only with the cluster's ZooKeeper credentials when digest auth is on.
// Epoch, Revision and Acked only grow. A leader reserves revisions in
// Revision before it acknowledges them, so Revision is an upper bound on
// every revision the cluster ever acknowledged, even after every server
// restarted empty; it raises Acked lazily, so Acked is a lower bound.
type Record struct {
	ClusterID string `json:"cluster_id"`
	Key       []byte `json:"key"`
	// Epoch is the highest epoch that took writes, as far as recorded.
	Epoch uint64 `json:"epoch"`
	// EpochBase is added to every epoch derived from an election znode's
	// sequence number. It is 0 until the record is written again into an
	// emptied ZooKeeper, whose sequence numbers start from 0 again.
	EpochBase uint64 `json:"epoch_base,omitempty"`
	// Revision is reserved: no revision above it was ever acknowledged.
	Revision uint64 `json:"revision"`
	// Acked is a lower bound on the highest acknowledged revision, and
	// AckedEpoch the epoch that acknowledged it (0: not recorded).
	Acked      uint64 `json:"acked"`
	AckedEpoch uint64 `json:"acked_epoch,omitempty"`
	Created    int64  `json:"created"`
	Updated    int64  `json:"updated"`
	// Recreated counts the times a server found the record missing (an
	// empty or replaced ZooKeeper) and wrote it again from what it knew.
	Recreated int `json:"recreated,omitempty"`
}

// newRecord returns a record for a new cluster, with a random id and key.
func newRecord() (Record, error) {
	id := make([]byte, 8)
	key := make([]byte, ClusterKeyBytes)
	if _, err := rand.Read(id); err != nil {
		return Record{}, fmt.Errorf("cluster id: %w", err)
	}
	if _, err := rand.Read(key); err != nil {
		return Record{}, fmt.Errorf("cluster key: %w", err)
	}
	now := time.Now().UnixNano()
	return Record{ClusterID: hex.EncodeToString(id), Key: key, Created: now, Updated: now}, nil
}

// Record returns the cluster record, waiting until the Elector has read or
// created it once, or ctx ends.
func (e *Elector) Record(ctx context.Context) (Record, error) {
	select {
	case <-e.recordReady:
	case <-ctx.Done():
		return Record{}, fmt.Errorf("waiting for the cluster record: %w", ctx.Err())
	case <-e.done:
		return Record{}, fmt.Errorf("waiting for the cluster record: %w", ErrClosed)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.record, nil
}

// LastRecord returns the newest copy of the record this Elector read or
// wrote, and whether it has one.
func (e *Elector) LastRecord() (Record, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.record, e.record.ClusterID != ""
}

// RecordProblem describes why the record could not be used ("" if it
// could), for status output.
func (e *Elector) RecordProblem() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.recordProblem
}

// ReadRecord reads the record from ZooKeeper now.
func (e *Elector) ReadRecord(ctx context.Context) (Record, error) {
	conn, err := e.connForCall(ctx)
	if err != nil {
		return Record{}, err
	}
	r, _, err := e.getRecord(conn)
	return r, err
}

// RaiseRecord raises the record's epoch, reserved revision and
// acknowledged revision to at least epoch, reserved and acked, and returns
// the record as written. It never lowers them.
func (e *Elector) RaiseRecord(ctx context.Context, epoch, reserved, acked uint64) (Record, error) {
	conn, err := e.connForCall(ctx)
	if err != nil {
		return Record{}, err
	}
	for ctx.Err() == nil {
		r, version, err := e.getRecord(conn)
		if err != nil {
			return Record{}, err
		}
		if r.Epoch >= epoch && r.Revision >= reserved && r.Acked >= acked {
			e.setRecord(r, "")
			return r, nil
		}
		if acked > r.Acked && epoch > 0 {
			r.AckedEpoch = epoch
		}
		r.Epoch, r.Revision, r.Acked = max(r.Epoch, epoch), max(r.Revision, reserved, acked), max(r.Acked, acked)
		r.Updated = time.Now().UnixNano()
		data, err := json.Marshal(r)
		if err != nil {
			return Record{}, fmt.Errorf("encode cluster record: %w", err)
		}
		_, err = conn.Set(e.cfg.RecordPath, data, version)
		if errors.Is(err, zk.ErrBadVersion) {
			continue // raised meanwhile by another server: read again
		}
		if err != nil {
			return Record{}, fmt.Errorf("raise cluster record: %w", err)
		}
		e.setRecord(r, "")
		return r, nil
	}
	return Record{}, ctx.Err()
}

// connForCall returns the connection for a call made outside Run's loop.
func (e *Elector) connForCall(ctx context.Context) (*zk.Conn, error) {
	if err := e.waitConnected(ctx); err != nil {
		return nil, fmt.Errorf("cluster record: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.conn == nil {
		return nil, fmt.Errorf("cluster record: %w", ErrClosed)
	}
	return e.conn, nil
}

// getRecord reads and decodes the record and its version.
func (e *Elector) getRecord(conn *zk.Conn) (Record, int32, error) {
	data, stat, err := conn.Get(e.cfg.RecordPath)
	if err != nil {
		return Record{}, 0, fmt.Errorf("read cluster record %s: %w", e.cfg.RecordPath, err)
	}
	var r Record
	if err := json.Unmarshal(data, &r); err != nil {
		return Record{}, 0, fmt.Errorf("cluster record %s is not valid: %w", e.cfg.RecordPath, err)
	}
	if r.ClusterID == "" || len(r.Key) < ClusterKeyBytes {
		return Record{}, 0, fmt.Errorf("cluster record %s has no cluster id or a short key", e.cfg.RecordPath)
	}
	return r, stat.Version, nil
}

// setRecord stores the newest copy of the record and the problem with it.
func (e *Elector) setRecord(r Record, problem string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if r.ClusterID != "" {
		e.record = r
	}
	e.recordProblem = problem
	if r.ClusterID != "" && problem == "" {
		e.recordOnce.Do(func() { close(e.recordReady) })
	}
}

// ensureRecord reads the record, or creates it when ZooKeeper has none: a
// new cluster's, or, if this server already belongs to a cluster (the
// ZooKeeper it knew was emptied or replaced), its own cluster's, with the
// epoch and revision it knows. A record of another cluster is an error.
func (e *Elector) ensureRecord(conn *zk.Conn) error {
	known, hasKnown := e.LastRecord()
	r, _, err := e.getRecord(conn)
	switch {
	case err == nil && hasKnown && r.ClusterID != known.ClusterID:
		problem := fmt.Sprintf("%s names cluster %s, this server belongs to cluster %s", e.cfg.RecordPath, r.ClusterID, known.ClusterID)
		e.setRecord(Record{}, problem)
		return fmt.Errorf("%w: %s", ErrRecordMismatch, problem)
	case err == nil && e.cfg.Auth != "":
		// The record holds the cluster key: with digest auth nobody else
		// may even read it.
		if err := e.restrictACL(conn, e.cfg.RecordPath, zk.PermAll, e.cfg.recordACL(), "anyone could read the cluster key"); err != nil {
			e.setRecord(Record{}, err.Error())
			return err
		}
		e.setRecord(r, "")
		return nil
	case err == nil:
		e.setRecord(r, "")
		return nil
	case !errors.Is(err, zk.ErrNoNode):
		e.setRecord(Record{}, err.Error())
		return err
	}
	if hasKnown {
		r = known
		r.Recreated++
		r.Updated = time.Now().UnixNano()
		if e.cfg.Known != nil {
			epoch, rev := e.cfg.Known()
			r.Epoch, r.Revision = max(r.Epoch, epoch), max(r.Revision, rev)
		}
		// The new ZooKeeper numbers election znodes from 0 again: start
		// epochs above every one this cluster used.
		r.EpochBase = r.Epoch
	} else if r, err = newRecord(); err != nil {
		return err
	}
	data, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode cluster record: %w", err)
	}
	if parent := parentOf(e.cfg.RecordPath); parent != "/" {
		if err := e.ensurePath(conn, parent); err != nil {
			return err
		}
	}
	_, err = conn.Create(e.cfg.RecordPath, data, 0, e.cfg.recordACL())
	if errors.Is(err, zk.ErrNodeExists) {
		return e.ensureRecord(conn) // another server was first: use theirs
	}
	if err != nil {
		return fmt.Errorf("create cluster record %s: %w", e.cfg.RecordPath, err)
	}
	if hasKnown {
		e.log.Error("the cluster record was missing from ZooKeeper (emptied or replaced?): wrote it again from this server's knowledge",
			"path", e.cfg.RecordPath, "cluster", r.ClusterID, "epoch", r.Epoch, "revision", r.Revision)
	} else {
		e.log.Info("created a new cluster", "path", e.cfg.RecordPath, "cluster", r.ClusterID)
	}
	e.setRecord(r, "")
	return nil
}

// epochOfLocked is the epoch of a leader whose znode has sequence number
// seq, counted from the record's EpochBase. e.mu must be held.
func (e *Elector) epochOfLocked(seq int64) uint64 { return e.record.EpochBase + EpochOf(seq) }

// epochOf is epochOfLocked for callers that do not hold e.mu.
func (e *Elector) epochOf(seq int64) uint64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.epochOfLocked(seq)
}

// checkRecord runs ensureRecord once per session: at the start and after
// every expiry, which is when a ZooKeeper may have been emptied or
// replaced.
func (e *Elector) checkRecord(conn *zk.Conn, session int64) error {
	e.mu.Lock()
	checked := e.recordSession == session
	e.mu.Unlock()
	if checked {
		return nil
	}
	if err := e.ensureRecord(conn); err != nil {
		return err
	}
	e.mu.Lock()
	e.recordSession = session
	e.mu.Unlock()
	return nil
}
