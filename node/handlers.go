package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"zkv/bus"
	"zkv/store"
)

// handleRead answers a read from the local copy, even if stale.
func (s *Server) handleRead(req micro.Request) {
	var r bus.ReadRequest
	if err := bus.Decode(req.Data(), &r); err != nil {
		respondError(req, err)
		return
	}
	_ = req.Respond(bus.Encode(s.read(r.Key)))
}

func (s *Server) read(key string) bus.ReadReply {
	role, epoch, _ := s.role()
	e, ok := s.store.Get(key)
	return bus.ReadReply{Found: ok, Key: key, Value: e.Value, Revision: e.Revision, Node: s.cfg.ID, Role: role, Epoch: epoch}
}

// handleStatus answers with the node's status; the body is ignored.
func (s *Server) handleStatus(req micro.Request) {
	_ = req.Respond(bus.Encode(s.Status()))
}

// handleLeaderWrite serves the leader subject. It may run after the
// service was stopped (micro drains queued requests), so the write path
// checks the lease and epoch itself.
func (s *Server) handleLeaderWrite(req micro.Request) {
	var w bus.WriteRequest
	if err := bus.Decode(req.Data(), &w); err != nil {
		respondError(req, err)
		return
	}
	reply, err := s.applyWrite(w)
	if err != nil {
		respondError(req, err)
		return
	}
	_ = req.Respond(bus.Encode(reply))
}

// handleNodeWrite serves this node's own write subject: the leader applies
// the write, a follower forwards it to the leader subject and relays the
// reply. Forwarding runs on its own goroutine so slow elections do not hold
// up the endpoint; at most MaxForwards run at once.
func (s *Server) handleNodeWrite(req micro.Request) {
	var w bus.WriteRequest
	if err := bus.Decode(req.Data(), &w); err != nil {
		respondError(req, err)
		return
	}
	if s.isLeader() {
		reply, err := s.applyWrite(w)
		if err != nil {
			respondError(req, err)
			return
		}
		_ = req.Respond(bus.Encode(reply))
		return
	}
	select {
	case s.forwards <- struct{}{}:
	default:
		respondError(req, bus.Errorf(bus.CodeUnavailable, "node %s has %d forwarded writes in flight", s.cfg.ID, cap(s.forwards)))
		return
	}
	data := req.Data()
	started := s.goFunc(func() {
		defer func() { <-s.forwards }()
		reply := s.forward(s.runCtx, data)
		_ = req.Respond(reply)
	})
	if !started {
		<-s.forwards
		respondError(req, bus.Errorf(bus.CodeUnavailable, "node %s is shutting down", s.cfg.ID))
	}
}

func (s *Server) isLeader() bool { return s.leaderEpoch.Load() != 0 }

// Write is the write path for callers in this process (the HTTP API): the
// leader applies w, a follower forwards it. It returns the leader's reply.
func (s *Server) Write(ctx context.Context, w bus.WriteRequest) (bus.WriteReply, error) {
	if err := w.Validate(); err != nil {
		return bus.WriteReply{}, err
	}
	if s.isLeader() {
		return s.applyWrite(w)
	}
	var reply bus.WriteReply
	err := bus.DecodeReply(s.forward(ctx, bus.Encode(w)), &reply)
	return reply, err
}

// applyWrite is the leader's write: check the lease and epoch, apply,
// replicate, check the lease again, acknowledge. writeMu is held
// throughout so updates are published in revision order; nc.Publish only
// buffers, so no network round trip happens under the lock.
func (s *Server) applyWrite(w bus.WriteRequest) (bus.WriteReply, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	epoch := s.leaderEpoch.Load()
	if epoch == 0 || !s.elect.LeaseValid() {
		return bus.WriteReply{}, s.notLeader(epoch)
	}
	u, dup, err := s.store.PutOnce(epoch, w.Key, w.Value, w.RequestID)
	if err != nil {
		// A higher epoch is known: we are a deposed leader.
		return bus.WriteReply{}, bus.Errorf(bus.CodeNotLeader, "node %s was leader of epoch %d, a newer epoch %d exists", s.cfg.ID, epoch, s.store.Epoch())
	}
	if dup {
		if u.Key != w.Key || u.Value != w.Value {
			return bus.WriteReply{}, bus.Errorf(bus.CodeBadRequest, "request_id %q was used for another write (key %q at revision %d)", w.RequestID, u.Key, u.Seq)
		}
		return bus.WriteReply{OK: true, Key: u.Key, Revision: u.Seq, Epoch: u.Epoch, Leader: s.cfg.ID, Duplicate: true}, nil
	}
	msg := bus.Update{Kind: bus.KindPut, Epoch: u.Epoch, Seq: u.Seq, Key: u.Key, Value: u.Value, Leader: s.cfg.ID, Time: time.Now().UnixNano(), RequestID: u.RequestID}
	if err := s.nc.Publish(s.subj.Replication(), bus.Encode(msg)); err != nil {
		s.log.Error("write applied but not replicated", "epoch", epoch, "seq", u.Seq, "key", u.Key, "err", err)
		return bus.WriteReply{}, bus.Errorf(bus.CodeUnavailable, "applied on the leader at revision %d but not replicated: %v", u.Seq, err)
	}
	if !s.elect.LeaseValid() {
		s.log.Warn("lease lost while writing: not acknowledging", "epoch", epoch, "seq", u.Seq, "key", u.Key)
		return bus.WriteReply{}, bus.Errorf(bus.CodeNotLeader, "node %s lost its ZooKeeper lease during the write (revision %d may or may not survive)", s.cfg.ID, u.Seq)
	}
	return bus.WriteReply{OK: true, Key: u.Key, Revision: u.Seq, Epoch: epoch, Leader: s.cfg.ID}, nil
}

func (s *Server) notLeader(epoch uint64) error {
	s.mu.Lock()
	leader := s.term.Leader.ID
	s.mu.Unlock()
	switch {
	case epoch != 0:
		return bus.Errorf(bus.CodeNotLeader, "node %s leads epoch %d but cannot confirm its ZooKeeper session", s.cfg.ID, epoch)
	case leader != "" && leader != s.cfg.ID:
		return bus.Errorf(bus.CodeNotLeader, "node %s is not the leader; the leader is %s", s.cfg.ID, leader)
	}
	return bus.Errorf(bus.CodeNotLeader, "node %s is not the leader", s.cfg.ID)
}

// forward sends an encoded write to the leader subject and returns the
// reply body to relay. While no leader answers (an election), or the one
// that answers says it is no longer leader, it retries until
// ForwardTimeout; then it returns a no_leader error body.
func (s *Server) forward(ctx context.Context, data []byte) []byte {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ForwardTimeout)
	defer cancel()
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = 20*time.Millisecond, 500*time.Millisecond, 0
	b.Reset()
	var last error
	for {
		msg, err := s.nc.RequestWithContext(ctx, s.subj.Write(), data)
		if err == nil {
			var reply bus.WriteReply
			rerr := bus.DecodeReply(msg.Data, &reply)
			if !errors.Is(rerr, bus.ErrNotLeader) {
				return msg.Data
			}
			last = rerr
		} else {
			last = err
			if !errors.Is(err, nats.ErrNoResponders) && ctx.Err() == nil {
				return bus.EncodeError(bus.Errorf(bus.CodeUnavailable, "forward to %s: %v", s.subj.Write(), err))
			}
		}
		select {
		case <-ctx.Done():
			return bus.EncodeError(bus.Errorf(bus.CodeNoLeader, "no leader answered on %s within %s (last: %v)", s.subj.Write(), s.cfg.ForwardTimeout, last))
		case <-time.After(b.NextBackOff()):
		}
	}
}

// respondError answers req with the JSON error body and micro's error
// headers (the HTTP status as the code, the wire code and message as the
// description).
func respondError(req micro.Request, err error) {
	e := bus.AsError(err)
	_ = req.Error(fmt.Sprint(e.HTTPStatus()), e.Error(), bus.EncodeError(e))
}

// logApplyErr logs what a replication step reported.
func (s *Server) logApplyErr(err error, from string, epoch, seq uint64) {
	var gap *store.GapError
	switch {
	case err == nil:
	case errors.As(err, &gap):
		s.log.Warn("replication gap: updates missed", "from", from, "epoch", gap.Epoch, "missed_from", gap.From, "missed_to", gap.To, "missed", gap.To-gap.From+1)
	case errors.Is(err, store.ErrOldEpoch):
		s.droppedOld.Add(1)
		s.log.Warn("dropped update from an old epoch", "from", from, "epoch", epoch, "seq", seq, "known_epoch", s.store.Epoch())
	case errors.Is(err, store.ErrDuplicate):
		s.log.Debug("duplicate update ignored", "epoch", epoch, "seq", seq)
	case errors.Is(err, store.ErrDiverged):
		s.log.Warn("this copy holds writes the new leader lacks", "from", from, "epoch", epoch, "seq", seq, "err", err)
	default:
		s.log.Error("replication", "from", from, "err", err)
	}
}
