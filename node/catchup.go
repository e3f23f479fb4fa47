package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/nats-io/nats.go/micro"

	"zkv/bus"
	"zkv/election"
	"zkv/store"
)

// maxCatchUpBuffer bounds the live updates held while a catch-up fetches
// the snapshot; past it the catch-up fails and is tried again.
const maxCatchUpBuffer = 1 << 18

// handleLeaderSnapshot serves one page of the leader's store.
func (s *Server) handleLeaderSnapshot(req micro.Request) {
	var r bus.SnapshotRequest
	if err := bus.Decode(req.Data(), &r); err != nil {
		s.respondError(req, err)
		return
	}
	epoch := s.leaderEpoch.Load()
	if epoch == 0 || !s.elect.LeaseValid() {
		s.respondError(req, s.notLeader(epoch))
		return
	}
	limit := r.Limit
	if limit == 0 {
		limit = bus.MaxSnapshotPage
	}
	if r.Requests {
		reqs, more := s.store.Requests(r.After, limit, bus.SnapshotPageBytes)
		page := bus.SnapshotReply{Epoch: epoch, Revision: s.store.Revision(), More: more, Leader: s.cfg.ID, Entries: []bus.SnapshotEntry{},
			Requests: make([]bus.RequestEntry, len(reqs))}
		for i, u := range reqs {
			page.Requests[i] = bus.RequestEntry{ID: u.RequestID, Epoch: u.Epoch, Revision: u.Seq, Key: u.Key, Value: u.Value}
		}
		s.respond(req, bus.Encode(page))
		return
	}
	entries, rev, _, more := s.store.Snapshot(r.After, limit, bus.SnapshotPageBytes)
	page := bus.SnapshotReply{Epoch: epoch, Revision: rev, More: more, Leader: s.cfg.ID, Entries: make([]bus.SnapshotEntry, len(entries))}
	for i, e := range entries {
		page.Entries[i] = bus.SnapshotEntry{Key: e.Key, Value: e.Value, Revision: e.Revision}
	}
	s.respond(req, bus.Encode(page))
}

// bufferIfCatchingUp holds u while a catch-up runs and reports whether it
// did.
func (s *Server) bufferIfCatchingUp(u bus.Update) bool {
	s.catchMu.Lock()
	defer s.catchMu.Unlock()
	if !s.catching {
		return false
	}
	if len(s.catchBuf) < maxCatchUpBuffer {
		s.catchBuf = append(s.catchBuf, u)
	} else {
		s.catchOverflow = true
	}
	return true
}

// startCatchUp starts a catch-up unless one runs or --catch-up is off. It
// retries with backoff until the copy is current, this server leads, or
// the server stops.
func (s *Server) startCatchUp(reason string) {
	if !s.cfg.CatchUp || !s.catchRunning.CompareAndSwap(false, true) {
		return
	}
	started := s.goFunc(func() {
		defer s.catchRunning.Store(false)
		b := backoff.NewExponentialBackOff()
		b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = 100*time.Millisecond, 2*time.Second, 0
		b.Reset()
		s.log.Info("catching up from the leader", "reason", reason, "missed", s.store.Missed())
		for first := true; (first || s.store.Missed() > 0) && s.leaderEpoch.Load() == 0; first = false {
			err := s.catchUp(s.runCtx)
			if err == nil {
				return
			}
			d := b.NextBackOff()
			s.log.Warn("catch-up failed, retrying", "err", err, "retry_in", d)
			select {
			case <-s.runCtx.Done():
				return
			case <-time.After(d):
			}
		}
	})
	if !started {
		s.catchRunning.Store(false)
	}
}

// catchUp fetches the leader's store page by page while buffering the live
// updates, merges both (each key keeps its newest revision), and then
// follows the stream from there with no missed updates.
func (s *Server) catchUp(ctx context.Context) (err error) {
	s.catchMu.Lock()
	s.catching, s.catchBuf, s.catchOverflow = true, nil, false
	s.catchMu.Unlock()
	defer func() {
		if err != nil {
			s.replayBuffered()
		}
	}()
	start := time.Now()
	var epoch, rev uint64
	after, keys, pages := "", 0, 0
	for more := true; more; {
		actx, cancel := context.WithTimeout(ctx, s.cfg.ForwardTimeout)
		msg, err := s.verifiedReply(actx, s.subj.LeaderSnapshot(), bus.Encode(bus.SnapshotRequest{After: after}), "snapshot page")
		cancel()
		if err != nil {
			return fmt.Errorf("snapshot page after %q: %w", after, err)
		}
		var page bus.SnapshotReply
		if err := bus.DecodeReply(msg.Data, &page); err != nil {
			return fmt.Errorf("snapshot page after %q: %w", after, err)
		}
		if epoch != 0 && page.Epoch != epoch {
			return fmt.Errorf("the leader changed during the catch-up (epoch %d, then %d)", epoch, page.Epoch)
		}
		epoch, rev, more = page.Epoch, max(rev, page.Revision), page.More
		entries := make([]store.KeyEntry, len(page.Entries))
		for i, e := range page.Entries {
			entries[i] = store.KeyEntry{Key: e.Key, Entry: store.Entry{Value: e.Value, Revision: e.Revision}}
		}
		s.store.Install(entries)
		keys += len(entries)
		pages++
		if len(entries) > 0 {
			after = entries[len(entries)-1].Key
		} else if more {
			return errors.New("empty snapshot page with more to come")
		}
	}

	ids, err := s.fetchRequests(ctx, epoch)
	if err != nil {
		return err
	}
	// A source that is itself behind the record cannot make this copy
	// current, however complete its pages.
	if rec := s.freshRecordRevision(); rev < rec {
		return fmt.Errorf("the leader's copy (revision %d) is behind the cluster record (revision %d): not caught up", rev, rec)
	}
	s.catchMu.Lock()
	defer s.catchMu.Unlock()
	if s.catchOverflow {
		return fmt.Errorf("more than %d live updates arrived during the catch-up", maxCatchUpBuffer)
	}
	buffered := len(s.catchBuf)
	for _, u := range s.catchBuf {
		switch u.Kind {
		case bus.KindPut:
			if err := s.store.ApplyNewer(store.Update{Epoch: u.Epoch, Seq: u.Seq, Key: u.Key, Value: u.Value, RequestID: u.RequestID}); err != nil {
				s.logApplyErr(err, u.Leader, u.Epoch, u.Seq)
				continue
			}
			epoch, rev = max(epoch, u.Epoch), max(rev, u.Seq)
		case bus.KindEpoch:
			epoch, rev = max(epoch, u.Epoch), max(rev, u.Seq)
		}
	}
	s.store.CaughtUp(epoch, rev)
	s.compared.Store(true)
	s.catching, s.catchBuf = false, nil
	s.notifyApplied()
	s.log.Info("caught up", "keys", keys, "pages", pages, "request_ids", ids, "buffered_updates", buffered, "epoch", epoch, "revision", rev, "took", time.Since(start))
	return nil
}

// fetchRequests copies the leader's window of recent request IDs, so a
// write retried after a failover to this copy is applied once. It returns
// how many IDs it learned.
func (s *Server) fetchRequests(ctx context.Context, epoch uint64) (int, error) {
	n := 0
	for after, more := "", true; more; {
		actx, cancel := context.WithTimeout(ctx, s.cfg.ForwardTimeout)
		msg, err := s.verifiedReply(actx, s.subj.LeaderSnapshot(), bus.Encode(bus.SnapshotRequest{After: after, Requests: true}), "request-ID page")
		cancel()
		if err != nil {
			return n, fmt.Errorf("request-ID page after %q: %w", after, err)
		}
		var page bus.SnapshotReply
		if err := bus.DecodeReply(msg.Data, &page); err != nil {
			return n, fmt.Errorf("request-ID page after %q: %w", after, err)
		}
		if page.Epoch != epoch {
			return n, fmt.Errorf("the leader changed during the catch-up (epoch %d, then %d)", epoch, page.Epoch)
		}
		us := make([]store.Update, len(page.Requests))
		for i, r := range page.Requests {
			us[i] = store.Update{Epoch: r.Epoch, Seq: r.Revision, Key: r.Key, Value: r.Value, RequestID: r.ID}
		}
		s.store.RememberRequests(us)
		n += len(us)
		more = page.More
		if len(us) > 0 {
			after = us[len(us)-1].RequestID
		} else if more {
			return n, errors.New("empty request-ID page with more to come")
		}
	}
	return n, nil
}

// replayBuffered ends a failed catch-up: the buffered updates go through
// the ordinary apply path, which reports what is still missing.
func (s *Server) replayBuffered() {
	s.catchMu.Lock()
	buf := s.catchBuf
	s.catching, s.catchBuf = false, nil
	s.catchMu.Unlock()
	for _, u := range buf {
		s.apply(u)
	}
}

// probeLeader asks a newly learned leader how far it is, so a copy that is
// behind (restarted, say) reports stale at once instead of at the next
// write, and, with --catch-up, catches up at once.
func (s *Server) probeLeader(leader string, epoch uint64) {
	s.goFunc(func() {
		b := backoff.NewExponentialBackOff()
		b.InitialInterval, b.MaxInterval, b.MaxElapsedTime = 100*time.Millisecond, 2*time.Second, 0
		b.Reset()
		for {
			err := s.probeOnce(leader, epoch)
			if err == nil {
				return
			}
			s.log.Warn("cannot ask the leader how far it is", "leader", leader, "err", err)
			select {
			case <-s.runCtx.Done():
				return
			case <-time.After(b.NextBackOff()):
			}
			s.mu.Lock()
			current := s.term.Leader.ID == leader && s.term.Epoch == epoch
			s.mu.Unlock()
			if !current {
				return // the next leader gets its own probe
			}
		}
	})
}

// probeOnce asks the leader for its revision once and acts on it.
func (s *Server) probeOnce(leader string, epoch uint64) error {
	ctx, cancel := context.WithTimeout(s.runCtx, s.cfg.ForwardTimeout)
	defer cancel()
	msg, err := s.verifiedReply(ctx, s.subj.NodeStatus(leader), nil, "leader status")
	if err != nil {
		return err
	}
	var st bus.Status
	if err := bus.DecodeReply(msg.Data, &st); err != nil {
		return err
	}
	if st.Epoch != epoch || st.AppliedSeq <= s.store.Revision() {
		s.compared.Store(true)
		return nil
	}
	s.store.NoteBehind(st.AppliedSeq)
	s.compared.Store(true)
	s.log.Info("behind the leader", "leader", leader, "leader_revision", st.AppliedSeq, "revision", s.store.Revision(), "missed", s.store.Missed())
	s.startCatchUp(fmt.Sprintf("leader %s is at revision %d", leader, st.AppliedSeq))
	return nil
}

// refuseToLead handles an election won by a copy that must not lead (with
// --catch-up: it missed updates, or holds less than the cluster record):
// it does not take writes, and after a pause it goes to the back of the
// line so a current server can lead.
func (s *Server) refuseToLead(t election.Term, why string, args ...any) {
	s.rareLog("refuse", func() {
		s.log.Warn("refusing to lead: going to the back of the line", append([]any{"reason", why, "epoch", t.Epoch}, args...)...)
	})
	s.goFunc(func() {
		select {
		case <-s.runCtx.Done():
			return
		case <-time.After(time.Second):
		}
		ctx, cancel := context.WithTimeout(s.runCtx, s.cfg.ShutdownTimeout)
		defer cancel()
		if err := s.elect.Requeue(ctx); err != nil {
			s.log.Warn("requeue in the election failed", "err", err)
		}
	})
}
