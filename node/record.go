package node

import (
	"context"
	"fmt"
	"time"

	"zkv/bus"
)

// joinCluster waits for the cluster record and makes this server's signer
// from it.
func (s *Server) joinCluster(ctx context.Context) error {
	rec, err := s.elect.Record(ctx)
	if err != nil {
		return err
	}
	sg, err := bus.NewSigner(rec.ClusterID, rec.Key)
	if err != nil {
		return fmt.Errorf("cluster record: %w", err)
	}
	s.trust.signer.Store(sg)
	s.log.Info("joined cluster", "cluster", rec.ClusterID, "record_epoch", rec.Epoch, "record_revision", rec.Revision)
	return nil
}

// noteAcked records that this leader acknowledged revision rev.
func (s *Server) noteAcked(rev uint64) {
	for {
		cur := s.ackedRev.Load()
		if rev <= cur || s.ackedRev.CompareAndSwap(cur, rev) {
			return
		}
	}
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
				if err := s.elect.RaiseRecord(ctx, epoch, acked); err != nil {
					s.log.Warn("cannot raise the cluster record", "revision", acked, "err", err)
				} else {
					recorded = acked
				}
			}
		} else if reads++; reads%5 == 0 && s.elect.Connected() {
			if _, err := s.elect.ReadRecord(ctx); err != nil {
				s.log.Debug("cannot read the cluster record", "err", err)
			}
		}
		cancel()
	}
}

// freshRecordRevision reads the record's revision as fresh as it can get
// it quickly, falling back to the last copy read.
func (s *Server) freshRecordRevision() uint64 {
	ctx, cancel := context.WithTimeout(s.runCtx, s.cfg.SessionTimeout/4)
	defer cancel()
	rec, err := s.elect.ReadRecord(ctx)
	if err != nil {
		s.log.Warn("cannot read the cluster record before leading: using the last copy", "err", err)
		last, _ := s.elect.LastRecord()
		return last.Revision
	}
	return rec.Revision
}

// heartbeatLoop publishes, while this server leads, the epoch and revision
// it is at, in stream order, so a replica that lost the last updates of a
// quiet stream finds out, and a second cluster on these subjects is
// noticed without writes.
func (s *Server) heartbeatLoop() {
	t := time.NewTicker(s.cfg.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-s.runCtx.Done():
			return
		case <-t.C:
		}
		s.writeMu.Lock()
		if epoch := s.leaderEpoch.Load(); epoch != 0 && s.serving.Load() {
			hb := bus.Update{Kind: bus.KindHeartbeat, Epoch: epoch, Seq: s.store.Revision(), Leader: s.cfg.ID, Time: time.Now().UnixNano()}
			if err := s.publish(s.subj.Replication(), bus.Encode(hb)); err != nil {
				s.log.Debug("heartbeat not sent", "err", err)
			}
		}
		s.writeMu.Unlock()
	}
}
