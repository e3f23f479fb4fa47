package node

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/election"
)

// ClusterRecord is the cluster record kept in ZooKeeper, as joining the
// cluster, the leader's reservations and status use it.
type ClusterRecord interface {
	// Record returns the cluster record once it has been read or created.
	Record(ctx context.Context) (election.Record, error)
	// LastRecord is the newest copy of the record known, if any.
	LastRecord() (election.Record, bool)
	// ReadRecord reads the record from ZooKeeper now.
	ReadRecord(ctx context.Context) (election.Record, error)
	// RaiseRecord raises the record's epoch, reserved and acknowledged
	// revisions, never lowering them, and returns the record as written.
	RaiseRecord(ctx context.Context, epoch, reserved, acked uint64) (election.Record, error)
	// RecordProblem says what is wrong with the record ("" if nothing).
	RecordProblem() string
}

// joinCluster waits for the cluster record and makes this server's signer
// from it.
func (s *Server) joinCluster(ctx context.Context) error {
	rec, err := s.records.Record(ctx)
	if err != nil {
		return err
	}
	sg, err := bus.NewSigner(rec.ClusterID, rec.Key)
	if err != nil {
		return fmt.Errorf("cluster record: %w", err)
	}
	if s.disk != nil {
		// A data directory holds one cluster's data.
		if err := s.disk.dir.Join(rec.ClusterID); err != nil {
			return err
		}
	}
	s.trust.signer.Store(sg)
	s.log.Info("joined cluster", "cluster", rec.ClusterID, "record_epoch", rec.Epoch, "record_revision", rec.Revision)
	return nil
}

// noteAcked records that this leader acknowledged revision rev in epoch.
func (s *Server) noteAcked(epoch, rev uint64) {
	if raiseTo(&s.ackedRev, rev) {
		raiseTo(&s.ackedEpoch, epoch)
	}
}

// raiseTo raises v to x unless it is at least x already, and reports
// whether it did.
func raiseTo(v *atomic.Uint64, x uint64) bool {
	for {
		cur := v.Load()
		if x <= cur {
			return false
		}
		if v.CompareAndSwap(cur, x) {
			return true
		}
	}
}

// recordAcked raises the cluster record's acknowledged revision to rev
// (of epoch) before a write with a data directory is acknowledged with
// acks=majority or all: then a server that restarts without it, even
// first and alone after every other crashed, knows it is behind and does
// not lead. Concurrent calls share one ZooKeeper write: each raises to the
// highest revision waiting when its turn comes.
func (s *Server) recordAcked(ctx context.Context, epoch, rev uint64) error {
	r := &s.ackRec
	raiseTo(&r.pending, rev)
	if r.recorded.Load() >= rev {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.recorded.Load() >= rev {
		return nil
	}
	target := r.pending.Load()
	if _, err := s.records.RaiseRecord(ctx, epoch, 0, target); err != nil {
		return err
	}
	raiseTo(&r.recorded, target)
	return nil
}

// ackRecorder is the state of recordAcked.
type ackRecorder struct {
	mu       sync.Mutex    // one raise at a time
	pending  atomic.Uint64 // the highest confirmed revision waiting
	recorded atomic.Uint64 // the highest revision recorded
}

// recordLoop keeps the cluster record fresh: while this server leads it
// raises the record to the highest revision it acknowledged; every server
// re-reads it now and then, so status can say how far behind it a copy is.
func (s *Server) recordLoop() {
	t := time.NewTicker(s.cfg.RecordInterval)
	defer t.Stop()
	var recorded uint64
	reads := 0
	for {
		select {
		case <-s.runCtx.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(s.runCtx, s.cfg.RecordInterval)
		if epoch := s.leaderEpoch.Load(); epoch != 0 {
			if acked := s.ackedRev.Load(); acked > recorded {
				if _, err := s.records.RaiseRecord(ctx, s.ackedEpoch.Load(), 0, acked); err != nil {
					s.log.Warn("cannot raise the cluster record", "revision", acked, "err", err)
				} else {
					recorded = acked
				}
			}
		} else if reads++; reads%5 == 0 && s.zk.Connected() {
			if _, err := s.records.ReadRecord(ctx); err != nil {
				s.log.Debug("cannot read the cluster record", "err", err)
			}
		}
		cancel()
	}
}

// freshRecord reads the record as fresh as it can get it quickly, falling
// back to the last copy read.
func (s *Server) freshRecord() election.Record {
	ctx, cancel := context.WithTimeout(s.runCtx, s.cfg.SessionTimeout/4)
	defer cancel()
	rec, err := s.records.ReadRecord(ctx)
	if err != nil {
		s.log.Warn("cannot read the cluster record: using the last copy", "err", err)
		rec, _ = s.records.LastRecord()
	}
	return rec
}

// reserveAhead is how many revisions a leader reserves in the cluster
// record at a time; it reserves the next batch when half of one is left,
// in the background, so writes seldom wait for ZooKeeper.
const reserveAhead = 1024

// ensureReserved makes sure the cluster record reserves revision rev
// before this leader acknowledges it, so that after a restart of every
// server the next leader starts above every acknowledged revision. It
// waits for ZooKeeper only when the background reservation fell behind.
func (s *Server) ensureReserved(ctx context.Context, epoch, rev uint64) error {
	if r := s.reserved.Load(); rev <= r {
		if r-rev < reserveAhead/2 && s.reserveMu.TryLock() {
			s.reserveMu.Unlock()
			s.goFunc(func() { _ = s.reserve(s.runCtx, epoch, rev) })
		}
		return nil
	}
	return s.reserve(ctx, epoch, rev)
}

// reserve raises the record's reserved revision to rev+reserveAhead unless
// it already covers rev+reserveAhead/2.
func (s *Server) reserve(ctx context.Context, epoch, rev uint64) error {
	s.reserveMu.Lock()
	defer s.reserveMu.Unlock()
	if s.reserved.Load() >= rev+reserveAhead/2 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SessionTimeout/2)
	defer cancel()
	rec, err := s.records.RaiseRecord(ctx, epoch, rev+reserveAhead, 0)
	if err != nil {
		return fmt.Errorf("reserve revisions up to %d in the cluster record: %w", rev+reserveAhead, err)
	}
	for {
		cur := s.reserved.Load()
		if rec.Revision <= cur || s.reserved.CompareAndSwap(cur, rec.Revision) {
			return nil
		}
	}
}

// heartbeatLoop publishes, while this server leads, the epoch and revision
// it is at, in stream order, so a replica that lost the last updates of a
// quiet stream finds out, and a second cluster on these subjects is
// noticed without writes.
func (s *Server) heartbeatLoop() {
	s.every(s.cfg.HeartbeatInterval, func() {
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
		if epoch := s.leaderEpoch.Load(); epoch != 0 && s.serving.Load() {
			hb := bus.Update{Kind: bus.KindHeartbeat, Epoch: epoch, Seq: s.store.Revision(), Leader: s.cfg.ID, Time: time.Now().UnixNano()}
			s.replicate(hb, func(err error) {
				if err != nil {
					s.log.Debug("heartbeat not sent", "err", err)
				}
			})
		}
	})
}

// every calls f every d until the server stops.
func (s *Server) every(d time.Duration, f func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	for {
		select {
		case <-s.runCtx.Done():
			return
		case <-t.C:
			f()
		}
	}
}
