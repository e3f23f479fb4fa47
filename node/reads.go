package node

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/internal/retry"
)

// handleRead answers a read: from the local copy (even if stale), from
// the leader, or from the local copy once it has applied a revision. A
// read that waits runs on its own goroutine, in its own budget:
// min_revision waits in waiting_reads, forwarded leader reads in
// leader_reads.
func (s *Server) handleRead(req micro.Request) {
	var r bus.ReadRequest
	if err := bus.Decode(req.Data(), &r); err != nil {
		s.respondError(req, err)
		return
	}
	switch {
	case r.Revision != 0 && r.Consistency != bus.ConsistencyMinRevision:
		reply, err := s.readAt(r.Key, r.Revision)
		s.answerRead(req, reply, err)
		return
	case r.Revision != 0 && s.hasApplied(r.MinRevision):
		reply, err := s.readAt(r.Key, r.Revision)
		s.answerRead(req, reply, err)
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
		if err := s.spawn(s.budgets.leaderReads, func() { s.respond(req, s.forwardRead(s.runCtx, data)) }); err != nil {
			s.respondError(req, err)
		}
	case bus.ConsistencyMinRevision:
		if s.hasApplied(r.MinRevision) {
			reply, err := s.readOne(r)
			s.answerRead(req, reply, err)
			return
		}
		if err := s.spawn(s.budgets.waitingReads, func() {
			reply, err := s.readAtLeast(s.runCtx, r)
			s.answerRead(req, reply, err)
		}); err != nil {
			s.respondError(req, err)
		}
	default:
		s.respond(req, bus.Encode(s.read(r.Key)))
	}
}

// Read is the read path for callers in this process (the HTTP API), with
// the same consistency levels as the read subjects. A read that waits
// blocks on the caller's goroutine, holding a slot of the same budget as
// the bus path (waiting_reads, leader_reads) meanwhile.
func (s *Server) Read(ctx context.Context, r bus.ReadRequest) (bus.ReadReply, error) {
	if err := r.Validate(); err != nil {
		return bus.ReadReply{}, err
	}
	if r.Revision != 0 && (r.Consistency != bus.ConsistencyMinRevision || s.hasApplied(r.MinRevision)) {
		return s.readAt(r.Key, r.Revision)
	}
	switch r.Consistency {
	case bus.ConsistencyLeader:
		if s.serving.Load() {
			return s.leaderRead(r.Key)
		}
		release, err := s.take(s.budgets.leaderReads)
		if err != nil {
			return bus.ReadReply{}, err
		}
		defer release()
		var reply bus.ReadReply
		err = bus.DecodeReply(s.forwardRead(ctx, bus.Encode(r)), &reply)
		return reply, err
	case bus.ConsistencyMinRevision:
		if s.hasApplied(r.MinRevision) {
			return s.readOne(r)
		}
		release, err := s.take(s.budgets.waitingReads)
		if err != nil {
			return bus.ReadReply{}, err
		}
		defer release()
		return s.readAtLeast(ctx, r)
	}
	return s.read(r.Key), nil
}

// handleLeaderRead serves Subjects.LeaderRead on the leader service.
func (s *Server) handleLeaderRead(req micro.Request) {
	var r bus.ReadRequest
	if err := bus.Decode(req.Data(), &r); err != nil {
		s.respondError(req, err)
		return
	}
	reply, err := s.leaderRead(r.Key)
	s.answerRead(req, reply, err)
}

func (s *Server) answerRead(req micro.Request, r bus.ReadReply, err error) {
	if err != nil {
		s.respondError(req, err)
		return
	}
	s.respond(req, bus.Encode(r))
}

func (s *Server) read(key string) bus.ReadReply {
	role, epoch, _ := s.role()
	e, ok := s.store.Get(key)
	return bus.ReadReply{Found: ok, Key: key, Value: e.Value, Revision: e.Revision, Node: s.cfg.ID, Role: role, Epoch: epoch,
		Stale: s.stale(role), Expires: unixMS(e.Expires)}
}

// readOne reads the local copy once it may: at r.Revision if set, else
// the current value.
func (s *Server) readOne(r bus.ReadRequest) (bus.ReadReply, error) {
	if r.Revision != 0 {
		return s.readAt(r.Key, r.Revision)
	}
	return s.read(r.Key), nil
}

// leaderRead answers from the leader's copy while it holds its lease, so
// the answer reflects every write acknowledged before it.
func (s *Server) leaderRead(key string) (bus.ReadReply, error) {
	epoch := s.leaderEpoch.Load()
	if epoch == 0 || !s.serving.Load() || !s.lease.LeaseValid() {
		return bus.ReadReply{}, s.notLeader(epoch)
	}
	r := s.read(key)
	if err := s.awaitLogged(); err != nil {
		return bus.ReadReply{}, err
	}
	if !s.lease.LeaseValid() || s.leaderEpoch.Load() != epoch {
		return bus.ReadReply{}, s.notLeader(epoch)
	}
	return r, nil
}

// hasApplied reports whether this copy holds every update up to rev: its
// revision has reached rev and it knows of no update it missed. A copy
// that skipped updates through a gap has moved its revision past them, so
// the revision alone would promise what it does not hold.
func (s *Server) hasApplied(rev uint64) bool {
	return s.store.Revision() >= rev && s.store.Missed() == 0
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
		if s.hasApplied(r.MinRevision) {
			return s.readOne(r)
		}
		select {
		case <-changed:
		case <-deadline.C:
			if missed := s.store.Missed(); missed > 0 {
				return bus.ReadReply{}, bus.Errorf(bus.CodeStale, "node %s missed %d updates (revision %d, wanted %d), so it cannot promise revision %d", s.cfg.ID, missed, s.store.Revision(), r.MinRevision, r.MinRevision)
			}
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
	var reply []byte
	fatal := false
	err := retry.Do(ctx, retry.Leader, func() error {
		msg, err := s.verifiedReply(ctx, s.subj.LeaderRead(), data, "leader read reply")
		if err == nil {
			reply = msg.Data
			return nil
		}
		if !errors.Is(err, nats.ErrNoResponders) && !isUnverified(err) {
			fatal = true
			return retry.Permanent(err)
		}
		return err
	}, nil)
	switch {
	case err == nil:
		return reply
	case fatal:
		return bus.EncodeError(bus.Errorf(bus.CodeNoLeader, "leader read on %s: %v", s.subj.LeaderRead(), err))
	}
	return bus.EncodeError(bus.Errorf(bus.CodeNoLeader, "no leader answered on %s within %s", s.subj.LeaderRead(), s.cfg.ForwardTimeout))
}
