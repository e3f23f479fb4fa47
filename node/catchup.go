package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/election"
	"github.com/zkvstore/zkv/internal/retry"
	"github.com/zkvstore/zkv/store"
)

// maxCatchUpBuffer bounds the live updates held while a catch-up fetches
// the snapshot; past it the catch-up fails and is tried again.
const maxCatchUpBuffer = 1 << 18

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
		s.log.Info("catching up from the leader", "reason", reason, "missed", s.store.Missed())
		first := true
		_ = retry.Do(s.runCtx, retry.CatchUp, func() error {
			// Each retry first checks it is still needed.
			if (!first && s.store.Missed() == 0) || s.leaderEpoch.Load() != 0 {
				return nil
			}
			first = false
			return s.catchUp(s.runCtx)
		}, func(err error, d time.Duration) {
			s.log.Warn("catch-up failed, retrying", "err", err, "retry_in", d)
		})
	})
	if !started {
		s.catchRunning.Store(false)
	}
}

// catchUp fetches the leader's store page by page while buffering the live
// updates, merges both (each key keeps its newest revision), and then
// follows the stream from there with no missed updates. The next page is
// fetched while the previous one is installed.
//
// Why the merge is right: buffering starts before the first page is asked
// for, and each page is the leader's store as of its revision, so every
// update after the first page's revision R0 is in the buffer or the stream
// that follows, and every update up to R0 is in every page. Pages are taken
// at different revisions, though, so before merging catchUp waits until the
// buffer holds the stream up to the last page's revision: otherwise an
// update between two pages that was still queued in this node's
// subscription when the catch-up ended would be dropped later as a
// duplicate, and its key left at an older page's value.
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
	if held := s.store.Held(); !held.Diverged && held.Revision > 0 {
		// This copy holds a prefix of the stream: fetch only what follows.
		err := s.catchUpFrom(ctx, held, start)
		if !errors.Is(err, errFullCopy) {
			return err
		}
		s.log.Info("copying the leader's whole store", "held_revision", held.Revision, "reason", err)
	}
	// The copy replaces this one key range by key range: until the
	// snapshot that follows it, a replay of the log must know the copy is
	// not whole.
	s.noteHole(true)
	// What the cluster had acknowledged before the first page: a source
	// whose pages end below it lacks acknowledged writes. (The record moves
	// on while writes flow, so it is read before, not after.)
	floor := s.freshRecord().Acked
	s.reserveForLeader(ctx)
	fctx, stopFetching := context.WithCancel(ctx)
	pages := make(chan fetchedPage, 1)
	if !s.goFunc(func() { s.fetchPages(fctx, pages) }) {
		stopFetching()
		return s.shuttingDown()
	}
	defer func() {
		stopFetching()
		for range pages { // wait for the fetcher to stop
		}
	}()
	var epoch, first, rev uint64
	keys, npages, removed, complete, after := 0, 0, 0, false, ""
	for f := range pages {
		if f.err != nil {
			return f.err
		}
		page := f.page
		if epoch != 0 && page.Epoch != epoch {
			return fmt.Errorf("the leader changed during the catch-up (epoch %d, then %d)", epoch, page.Epoch)
		}
		if npages == 0 {
			first = page.Revision
		}
		epoch, rev = page.Epoch, max(rev, page.Revision)
		entries := make([]store.KeyEntry, len(page.Entries))
		for i, e := range page.Entries {
			entries[i] = store.KeyEntry{Key: e.Key, Entry: store.Entry{Value: e.Value, Revision: e.Revision, Expires: e.Expires}}
		}
		removed += s.store.InstallPage(after, entries, !page.More)
		if len(entries) > 0 {
			after = entries[len(entries)-1].Key
		}
		keys += len(entries)
		npages++
		s.metrics.caughtUpPage(len(entries))
		complete = !page.More
	}
	if !complete {
		return fmt.Errorf("catch-up ended after %d pages: %w", npages, ctx.Err())
	}
	if rev > first {
		if err := s.awaitBuffered(ctx, epoch, rev); err != nil {
			return err
		}
	}

	ids, err := s.fetchRequests(ctx, epoch)
	if err != nil {
		return err
	}
	// A source that is itself behind the record cannot make this copy
	// current, however complete its pages.
	if rev < floor {
		return fmt.Errorf("the leader's copy (revision %d) is behind the cluster record (acknowledged revision %d): not caught up", rev, floor)
	}
	s.catchMu.Lock()
	defer s.catchMu.Unlock()
	if s.catchOverflow {
		return fmt.Errorf("more than %d live updates arrived during the catch-up", maxCatchUpBuffer)
	}
	epoch, rev, buffered := s.mergeBufferedLocked(epoch, rev)
	s.store.CaughtUp(epoch, rev)
	s.compared.Store(true)
	s.catching, s.catchBuf = false, nil
	s.notifyApplied()
	if s.disk != nil {
		// The copied store is in no log record: a snapshot holds it.
		s.goFunc(func() {
			if err := s.snapshot("caught up by a copy of the leader's store"); err != nil {
				s.log.Warn("snapshot after a catch-up failed (a restart catches up again)", "err", err)
			}
		})
	}
	s.log.Info("caught up", "keys", keys, "pages", npages, "removed", removed, "request_ids", ids, "buffered_updates", buffered, "epoch", epoch, "revision", rev, "took", time.Since(start))
	return nil
}

// mergeBufferedLocked merges the live updates buffered during a catch-up
// (each key keeps its newest revision), and returns the epoch and
// revision the stream reached, from epoch and rev, and how many updates
// were buffered. catchMu is held.
func (s *Server) mergeBufferedLocked(epoch, rev uint64) (uint64, uint64, int) {
	for _, u := range s.catchBuf {
		switch u.Kind {
		case bus.KindPut, bus.KindDelete, bus.KindPurge, bus.KindCompact:
			if !s.mergeLogged(u, false) {
				continue
			}
			epoch, rev = max(epoch, u.Epoch), max(rev, u.Seq)
		case bus.KindEpoch:
			epoch, rev = max(epoch, u.Epoch), max(rev, u.Seq)
		}
	}
	return epoch, rev, len(s.catchBuf)
}

// maxReserve bounds the keys a catch-up makes room for in advance.
const maxReserve = 1 << 26

// reserveForLeader asks the leader how many keys it holds and makes room
// for them, so installing the pages does not grow the map step by step.
// It is an optimisation: if the leader does not answer, or this copy holds
// half of its keys already (a gap, not a restart: copying the map would
// stall this node's writes for nothing), nothing happens.
func (s *Server) reserveForLeader(ctx context.Context) {
	s.mu.Lock()
	leader := s.term.Leader.ID
	s.mu.Unlock()
	if leader == "" || leader == s.cfg.ID {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ForwardTimeout)
	defer cancel()
	msg, err := s.verifiedReply(ctx, s.subj.NodeStatus(leader), nil, "leader status")
	if err != nil {
		return
	}
	var st bus.Status
	if bus.DecodeReply(msg.Data, &st) == nil && s.store.Len() < st.Keys/2 {
		s.store.Reserve(min(st.Keys+st.Keys/8, maxReserve))
	}
}

// awaitBuffered waits until the live updates buffered by the catch-up
// reach revision rev of epoch (the stream is ordered, so everything before
// it is buffered too), for up to ForwardTimeout.
func (s *Server) awaitBuffered(ctx context.Context, epoch, rev uint64) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ForwardTimeout)
	defer cancel()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		s.catchMu.Lock()
		n := len(s.catchBuf)
		reached := s.catchOverflow || n > 0 && (s.catchBuf[n-1].Epoch > epoch || s.catchBuf[n-1].Seq >= rev)
		s.catchMu.Unlock()
		if reached {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the live updates did not reach revision %d of epoch %d: %w", rev, epoch, ctx.Err())
		case <-tick.C:
		}
	}
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
		first := true
		_ = retry.Do(s.runCtx, retry.CatchUp, func() error {
			s.mu.Lock()
			current := s.term.Leader.ID == leader && s.term.Epoch == epoch
			s.mu.Unlock()
			if !first && !current {
				return nil // the next leader gets its own probe
			}
			first = false
			return s.probeOnce(leader, epoch)
		}, func(err error, _ time.Duration) {
			s.log.Warn("cannot ask the leader how far it is", "leader", leader, "err", err)
		})
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
	if st.Role != bus.RoleLeader || st.Epoch != epoch {
		// Not (or no longer, or not yet) leading the epoch we follow: a
		// server that restarted too answers here while an old leader
		// znode names it. Its copy proves nothing.
		return fmt.Errorf("%s is %s at epoch %d, not the leader of epoch %d", leader, st.Role, st.Epoch, epoch)
	}
	if st.AppliedSeq <= s.store.Revision() {
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
			us[i] = store.Update{Epoch: r.Epoch, Seq: r.Revision, Key: r.Key, Value: r.Value, RequestID: r.ID, Delete: r.Delete}
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
