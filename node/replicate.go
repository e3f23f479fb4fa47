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

// onAck records a replica's confirmation of a put. Only a confirmation
// signed by a member of this cluster counts.
func (s *Server) onAck(msg *nats.Msg) {
	if s.verify(msg, bus.DomainBus, "ack") != nil {
		return
	}
	var a bus.Ack
	if err := bus.Decode(msg.Data, &a); err != nil {
		s.rareLog("malformed-ack", func() { s.log.Warn("dropped malformed ack", "err", err) })
		return
	}
	if a.Epoch == s.leaderEpoch.Load() {
		s.acks.confirm(ackKey{a.Epoch, a.Seq}, a.Node)
	}
}

// onUpdate applies one replication message. NATS calls it serially, in the
// order the leader published. A message not signed by a member of this
// cluster is dropped before it is even decoded: it is never applied,
// never confirmed and never deposes anyone.
func (s *Server) onUpdate(msg *nats.Msg) {
	if s.verify(msg, bus.DomainBus, "replication") != nil {
		return
	}
	var u bus.Update
	if err := bus.Decode(msg.Data, &u); err != nil {
		s.malformed.Add(1)
		s.rareLog("malformed-update", func() { s.log.Warn("dropped malformed replication message", "err", err) })
		return
	}
	mine := s.leaderEpoch.Load()
	if mine != 0 {
		switch {
		case u.Epoch == mine && u.Leader == s.cfg.ID:
			return // our own update, applied already
		case u.Epoch > mine:
			s.stepDown(fmt.Sprintf("saw epoch %d from %s on the bus", u.Epoch, u.Leader))
		default:
			s.droppedOld.Add(1)
			s.rareLog("leader-old-epoch", func() {
				s.log.Warn("leader dropped an update not its own", "epoch", u.Epoch, "seq", u.Seq, "from", u.Leader, "my_epoch", mine)
			})
			return
		}
	}
	if s.bufferIfCatchingUp(u) {
		return
	}
	s.apply(u)
}

// apply applies one decoded update to the store, confirms it if asked,
// and starts a catch-up if it reveals a gap.
func (s *Server) apply(u bus.Update) {
	var err error
	switch u.Kind {
	case bus.KindEpoch:
		err = s.store.BeginEpoch(u.Epoch, u.Seq)
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
		if err == nil || !isDrop(err) {
			s.lastApply.Store(time.Now().UnixNano())
			s.notifyApplied()
		}
		// Confirm only what this copy holds: exactly this update at this
		// place, applied now or before (a retransmission).
		if u.Ack && s.store.Holds(su) {
			ack := bus.Ack{Node: s.cfg.ID, Epoch: u.Epoch, Seq: u.Seq}
			if perr := s.publish(s.subj.Ack(), bus.Encode(ack)); perr != nil {
				s.log.Warn("cannot confirm update", "epoch", u.Epoch, "seq", u.Seq, "err", perr)
			}
		}
	}
	s.logApplyErr(err, u.Leader, u.Epoch, u.Seq)
	if errors.Is(err, store.ErrGap) || errors.Is(err, store.ErrDiverged) {
		s.startCatchUp("replication gap")
	}
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
