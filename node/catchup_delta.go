package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/store"
)

// errFullCopy means a catch-up from a revision is not possible: the
// leader no longer holds every update after it, or holds another
// branch of the stream there. The whole store is copied instead.
var errFullCopy = errors.New("the leader cannot replay from this copy's revision")

// catchUpFrom is the catch-up of a copy that holds every update up to
// held (a server restarted from its data directory, or a replica that
// found a gap): it fetches only the leader's updates after held.Revision
// from the leader's replay window (the changes endpoint), merges them and
// the live updates buffered meanwhile, and then follows the stream with
// nothing missed. The merge is as in catchUp: each key keeps its newest
// revision. With a data directory every merged update is logged, and the
// end of the catch-up too, so a restart replays to the same state.
func (s *Server) catchUpFrom(ctx context.Context, held store.Position, start time.Time) error {
	floor := s.freshRecord().Acked
	s.mu.Lock()
	leader := s.term.Leader.ID
	s.mu.Unlock()
	if leader == "" || leader == s.cfg.ID {
		return errors.New("no leader to catch up from")
	}
	after, afterEpoch := held.Revision, held.RevEpoch
	var epoch, first, rev uint64
	updates, pages := 0, 0
	for more := true; more; {
		page, err := s.changesFrom(ctx, leader, after, afterEpoch)
		if err != nil {
			return err
		}
		if page.Role != bus.RoleLeader || epoch != 0 && page.Epoch != epoch {
			return fmt.Errorf("%s is %s at epoch %d: not the leader it was (epoch %d)", leader, page.Role, page.Epoch, epoch)
		}
		if pages == 0 {
			first = page.Revision
		}
		epoch, rev = page.Epoch, max(rev, page.Next)
		for _, u := range page.Updates {
			s.mergeLogged(u, true)
		}
		updates += len(page.Updates)
		pages++
		after, afterEpoch, more = page.Next, page.NextEpoch, page.More
	}
	if rev > first {
		if err := s.awaitBuffered(ctx, epoch, rev); err != nil {
			return err
		}
	}
	if rev < floor {
		return fmt.Errorf("the leader's copy (revision %d) is behind the cluster record (acknowledged revision %d): not caught up", rev, floor)
	}
	s.catchMu.Lock()
	defer s.catchMu.Unlock()
	if s.catchOverflow {
		return fmt.Errorf("more than %d live updates arrived during the catch-up", maxCatchUpBuffer)
	}
	epoch, rev, buffered := s.mergeBufferedLocked(epoch, rev)
	s.caughtUpLogged(epoch, rev)
	s.compared.Store(true)
	s.catching, s.catchBuf = false, nil
	s.notifyApplied()
	s.log.Info("caught up from a revision", "from_revision", held.Revision, "updates", updates, "pages", pages,
		"buffered_updates", buffered, "epoch", epoch, "revision", rev, "took", time.Since(start).String())
	return nil
}

// changesFrom asks leader for its updates after revision after.
func (s *Server) changesFrom(ctx context.Context, leader string, after, afterEpoch uint64) (bus.ChangesReply, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.ForwardTimeout)
	defer cancel()
	req := bus.ChangesRequest{After: after, AfterEpoch: afterEpoch, Limit: bus.MaxChangesPage}
	msg, err := s.verifiedReply(ctx, s.subj.NodeChanges(leader), bus.Encode(req), "changes page")
	if err != nil {
		return bus.ChangesReply{}, fmt.Errorf("changes after %d from %s: %w", after, leader, err)
	}
	var page bus.ChangesReply
	if err := bus.DecodeReply(msg.Data, &page); err != nil {
		if errors.Is(err, bus.ErrCompacted) {
			return page, fmt.Errorf("%w: %w", errFullCopy, err)
		}
		return page, fmt.Errorf("changes after %d from %s: %w", after, leader, err)
	}
	return page, nil
}

// mergeLogged merges u into the store as a catch-up does (each key keeps
// its newest revision) and logs it, and reports whether it was taken.
// past says u is the leader's own past update, which no epoch fence
// applies to.
func (s *Server) mergeLogged(u bus.Update, past bool) bool {
	if d := s.disk; d != nil {
		d.mu.Lock()
		defer d.mu.Unlock()
	}
	su := storeUpdate(u)
	if past {
		s.store.Merge(su)
	} else if err := s.store.ApplyNewer(su); err != nil {
		s.logApplyErr(err, u.Leader, u.Epoch, u.Seq)
		return false
	}
	if s.disk != nil {
		if _, err := s.disk.appendLocked(logNewer(u)); err != nil {
			s.diskFailed(err)
		}
	}
	return true
}

// caughtUpLogged ends a catch-up at epoch and rev, logged.
func (s *Server) caughtUpLogged(epoch, rev uint64) {
	if d := s.disk; d != nil {
		d.mu.Lock()
		defer d.mu.Unlock()
	}
	s.store.CaughtUp(epoch, rev)
	if s.disk != nil {
		if _, err := s.disk.appendLocked(logCaughtUp(epoch, rev)); err != nil {
			s.diskFailed(err)
		}
	}
}
