package node

import (
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/store"
)

// replicationPending bounds the updates buffered for the replication
// subscription; past it NATS reports a slow consumer and drops, which the
// sequence numbers then reveal as a gap.
const replicationPending = 1 << 20

// subscribeReplication subscribes to the replication subject with a plain
// subscription (every node must receive every update), and to the ack
// subject, which only matters while this node leads.
func (s *Server) subscribeReplication() error {
	sub, err := s.nc.Subscribe(s.subj.Replication(), s.onUpdate)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", s.subj.Replication(), err)
	}
	if err := sub.SetPendingLimits(replicationPending, 256<<20); err != nil {
		return fmt.Errorf("subscribe %s: %w", s.subj.Replication(), err)
	}
	if _, err := s.nc.Subscribe(s.subj.Ack(), s.onAck); err != nil {
		return fmt.Errorf("subscribe %s: %w", s.subj.Ack(), err)
	}
	return nil
}

// onAck records a replica's confirmation of a put, or of a run of
// updates (one ack for a batch). Only a confirmation signed by a member of
// this cluster counts.
func (s *Server) onAck(msg *nats.Msg) {
	if s.verify(msg, bus.DomainBus, "ack") != nil {
		return
	}
	var a bus.Ack
	if err := bus.Decode(msg.Data, &a); err != nil {
		s.rareLog("malformed-ack", func() { s.log.Warn("dropped malformed ack", "err", err) })
		return
	}
	if a.Epoch != s.leaderEpoch.Load() {
		return
	}
	from := a.From
	if from == 0 {
		from = a.Seq
	}
	s.acks.confirmRange(a.Epoch, from, a.Seq, a.Node)
}

// onUpdate applies one replication message: a single update or a batch.
// NATS calls it serially, in the order the leader published. A message
// not signed by a member of this cluster is dropped before it is even
// decoded: it is never applied, never confirmed and never deposes anyone.
func (s *Server) onUpdate(msg *nats.Msg) {
	if s.verify(msg, bus.DomainBus, "replication") != nil {
		return
	}
	ups, err := bus.DecodeReplication(msg.Data)
	if err != nil {
		s.malformed.Add(1)
		s.rareLog("malformed-update", func() { s.log.Warn("dropped malformed replication message", "err", err) })
		return
	}
	var acks ackRuns
	for _, u := range ups {
		if !s.admit(u) {
			continue
		}
		if s.bufferIfCatchingUp(u) {
			continue
		}
		if s.applyOne(u) {
			acks.add(u)
		} else {
			acks.cut()
		}
	}
	s.sendAcks(acks.finish())
}

// sendAcks confirms runs once this copy's log holds them: with a data
// directory, a confirmation waits for the log (durable.go).
func (s *Server) sendAcks(runs []bus.Ack) {
	if len(runs) == 0 || !s.diskOK() {
		return
	}
	s.whenDurable(s.lastLogged(), func(err error) {
		if err != nil {
			return
		}
		for _, a := range runs {
			s.sendAck(a)
		}
	})(nil)
}

// admit decides, on a leader, what becomes of an update on the bus: its
// own are applied already, a newer epoch deposes it, an older one is
// dropped. A follower admits every update.
func (s *Server) admit(u bus.Update) bool {
	mine := s.leaderEpoch.Load()
	if mine == 0 {
		return true
	}
	switch {
	case u.Epoch == mine && u.Leader == s.cfg.ID:
		return false // our own update, applied already
	case u.Epoch > mine:
		s.stepDown(fmt.Sprintf("saw epoch %d from %s on the bus", u.Epoch, u.Leader))
		return true
	}
	s.droppedOld.Add(1)
	s.rareLog("leader-old-epoch", func() {
		s.log.Warn("leader dropped an update not its own", "epoch", u.Epoch, "seq", u.Seq, "from", u.Leader, "my_epoch", mine)
	})
	return false
}

// ackRuns gathers the confirmations of one replication message: runs of
// contiguous updates this copy holds that include one asking for an ack,
// each sent as one Ack.
type ackRuns struct {
	runs []bus.Ack
	open bool // the last run may still grow
	want bool // the last run holds an update that asked for an ack
}

// add extends the open run with u (held by this copy), or starts one.
func (r *ackRuns) add(u bus.Update) {
	n := len(r.runs)
	if r.open && r.runs[n-1].Epoch == u.Epoch && r.runs[n-1].Seq+1 == u.Seq {
		r.runs[n-1].Seq = u.Seq
	} else {
		r.cut()
		r.runs = append(r.runs, bus.Ack{Epoch: u.Epoch, From: u.Seq, Seq: u.Seq})
		r.open, r.want = true, false
	}
	r.want = r.want || u.Ack
}

// cut closes the open run, dropping it if nothing in it asked for an ack.
func (r *ackRuns) cut() {
	if r.open && !r.want {
		r.runs = r.runs[:len(r.runs)-1]
	}
	r.open, r.want = false, false
}

// finish closes the last run and returns the runs to send: only those
// that hold an update asking for an ack.
func (r *ackRuns) finish() []bus.Ack {
	r.cut()
	return r.runs
}

// sendAck confirms the run a on the ack subject.
func (s *Server) sendAck(a bus.Ack) {
	a.Node = s.cfg.ID
	if a.From == a.Seq {
		a.From = 0
	}
	if err := s.publish(s.subj.Ack(), bus.Encode(a)); err != nil {
		s.log.Warn("cannot confirm updates", "epoch", a.Epoch, "seq", a.Seq, "err", err)
	}
}

// apply applies one decoded update and confirms it if asked (the path of
// updates buffered during a catch-up).
func (s *Server) apply(u bus.Update) {
	if s.applyOne(u) && u.Ack {
		s.sendAcks([]bus.Ack{{Epoch: u.Epoch, Seq: u.Seq}})
	}
}

// applyOne applies one decoded update to the store and starts a catch-up
// if it reveals a gap. It reports whether this copy holds the update now
// (applied now or before): only then may it be confirmed.
func (s *Server) applyOne(u bus.Update) bool {
	var err error
	held, logIt, hole := false, false, false
	if d := s.disk; d != nil {
		// The change and its log record are one step (durable.go).
		d.mu.Lock()
		defer func() {
			rec := []byte(nil)
			switch {
			case hole:
				rec = logHole(true)
			case logIt:
				rec = logApply(u)
			}
			if rec != nil {
				if _, lerr := d.appendLocked(rec); lerr != nil {
					s.diskFailed(lerr)
				}
			}
			d.mu.Unlock()
		}()
	}
	switch u.Kind {
	case bus.KindEpoch:
		err = s.store.BeginEpoch(u.Epoch, u.Seq)
		logIt = !errors.Is(err, store.ErrOldEpoch)
		if err == nil {
			s.log.Info("following new epoch", "leader", u.Leader, "epoch", u.Epoch, "seq", u.Seq)
		}
	case bus.KindHeartbeat:
		// Like a repeated marker: a revision past ours means the tail of
		// the stream was lost; one not past it means this copy is as far
		// as the leader.
		err = s.store.BeginEpoch(u.Epoch, u.Seq)
		if err == nil {
			s.compared.Store(true)
		}
	case bus.KindPut, bus.KindDelete, bus.KindPurge, bus.KindCompact:
		su := storeUpdate(u)
		err = s.store.Apply(su)
		logIt = err == nil || !isDrop(err) && !errors.Is(err, store.ErrDiverged)
		// A refused update that another claims the place of: the copy
		// is not the leader's any more, which only this record tells a
		// replay.
		hole = errors.Is(err, store.ErrDiverged)
		if err == nil || !isDrop(err) {
			s.metrics.appliedAt(u.Time)
			s.lastApply.Store(time.Now().UnixNano())
			s.notifyApplied()
		}
		// Confirm only what this copy holds: exactly this update at this
		// place, applied now or before (a retransmission).
		held = s.store.Holds(su)
	}
	s.logApplyErr(err, u.Leader, u.Epoch, u.Seq)
	if errors.Is(err, store.ErrGap) || errors.Is(err, store.ErrDiverged) {
		s.startCatchUp("replication gap")
	}
	return held
}

// storeUpdate is the store's form of a put, delete, purge or compact
// from the bus.
func storeUpdate(u bus.Update) store.Update {
	return store.Update{Epoch: u.Epoch, Seq: u.Seq, Key: u.Key, Value: u.Value, RequestID: u.RequestID,
		Delete: u.Kind == bus.KindDelete || u.Kind == bus.KindPurge, Purge: u.Kind == bus.KindPurge,
		Prefix: u.Prefix, Expired: u.Expired, Expires: u.Expires, Time: u.Time, Compact: u.Compact, Leader: u.Leader}
}

// isDrop reports whether err means the update was not applied.
func isDrop(err error) bool {
	return err != nil && (errors.Is(err, store.ErrOldEpoch) || errors.Is(err, store.ErrDuplicate) || errors.Is(err, store.ErrBadUpdate))
}
