package node

import (
	"context"
	"errors"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/store"
)

// handleHistory answers a key's history from the local copy. Like a
// local read it is answered at once: at most bus.MaxHistory versions.
func (s *Server) handleHistory(req micro.Request) {
	var r bus.HistoryRequest
	if err := bus.Decode(req.Data(), &r); err != nil {
		s.respondError(req, err)
		return
	}
	s.respond(req, bus.Encode(s.history(r)))
}

// History is the history path for callers in this process (the HTTP API).
func (s *Server) History(r bus.HistoryRequest) (bus.HistoryReply, error) {
	if err := r.Validate(); err != nil {
		return bus.HistoryReply{}, err
	}
	return s.history(r), nil
}

func (s *Server) history(r bus.HistoryRequest) bus.HistoryReply {
	versions, trimmed := s.store.History(r.Key)
	if r.Limit > 0 && len(versions) > r.Limit {
		versions, trimmed = versions[len(versions)-r.Limit:], true
	}
	// Like a list page, a reply holds about bus.ListPageBytes of values
	// (the newest versions, at least one), so that escaping cannot take
	// it past NATS's payload limit.
	size := 0
	for i := len(versions) - 1; i >= 0; i-- {
		if size += len(versions[i].Value); size > bus.ListPageBytes && i < len(versions)-1 {
			versions, trimmed = versions[i+1:], true
			break
		}
	}
	role, epoch, _ := s.role()
	out := bus.HistoryReply{Node: s.cfg.ID, Role: role, Epoch: epoch, Revision: s.store.Revision(), Stale: s.stale(role),
		Key: r.Key, Versions: make([]bus.Version, len(versions)), Trimmed: trimmed}
	for i, v := range versions {
		out.Versions[i] = bus.Version{Revision: v.Revision, Value: v.Value, Deleted: v.Deleted, Expires: unixMS(v.Expires)}
	}
	return out
}

// unixMS turns a deadline in Unix nanoseconds into milliseconds (0 stays
// 0).
func unixMS(ns int64) int64 { return ns / int64(time.Millisecond) }

// handleChanges replays the local copy's updates after a revision. A
// request that finds nothing and asks to wait does so on its own
// goroutine, in the watches budget.
func (s *Server) handleChanges(req micro.Request) {
	var r bus.ChangesRequest
	if err := bus.Decode(req.Data(), &r); err != nil {
		s.respondError(req, err)
		return
	}
	reply, err := s.changesPage(r)
	if err != nil || len(reply.Updates) > 0 || r.WaitMS == 0 {
		s.answer(req, reply, err)
		return
	}
	if err := s.spawn(s.budgets.watches, func() {
		reply, err := s.waitChanges(s.runCtx, r)
		s.answer(req, reply, err)
	}); err != nil {
		s.respondError(req, err)
	}
}

// answer responds with reply or err.
func (s *Server) answer(req micro.Request, reply any, err error) {
	if err != nil {
		s.respondError(req, err)
		return
	}
	s.respond(req, bus.Encode(reply))
}

// Changes is the changes path for callers in this process (the HTTP
// API); a wait holds a slot of the watches budget like the bus path.
func (s *Server) Changes(ctx context.Context, r bus.ChangesRequest) (bus.ChangesReply, error) {
	if err := r.Validate(); err != nil {
		return bus.ChangesReply{}, err
	}
	reply, err := s.changesPage(r)
	if err != nil || len(reply.Updates) > 0 || r.WaitMS == 0 {
		return reply, err
	}
	release, err := s.take(s.budgets.watches)
	if err != nil {
		return bus.ChangesReply{}, err
	}
	defer release()
	return s.waitChanges(ctx, r)
}

// waitChanges waits up to r.WaitMS for an update after r.After that
// matches, then answers the page (empty if none came).
func (s *Server) waitChanges(ctx context.Context, r bus.ChangesRequest) (bus.ChangesReply, error) {
	deadline := time.NewTimer(time.Duration(r.WaitMS) * time.Millisecond)
	defer deadline.Stop()
	for {
		changed := s.applied()
		reply, err := s.changesPage(r)
		if err != nil || len(reply.Updates) > 0 {
			return reply, err
		}
		r.After, r.AfterEpoch = reply.Next, reply.NextEpoch // skip what did not match
		select {
		case <-changed:
		case <-deadline.C:
			return s.changesPage(r)
		case <-ctx.Done():
			return bus.ChangesReply{}, bus.Errorf(bus.CodeUnavailable, "node %s is shutting down", s.cfg.ID)
		}
	}
}

// changesPage reads one page of the local copy's recent updates.
func (s *Server) changesPage(r bus.ChangesRequest) (bus.ChangesReply, error) {
	limit := r.Limit
	if limit == 0 {
		limit = bus.DefaultChangesPage
	}
	us, next, nextEpoch, more, err := s.store.Changes(r.After, r.AfterEpoch, r.Prefix, limit, bus.ChangesPageBytes)
	if err != nil {
		return bus.ChangesReply{}, revisionError(s.cfg.ID, err)
	}
	role, epoch, _ := s.role()
	out := bus.ChangesReply{Node: s.cfg.ID, Role: role, Epoch: epoch, Revision: s.store.Revision(), Stale: s.stale(role),
		Updates: make([]bus.Update, len(us)), Next: next, NextEpoch: nextEpoch, More: more}
	for i, u := range us {
		out.Updates[i] = busUpdate(u)
	}
	return out, nil
}

// revisionError is the wire error of a read or replay at a revision this
// copy cannot answer.
func revisionError(node string, err error) error {
	var re *store.RevisionError
	if !errors.As(err, &re) {
		return bus.Errorf(bus.CodeInternal, "node %s: %v", node, err)
	}
	switch re.Kind {
	case store.ErrFutureRevision:
		return bus.RevisionError(bus.CodeFuture, re.Current, "node %s: revision %d is past its revision %d", node, re.Revision, re.Current)
	case store.ErrIncomplete:
		return bus.Errorf(bus.CodeStale, "node %s missed updates, so it cannot answer for revision %d; ask another node", node, re.Revision)
	}
	return bus.RevisionError(bus.CodeCompacted, re.Held, "node %s no longer holds revision %d: it answers from revision %d", node, re.Revision, re.Held)
}

// readAt answers a read at a revision from the local history.
func (s *Server) readAt(key string, rev uint64) (bus.ReadReply, error) {
	v, found, err := s.store.GetAt(key, rev)
	if err != nil {
		return bus.ReadReply{}, revisionError(s.cfg.ID, err)
	}
	role, epoch, _ := s.role()
	r := bus.ReadReply{Found: found, Key: key, Node: s.cfg.ID, Role: role, Epoch: epoch, AtRevision: rev}
	if found {
		r.Value, r.Revision, r.Expires = v.Value, v.Revision, unixMS(v.Expires)
	}
	return r, nil
}

// expiryBatches bounds the batches of expiries the leader applies a tick.
const expiryBatches = 16

// expiryLoop runs for the server's life; while this server leads, it
// deletes the keys whose time to live passed, each with a condition on
// the revision that set its deadline, so a key written again meanwhile is
// left alone. The deletes are replicated like any other: every copy
// agrees and watchers see them, and a new leader finds the deadlines in
// its own copy.
func (s *Server) expiryLoop() {
	s.every(s.cfg.ExpiryInterval, func() {
		if s.leaderEpoch.Load() == 0 || !s.serving.Load() {
			return
		}
		// Up to expiryBatches of 256 a tick: a backlog drains at tens of
		// thousands a second without holding the write lock for long.
		for range expiryBatches {
			due := s.store.Due(time.Now().UnixNano(), 256)
			for _, e := range due {
				rev := e.Revision
				w := bus.WriteRequest{Op: bus.OpDelete, Key: e.Key, IfRevision: &rev, Acks: bus.AcksLeader}
				if _, _, err := s.applyStoreWrite(w, true); err != nil && !errors.Is(err, bus.ErrConflict) {
					s.log.Debug("expiry not applied", "key", e.Key, "err", err)
					return
				}
			}
			if len(due) < 256 {
				return
			}
		}
	})
}
