package node

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/internal/retry"
	"github.com/zkvstore/zkv/store"
)

// Lease is what the write and read paths ask the election before they
// take or acknowledge a write: whether this leader's lease holds, and
// which servers are registered (the ones that must confirm a write).
type Lease interface {
	// LeaseValid reports whether this server may acknowledge a write now.
	LeaseValid() bool
	// Members are the IDs of the servers registered in the election now.
	Members() []string
}

// handleLeaderWrite serves the leader subject. It may run after the
// service was stopped (micro drains queued requests), so the write path
// checks the lease and epoch itself.
func (s *Server) handleLeaderWrite(req micro.Request) {
	var w bus.WriteRequest
	if err := bus.Decode(req.Data(), &w); err != nil {
		s.respondError(req, err)
		return
	}
	s.serveWrite(req, w)
}

// serveWrite applies w as leader and answers req. The write is applied
// on the caller's goroutine, in revision order; its answer is sent by the
// replication pipeline once its update was published (pipeline.go), so
// the endpoint goes on applying later writes meanwhile. A write that waits
// for replicas' confirmations waits on its own goroutine. Such a write
// takes its ack_waits slot before it is applied: a full budget refuses it
// with nothing applied, so "unavailable" never hides an applied write.
func (s *Server) serveWrite(req micro.Request, w bus.WriteRequest) {
	slot := s.ackLevel(w) != bus.AcksLeader
	if slot && !s.budgets.ackWaits.acquire() {
		s.respondError(req, s.ackWaitsFull())
		return
	}
	s.applyAsync(w, false, func(reply bus.WriteReply, wait *ackWait, err error) {
		if err != nil || wait == nil {
			if slot {
				s.budgets.ackWaits.release()
			}
			if err != nil {
				s.respondError(req, err)
				return
			}
			s.respond(req, bus.Encode(reply))
			return
		}
		if !s.goFunc(func() {
			defer s.budgets.ackWaits.release()
			reply, err := s.awaitAcks(s.runCtx, reply, wait)
			if err != nil {
				s.respondError(req, err)
				return
			}
			s.respond(req, bus.Encode(reply))
		}) {
			s.budgets.ackWaits.release()
			s.respondError(req, bus.Errorf(bus.CodeUnavailable, "node %s is shutting down; revision %d was applied but not confirmed", s.cfg.ID, reply.Revision))
		}
	})
}

// ackWaitsFull is the answer to a write refused for want of an ack_waits
// slot, before it was applied.
func (s *Server) ackWaitsFull() error {
	b := s.budgets.ackWaits
	return bus.Errorf(bus.CodeUnavailable, "node %s: budget %s is full (%d writes waiting for confirmations); this request applied nothing", s.cfg.ID, b.name, cap(b.slots))
}

// ackLevel is the acknowledgement level w is held to.
func (s *Server) ackLevel(w bus.WriteRequest) string {
	if w.Acks != "" {
		return w.Acks
	}
	return s.cfg.Acks
}

// handleNodeWrite serves this node's own write subject: the leader applies
// the write, a follower forwards it to the leader subject and relays the
// reply. Forwarding runs on its own goroutine so slow elections do not hold
// up the endpoint; at most MaxForwards run at once (budget
// forwarded_writes).
func (s *Server) handleNodeWrite(req micro.Request) {
	var w bus.WriteRequest
	if err := bus.Decode(req.Data(), &w); err != nil {
		s.respondError(req, err)
		return
	}
	if s.isLeader() {
		s.serveWrite(req, w)
		return
	}
	data := forwardBody(w)
	if err := s.spawn(s.budgets.forwardedWrites, func() { s.respond(req, s.forward(s.runCtx, data)) }); err != nil {
		s.respondError(req, err)
	}
}

func (s *Server) isLeader() bool { return s.leaderEpoch.Load() != 0 }

// Write is the write path for callers in this process (the HTTP API): the
// leader applies w, a follower forwards it. It returns the leader's reply.
// It blocks on the caller's goroutine, holding a slot of the same budget
// as the bus path (ack_waits, forwarded_writes) meanwhile.
func (s *Server) Write(ctx context.Context, w bus.WriteRequest) (bus.WriteReply, error) {
	if err := w.Validate(); err != nil {
		return bus.WriteReply{}, err
	}
	if s.isLeader() {
		if s.ackLevel(w) != bus.AcksLeader {
			if !s.budgets.ackWaits.acquire() {
				return bus.WriteReply{}, s.ackWaitsFull()
			}
			defer s.budgets.ackWaits.release()
		}
		reply, wait, err := s.applyWrite(w)
		if err != nil || wait == nil {
			return reply, err
		}
		return s.awaitAcks(ctx, reply, wait)
	}
	release, err := s.take(s.budgets.forwardedWrites)
	if err != nil {
		return bus.WriteReply{}, err
	}
	defer release()
	var reply bus.WriteReply
	err = bus.DecodeReply(s.forward(ctx, forwardBody(w)), &reply)
	return reply, err
}

// forwardBody is the body a follower forwards for w: with a request ID of
// its own when the client gave none, so that if the leader gets the write
// twice (a retry after not_leader, a lost reply) it applies it once.
func forwardBody(w bus.WriteRequest) []byte {
	if w.RequestID == "" {
		w.RequestID = bus.NewRequestID()
	}
	return bus.Encode(w)
}

// applyWrite is the leader's write: check the lease and epoch, apply,
// replicate, check the lease again. It returns once the update was
// published; for acks=majority or all it returns the wait to pass to
// awaitAcks before replying.
func (s *Server) applyWrite(w bus.WriteRequest) (bus.WriteReply, *ackWait, error) {
	return s.applyStoreWrite(w, false)
}

// storeWrite is the store's form of a client's write, at the leader's
// clock now: a time to live becomes a deadline, a compaction by age the
// newest revision at least that old.
func (s *Server) storeWrite(w bus.WriteRequest, now time.Time) store.Write {
	sw := store.Write{Key: w.Key, Value: w.Value, Delete: w.Op == bus.OpDelete || w.Op == bus.OpPurge,
		Create: w.Op == bus.OpCreate, IfRevision: w.IfRevision, RequestID: w.RequestID,
		Prefix: w.Prefix, Purge: w.Op == bus.OpPurge, Time: now.UnixNano(), Leader: s.cfg.ID}
	if w.TTLMS > 0 {
		sw.Expires = now.Add(time.Duration(w.TTLMS) * time.Millisecond).UnixNano()
	}
	if w.Op == bus.OpCompact {
		sw.Compact = w.Revision
		if w.AgeMS > 0 {
			sw.Compact = s.store.RevisionBefore(now.Add(-time.Duration(w.AgeMS) * time.Millisecond).UnixNano())
		}
	}
	return sw
}

// applyStoreWrite is applyWrite; expired marks the leader's own delete of
// a key whose time to live passed.
func (s *Server) applyStoreWrite(w bus.WriteRequest, expired bool) (bus.WriteReply, *ackWait, error) {
	type result struct {
		reply bus.WriteReply
		wait  *ackWait
		err   error
	}
	ch := make(chan result, 1)
	s.applyAsync(w, expired, func(reply bus.WriteReply, wait *ackWait, err error) { ch <- result{reply, wait, err} })
	r := <-ch
	return r.reply, r.wait, r.err
}

// writeDone receives a write's outcome: the reply (and for acks=majority
// or all the wait to pass to awaitAcks), or the error to answer.
type writeDone func(reply bus.WriteReply, wait *ackWait, err error)

// applyAsync applies w and calls done exactly once with its outcome: at
// once when nothing is to be published (a refusal, a delete of nothing),
// else from the replication pipeline after the update was published and
// the lease checked again.
func (s *Server) applyAsync(w bus.WriteRequest, expired bool, done writeDone) {
	if reply, wait, err, queued := s.applyOrdered(w, expired, done); !queued {
		done(reply, wait, err)
	}
}

// applyOrdered is the ordered part of a write, under writeMu: check the
// lease and epoch, apply to the store and queue the update for
// replication, which then calls done. queued is false when nothing was
// queued; the outcome is then returned, for the caller to deliver once
// writeMu is released.
func (s *Server) applyOrdered(w bus.WriteRequest, expired bool, done writeDone) (bus.WriteReply, *ackWait, error, bool) {
	level := s.ackLevel(w)
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	epoch := s.leaderEpoch.Load()
	if epoch == 0 || !s.serving.Load() || !s.lease.LeaseValid() || !s.diskOK() {
		return bus.WriteReply{}, nil, s.notLeader(epoch), false
	}
	// The revision this write creates must be reserved in the cluster
	// record before anyone can be told it exists.
	if err := s.ensureReserved(s.runCtx, epoch, s.store.Revision()+1); err != nil {
		s.log.Warn("write refused: cannot reserve its revision", "err", err)
		return bus.WriteReply{}, nil, bus.Errorf(bus.CodeUnavailable, "node %s cannot reserve revisions in ZooKeeper; nothing was applied: %v", s.cfg.ID, err), false
	}
	if (w.Op == bus.OpCreate || w.IfRevision != nil) && !expired && s.lossyEpoch.Load() == epoch {
		// The condition would be checked against a copy that may lack
		// acknowledged writes: a create could overwrite a key the
		// cluster holds, an if_revision could win twice. (An expiry is
		// checked against the deadline this copy holds: it is taken.)
		return bus.WriteReply{}, nil, bus.Errorf(bus.CodeUnavailable, "node %s leads epoch %d without %d revisions the cluster may have acknowledged, so it cannot check create or if_revision; nothing was applied (plain puts and deletes are taken)", s.cfg.ID, epoch, s.lost.Load()), false
	}
	sw := s.storeWrite(w, time.Now())
	sw.Expired = expired
	if w.Op == bus.OpCompact && sw.Compact == 0 {
		// Nothing held is as old as asked: nothing to drop.
		return bus.WriteReply{OK: true, Op: w.Op, Revision: s.store.Revision(), Epoch: epoch, Leader: s.cfg.ID}, nil, nil, false
	}
	u, dup, applied, err, pend, lerr := s.writeLogged(epoch, sw)
	if lerr != nil {
		return bus.WriteReply{}, nil, bus.Errorf(bus.CodeUnavailable, "node %s applied revision %d but could not log it in its data directory: %v", s.cfg.ID, u.Seq, lerr), false
	}
	var (
		cond *store.ConditionError
		rerr *store.RevisionError
	)
	switch {
	case errors.As(err, &cond):
		return bus.WriteReply{}, nil, conditionFailed(cond), false
	case errors.As(err, &rerr):
		return bus.WriteReply{}, nil, bus.RevisionError(bus.CodeFuture, rerr.Current, "cannot compact to revision %d: the leader is at revision %d", rerr.Revision, rerr.Current), false
	case err != nil:
		// A higher epoch is known: we are a deposed leader.
		return bus.WriteReply{}, nil, bus.Errorf(bus.CodeNotLeader, "node %s was leader of epoch %d, a newer epoch %d exists", s.cfg.ID, epoch, s.store.Epoch()), false
	}
	reply := bus.WriteReply{OK: true, Key: u.Key, Revision: u.Seq, Epoch: u.Epoch, Leader: s.cfg.ID, Deleted: u.Delete && applied, Count: u.Count}
	if w.Op != bus.OpPut {
		reply.Op = w.Op
	}
	if u.Compact > 0 && applied {
		reply.Compacted = u.Compact
	}
	if u.Expires != 0 {
		reply.Expires = u.Expires / int64(time.Millisecond)
	}
	if !applied {
		// A delete of a key that does not exist (or the like): nothing
		// to replicate.
		return reply, nil, nil, false
	}
	if dup {
		if u.Key != w.Key || u.Value != w.Value || updateKind(u) != updateKind(storeUpdateOf(sw)) || u.Prefix != w.Prefix {
			return bus.WriteReply{}, nil, bus.Errorf(bus.CodeBadRequest, "request_id %q was used for another write (key %q at revision %d)", w.RequestID, u.Key, u.Seq), false
		}
		reply.Duplicate = true
		if level == bus.AcksLeader {
			// Answered once what came before it, the first attempt
			// included, was published (and logged).
			s.afterQueued(s.whenDurable(s.lastLogged(), func(err error) {
				if err == nil {
					err = s.stillLeads(epoch, u.Seq)
				}
				if err != nil {
					done(bus.WriteReply{}, nil, err)
					return
				}
				done(reply, nil, nil)
			}))
			return bus.WriteReply{}, nil, nil, true
		}
		// A retry waits for (or reports) the first attempt's confirmations.
		if wait := s.acks.get(ackKey{u.Epoch, u.Seq}); wait != nil {
			if p := s.lastLogged(); p != nil {
				s.whenDurable(p, func(err error) { done(reply, wait, err) })(nil)
				return bus.WriteReply{}, nil, nil, true
			}
			return reply, wait, nil, false
		}
		return bus.WriteReply{}, nil, bus.Errorf(bus.CodeTimeout, "request_id %q was applied at revision %d, but whether replicas confirmed it is no longer known", w.RequestID, u.Seq), false
	}
	s.metrics.applied.Inc()
	var wait *ackWait
	if level != bus.AcksLeader {
		wait = s.acks.register(ackKey{u.Epoch, u.Seq}, level, s.cfg.ID, s.lease.Members())
	}
	msg := busUpdate(u)
	msg.Ack = wait != nil
	s.replicate(msg, s.whenDurable(pend, func(err error) {
		if err != nil {
			s.log.Error("write applied but not replicated", "epoch", epoch, "seq", u.Seq, "key", u.Key, "err", err)
			done(bus.WriteReply{}, nil, bus.Errorf(bus.CodeUnavailable, "applied on the leader at revision %d but not replicated: %v", u.Seq, err))
			return
		}
		s.metrics.replicated.Inc()
		// The leader's own writes do not come back through apply: wake
		// the waits on this copy (changes long polls) here.
		s.notifyApplied()
		if err := s.stillLeads(epoch, u.Seq); err != nil {
			s.log.Warn("leadership lost while writing: not acknowledging", "epoch", epoch, "seq", u.Seq, "key", u.Key, "err", err)
			done(bus.WriteReply{}, nil, err)
			return
		}
		if wait == nil {
			s.noteAcked(epoch, u.Seq)
		}
		done(reply, wait, nil)
	}))
	return bus.WriteReply{}, nil, nil, true
}

// stillLeads is nil while this server, which took a write as leader of
// epoch, may acknowledge it (revision rev): it is connected to NATS (the
// update left, not just its reconnect buffer), its lease holds and no
// newer epoch is known (it has not been deposed, nor led a later epoch
// since).
func (s *Server) stillLeads(epoch, rev uint64) error {
	if !s.nc.IsConnected() {
		// The update waits in the client's reconnect buffer: not handed
		// to NATS, so not acknowledged (a retry with the same request ID
		// is answered once it is).
		return bus.Errorf(bus.CodeUnavailable, "node %s applied revision %d but is disconnected from NATS; the update is not replicated yet", s.cfg.ID, rev)
	}
	if known := s.store.Epoch(); known != epoch {
		return bus.Errorf(bus.CodeNotLeader, "node %s took revision %d as leader of epoch %d, but epoch %d is known now (revision %d may or may not survive)", s.cfg.ID, rev, epoch, known, rev)
	}
	if !s.lease.LeaseValid() {
		return bus.Errorf(bus.CodeNotLeader, "node %s lost its ZooKeeper lease during the write (revision %d may or may not survive)", s.cfg.ID, rev)
	}
	return nil
}

// conditionFailed is the wire error of a failed create or if_revision.
func conditionFailed(c *store.ConditionError) error {
	if c.Create {
		return bus.ConditionFailed(bus.CodeExists, c.Key, c.Revision, "key %q exists at revision %d; nothing was applied", c.Key, c.Revision)
	}
	return bus.ConditionFailed(bus.CodeConflict, c.Key, c.Revision, "key %q is at revision %d, not %d; nothing was applied", c.Key, c.Revision, c.Want)
}

// updateKind is the replication kind of a store update.
func updateKind(u store.Update) string {
	switch {
	case u.Compact > 0:
		return bus.KindCompact
	case u.Purge:
		return bus.KindPurge
	case u.Delete:
		return bus.KindDelete
	}
	return bus.KindPut
}

// storeUpdateOf is the kind of update a store write makes, for comparing
// kinds.
func storeUpdateOf(w store.Write) store.Update {
	return store.Update{Delete: w.Delete, Purge: w.Purge, Compact: w.Compact}
}

// busUpdate is the replication message of a store update.
func busUpdate(u store.Update) bus.Update {
	return bus.Update{Kind: updateKind(u), Epoch: u.Epoch, Seq: u.Seq, Key: u.Key, Value: u.Value, Leader: u.Leader,
		Time: u.Time, RequestID: u.RequestID, Prefix: u.Prefix, Expired: u.Expired, Expires: u.Expires, Compact: u.Compact}
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
	s.metrics.ackWaits.Inc()
wait:
	for {
		select {
		case <-w.done:
			break wait
		case <-tick.C:
			if w.level == bus.AcksAll {
				s.acks.prune(w, s.lease.Members())
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
		s.metrics.ackTimeouts.Inc()
		return bus.WriteReply{}, bus.Errorf(bus.CodeTimeout, "write applied on the leader at revision %d, but only %d of %d servers confirmed it within %s (acks=%s)",
			reply.Revision, reply.Confirmed, reply.Members, s.cfg.WriteTimeout, w.level)
	}
	// The confirmations say who holds the write; the lease says this
	// server may still say so.
	if !s.lease.LeaseValid() {
		return bus.WriteReply{}, bus.Errorf(bus.CodeNotLeader, "node %s lost its ZooKeeper lease while revision %d was being confirmed", s.cfg.ID, reply.Revision)
	}
	if s.disk != nil {
		if err := s.recordAcked(ctx, reply.Epoch, reply.Revision); err != nil {
			return bus.WriteReply{}, bus.Errorf(bus.CodeUnavailable, "write confirmed at revision %d, but node %s could not record it in the cluster record (acks=%s with a data directory is acknowledged once recorded): %v",
				reply.Revision, s.cfg.ID, w.level, err)
		}
	}
	s.noteAcked(reply.Epoch, reply.Revision)
	return reply, nil
}

func (s *Server) notLeader(epoch uint64) error {
	s.mu.Lock()
	leader := s.term.Leader.ID
	s.mu.Unlock()
	switch {
	case epoch != 0 && !s.serving.Load():
		return bus.Errorf(bus.CodeNotLeader, "node %s is taking over as leader of epoch %d and takes no writes yet", s.cfg.ID, epoch)
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
	s.metrics.forwarded.Inc()
	giveUp := time.Now().Add(s.cfg.ForwardTimeout)
	var reply []byte
	var last error
	fatal := false
	err := retry.Do(ctx, retry.Leader.Until(giveUp), func() error {
		actx, cancel := context.WithTimeout(ctx, time.Until(giveUp)+s.cfg.WriteTimeout)
		msg, err := s.forwardOnce(actx, data)
		cancel()
		if err != nil {
			last = err
			if !errors.Is(err, nats.ErrNoResponders) && !isUnverified(err) {
				fatal = true
				return retry.Permanent(err)
			}
			return err
		}
		var wr bus.WriteReply
		if rerr := bus.DecodeReply(msg.Data, &wr); errors.Is(rerr, bus.ErrNotLeader) {
			last = rerr
			return rerr
		}
		reply = msg.Data
		return nil
	}, nil)
	switch {
	case err == nil:
		return reply
	case fatal, ctx.Err() != nil:
		return bus.EncodeError(bus.Errorf(bus.CodeUnavailable, "forward to %s: %v", s.subj.Write(), err))
	}
	return bus.EncodeError(bus.Errorf(bus.CodeNoLeader, "no leader answered on %s within %s (last: %v)", s.subj.Write(), s.cfg.ForwardTimeout, last))
}

// forwardOnce sends a write to the leader this server knows, on the
// subject of its epoch only, so a paused or deposed leader that still
// listens on the shared write subject cannot hold it; when no leader is
// known, or the known one does not answer there (a newer one may not be
// announced yet), on the shared write subject.
func (s *Server) forwardOnce(ctx context.Context, data []byte) (*nats.Msg, error) {
	s.mu.Lock()
	leader := s.term.Leader
	s.mu.Unlock()
	if leader.Epoch != 0 && leader.ID != s.cfg.ID {
		ectx, cancel := context.WithTimeout(ctx, epochAttemptTimeout)
		msg, err := s.verifiedReply(ectx, s.subj.EpochWrite(leader.Epoch), data, "write reply")
		cancel()
		// No answer there in time (a paused leader of that epoch, or one
		// waiting for confirmations): the shared subject reaches whoever
		// leads now. The body carries a request ID, so a leader that got
		// both attempts applies the write once.
		if !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, nats.ErrTimeout) {
			return msg, err
		}
	}
	return s.verifiedReply(ctx, s.subj.Write(), data, "write reply")
}

// epochAttemptTimeout bounds a forward's wait on the subject of the epoch
// this server believes current before it also tries the shared one.
const epochAttemptTimeout = 500 * time.Millisecond
