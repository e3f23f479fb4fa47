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

// handleRead answers a read: from the local copy (even if stale), from
// the leader, or from the local copy once it has applied a revision. A
// read that waits runs on its own goroutine.
func (s *Server) handleRead(req micro.Request) {
	var r bus.ReadRequest
	if err := bus.Decode(req.Data(), &r); err != nil {
		respondError(req, err)
		return
	}
	switch r.Consistency {
	case bus.ConsistencyLeader:
		if s.serving.Load() {
			reply, err := s.leaderRead(r.Key)
			s.answerRead(req, reply, err)
			return
		}
		data := req.Data()
		if !s.spawnLimited(func() { _ = req.Respond(s.forwardRead(s.runCtx, data)) }) {
			respondError(req, bus.Errorf(bus.CodeUnavailable, "node %s is busy or shutting down", s.cfg.ID))
		}
	case bus.ConsistencyMinRevision:
		if s.store.Revision() >= r.MinRevision {
			_ = req.Respond(bus.Encode(s.read(r.Key)))
			return
		}
		if !s.spawnLimited(func() {
			reply, err := s.readAtLeast(s.runCtx, r)
			s.answerRead(req, reply, err)
		}) {
			respondError(req, bus.Errorf(bus.CodeUnavailable, "node %s is busy or shutting down", s.cfg.ID))
		}
	default:
		_ = req.Respond(bus.Encode(s.read(r.Key)))
	}
}

// Read is the read path for callers in this process (the HTTP API), with
// the same consistency levels as the read subjects.
func (s *Server) Read(ctx context.Context, r bus.ReadRequest) (bus.ReadReply, error) {
	if err := r.Validate(); err != nil {
		return bus.ReadReply{}, err
	}
	switch r.Consistency {
	case bus.ConsistencyLeader:
		if s.serving.Load() {
			return s.leaderRead(r.Key)
		}
		var reply bus.ReadReply
		err := bus.DecodeReply(s.forwardRead(ctx, bus.Encode(r)), &reply)
		return reply, err
	case bus.ConsistencyMinRevision:
		return s.readAtLeast(ctx, r)
	}
	return s.read(r.Key), nil
}

// handleLeaderRead serves Subjects.LeaderRead on the leader service.
func (s *Server) handleLeaderRead(req micro.Request) {
	var r bus.ReadRequest
	if err := bus.Decode(req.Data(), &r); err != nil {
		respondError(req, err)
		return
	}
	reply, err := s.leaderRead(r.Key)
	s.answerRead(req, reply, err)
}

func (s *Server) answerRead(req micro.Request, r bus.ReadReply, err error) {
	if err != nil {
		respondError(req, err)
		return
	}
	_ = req.Respond(bus.Encode(r))
}

func (s *Server) read(key string) bus.ReadReply {
	role, epoch, _ := s.role()
	e, ok := s.store.Get(key)
	return bus.ReadReply{Found: ok, Key: key, Value: e.Value, Revision: e.Revision, Node: s.cfg.ID, Role: role, Epoch: epoch}
}

// leaderRead answers from the leader's copy while it holds its lease, so
// the answer reflects every write acknowledged before it.
func (s *Server) leaderRead(key string) (bus.ReadReply, error) {
	epoch := s.leaderEpoch.Load()
	if epoch == 0 || !s.serving.Load() || !s.elect.LeaseValid() {
		return bus.ReadReply{}, s.notLeader(epoch)
	}
	r := s.read(key)
	if !s.elect.LeaseValid() || s.leaderEpoch.Load() != epoch {
		return bus.ReadReply{}, s.notLeader(epoch)
	}
	return r, nil
}

// readAtLeast waits until the local copy has applied r.MinRevision, then
// reads; past the wait it answers "stale".
func (s *Server) readAtLeast(ctx context.Context, r bus.ReadRequest) (bus.ReadReply, error) {
	wait := time.Duration(r.WaitMS) * time.Millisecond
	if wait == 0 {
		wait = bus.DefaultReadWaitMS * time.Millisecond
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	for {
		changed := s.applied()
		if s.store.Revision() >= r.MinRevision {
			return s.read(r.Key), nil
		}
		select {
		case <-changed:
		case <-deadline.C:
			return bus.ReadReply{}, bus.Errorf(bus.CodeStale, "node %s has applied up to revision %d, not %d, after %s", s.cfg.ID, s.store.Revision(), r.MinRevision, wait)
		case <-ctx.Done():
			return bus.ReadReply{}, bus.Errorf(bus.CodeUnavailable, "node %s is shutting down", s.cfg.ID)
		}
	}
}

// forwardRead sends a leader read to the leader subject and returns the
// reply body, retrying while no leader answers, for up to ForwardTimeout.
func (s *Server) forwardRead(ctx context.Context, data []byte) []byte {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ForwardTimeout)
	defer cancel()
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = 20*time.Millisecond, 500*time.Millisecond, 0
	b.Reset()
	for {
		msg, err := s.nc.RequestWithContext(ctx, s.subj.LeaderRead(), data)
		if err == nil {
			return msg.Data
		}
		if !errors.Is(err, nats.ErrNoResponders) {
			return bus.EncodeError(bus.Errorf(bus.CodeNoLeader, "leader read on %s: %v", s.subj.LeaderRead(), err))
		}
		select {
		case <-ctx.Done():
			return bus.EncodeError(bus.Errorf(bus.CodeNoLeader, "no leader answered on %s within %s", s.subj.LeaderRead(), s.cfg.ForwardTimeout))
		case <-time.After(b.NextBackOff()):
		}
	}
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
	s.serveWrite(req, w)
}

// serveWrite applies w as leader and answers req. A write that waits for
// replicas' confirmations waits on its own goroutine, so the endpoint goes
// on applying later writes meanwhile.
func (s *Server) serveWrite(req micro.Request, w bus.WriteRequest) {
	reply, wait, err := s.applyWrite(w)
	if err != nil {
		respondError(req, err)
		return
	}
	if wait == nil {
		_ = req.Respond(bus.Encode(reply))
		return
	}
	if !s.spawnLimited(func() {
		reply, err := s.awaitAcks(s.runCtx, reply, wait)
		if err != nil {
			respondError(req, err)
			return
		}
		_ = req.Respond(bus.Encode(reply))
	}) {
		respondError(req, bus.Errorf(bus.CodeUnavailable, "node %s is busy or shutting down; revision %d was applied but not confirmed", s.cfg.ID, reply.Revision))
	}
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
		s.serveWrite(req, w)
		return
	}
	data := req.Data()
	if !s.spawnLimited(func() { _ = req.Respond(s.forward(s.runCtx, data)) }) {
		respondError(req, bus.Errorf(bus.CodeUnavailable, "node %s has %d writes in flight or is shutting down", s.cfg.ID, cap(s.forwards)))
	}
}

// spawnLimited runs f on a server-owned goroutine if fewer than
// MaxForwards such goroutines run and the server is not shutting down.
func (s *Server) spawnLimited(f func()) bool {
	select {
	case s.forwards <- struct{}{}:
	default:
		return false
	}
	if !s.goFunc(func() {
		defer func() { <-s.forwards }()
		f()
	}) {
		<-s.forwards
		return false
	}
	return true
}

func (s *Server) isLeader() bool { return s.leaderEpoch.Load() != 0 }

// Write is the write path for callers in this process (the HTTP API): the
// leader applies w, a follower forwards it. It returns the leader's reply.
func (s *Server) Write(ctx context.Context, w bus.WriteRequest) (bus.WriteReply, error) {
	if err := w.Validate(); err != nil {
		return bus.WriteReply{}, err
	}
	if s.isLeader() {
		reply, wait, err := s.applyWrite(w)
		if err != nil || wait == nil {
			return reply, err
		}
		return s.awaitAcks(ctx, reply, wait)
	}
	var reply bus.WriteReply
	err := bus.DecodeReply(s.forward(ctx, bus.Encode(w)), &reply)
	return reply, err
}

// applyWrite is the leader's write: check the lease and epoch, apply,
// replicate, check the lease again. writeMu is held throughout so updates
// are published in revision order; nc.Publish only buffers, so no network
// round trip happens under the lock. For acks=majority or all it returns
// the wait to pass to awaitAcks before replying.
func (s *Server) applyWrite(w bus.WriteRequest) (bus.WriteReply, *ackWait, error) {
	level := w.Acks
	if level == "" {
		level = s.cfg.Acks
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	epoch := s.leaderEpoch.Load()
	if epoch == 0 || !s.elect.LeaseValid() {
		return bus.WriteReply{}, nil, s.notLeader(epoch)
	}
	u, dup, err := s.store.PutOnce(epoch, w.Key, w.Value, w.RequestID)
	if err != nil {
		// A higher epoch is known: we are a deposed leader.
		return bus.WriteReply{}, nil, bus.Errorf(bus.CodeNotLeader, "node %s was leader of epoch %d, a newer epoch %d exists", s.cfg.ID, epoch, s.store.Epoch())
	}
	reply := bus.WriteReply{OK: true, Key: u.Key, Revision: u.Seq, Epoch: u.Epoch, Leader: s.cfg.ID}
	if dup {
		if u.Key != w.Key || u.Value != w.Value {
			return bus.WriteReply{}, nil, bus.Errorf(bus.CodeBadRequest, "request_id %q was used for another write (key %q at revision %d)", w.RequestID, u.Key, u.Seq)
		}
		reply.Duplicate = true
		if level == bus.AcksLeader {
			return reply, nil, nil
		}
		// A retry waits for (or reports) the first attempt's confirmations.
		if wait := s.acks.get(ackKey{u.Epoch, u.Seq}); wait != nil {
			return reply, wait, nil
		}
		return bus.WriteReply{}, nil, bus.Errorf(bus.CodeTimeout, "request_id %q was applied at revision %d, but whether replicas confirmed it is no longer known", w.RequestID, u.Seq)
	}
	var wait *ackWait
	if level != bus.AcksLeader {
		wait = s.acks.register(ackKey{u.Epoch, u.Seq}, level, s.cfg.ID, s.elect.Members())
	}
	msg := bus.Update{Kind: bus.KindPut, Epoch: u.Epoch, Seq: u.Seq, Key: u.Key, Value: u.Value, Leader: s.cfg.ID,
		Time: time.Now().UnixNano(), RequestID: u.RequestID, Ack: wait != nil}
	if err := s.nc.Publish(s.subj.Replication(), bus.Encode(msg)); err != nil {
		s.log.Error("write applied but not replicated", "epoch", epoch, "seq", u.Seq, "key", u.Key, "err", err)
		return bus.WriteReply{}, nil, bus.Errorf(bus.CodeUnavailable, "applied on the leader at revision %d but not replicated: %v", u.Seq, err)
	}
	if !s.elect.LeaseValid() {
		s.log.Warn("lease lost while writing: not acknowledging", "epoch", epoch, "seq", u.Seq, "key", u.Key)
		return bus.WriteReply{}, nil, bus.Errorf(bus.CodeNotLeader, "node %s lost its ZooKeeper lease during the write (revision %d may or may not survive)", s.cfg.ID, u.Seq)
	}
	return reply, wait, nil
}

// awaitAcks waits until the replicas confirmed the write as its level asks,
// WriteTimeout passes, or ctx ends, then checks the lease once more. An
// acks=all write stops waiting for a replica whose znode is gone.
func (s *Server) awaitAcks(ctx context.Context, reply bus.WriteReply, w *ackWait) (bus.WriteReply, error) {
	timeout := time.NewTimer(s.cfg.WriteTimeout)
	defer timeout.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	reply.Acks, reply.Members = w.level, w.members
wait:
	for {
		select {
		case <-w.done:
			break wait
		case <-tick.C:
			if w.level == bus.AcksAll {
				s.acks.prune(w, s.elect.Members())
			}
		case <-timeout.C:
			break wait
		case <-ctx.Done():
			break wait
		}
	}
	reply.Confirmed = s.acks.confirmed(w)
	select {
	case <-w.done:
	default:
		return bus.WriteReply{}, bus.Errorf(bus.CodeTimeout, "write applied on the leader at revision %d, but only %d of %d servers confirmed it within %s (acks=%s)",
			reply.Revision, reply.Confirmed, reply.Members, s.cfg.WriteTimeout, w.level)
	}
	if !s.elect.LeaseValid() {
		return bus.WriteReply{}, bus.Errorf(bus.CodeNotLeader, "node %s lost its ZooKeeper lease while revision %d was being confirmed", s.cfg.ID, reply.Revision)
	}
	return reply, nil
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
// that answers says it is no longer leader, it retries for up to
// ForwardTimeout; then it returns a no_leader error body. Each attempt may
// wait WriteTimeout more for the leader's answer (replicas' confirmations).
func (s *Server) forward(ctx context.Context, data []byte) []byte {
	giveUp := time.Now().Add(s.cfg.ForwardTimeout)
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = 20*time.Millisecond, 500*time.Millisecond, 0
	b.Reset()
	var last error
	for {
		actx, cancel := context.WithTimeout(ctx, time.Until(giveUp)+s.cfg.WriteTimeout)
		msg, err := s.nc.RequestWithContext(actx, s.subj.Write(), data)
		cancel()
		if err == nil {
			var reply bus.WriteReply
			rerr := bus.DecodeReply(msg.Data, &reply)
			if !errors.Is(rerr, bus.ErrNotLeader) {
				return msg.Data
			}
			last = rerr
		} else {
			last = err
			if !errors.Is(err, nats.ErrNoResponders) {
				return bus.EncodeError(bus.Errorf(bus.CodeUnavailable, "forward to %s: %v", s.subj.Write(), err))
			}
		}
		d := b.NextBackOff()
		if time.Now().Add(d).After(giveUp) {
			return bus.EncodeError(bus.Errorf(bus.CodeNoLeader, "no leader answered on %s within %s (last: %v)", s.subj.Write(), s.cfg.ForwardTimeout, last))
		}
		select {
		case <-ctx.Done():
			return bus.EncodeError(bus.Errorf(bus.CodeUnavailable, "forward to %s: %v", s.subj.Write(), ctx.Err()))
		case <-time.After(d):
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
