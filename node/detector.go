package node

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/zkvstore/zkv/election"
	"github.com/zkvstore/zkv/internal/failover"
)

// Successor is what fast failover needs from the election: the power to
// remove a dead leader's znode when this server is next in line.
// *election.Elector implements it; an elector without it (a test fake)
// turns fast failover off.
type Successor interface {
	// Depose removes the leader's election znode (and the leader znode
	// naming it), if this server's znode is right after it.
	Depose(ctx context.Context, leaderZnode string) error
}

// failoverWatch is the state the election loop shares with failoverLoop:
// the latest term, and how to stop the probing of an older one.
type failoverWatch struct {
	mu     sync.Mutex
	term   election.Term
	cancel context.CancelFunc // ends the current Watch; nil when idle
	kick   chan struct{}      // 1-buffered: the term changed
}

// nextInLine reports whether t makes this server the one to watch the
// leader: a follower whose predecessor is the leader's znode.
func nextInLine(t election.Term, self string) bool {
	return t.Role == election.RoleFollower && t.Leader.ID != "" && t.Leader.ID != self &&
		t.Leader.Znode != "" && t.Watching == t.Leader.Znode
}

// probeTerm tells failoverLoop of a new term: a probe of another target
// stops. Called from the election loop; it never blocks.
func (s *Server) probeTerm(t election.Term) {
	f := &s.failover
	f.mu.Lock()
	defer f.mu.Unlock()
	old := f.term
	f.term = t
	if old.Role == t.Role && old.Watching == t.Watching && old.Leader == t.Leader {
		return
	}
	if f.cancel != nil {
		f.cancel()
		f.cancel = nil
	}
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// failoverLoop probes the leader's ping subject while this server is next
// in line, and deposes the leader in ZooKeeper when the probes say its
// process is gone (see package failover and docs/election.md). It runs
// for the life of the server.
func (s *Server) failoverLoop() {
	succ, ok := s.elect.(Successor)
	if !ok || s.cfg.FastFailover.Off {
		return
	}
	cfg := s.cfg.FastFailover.Detector
	cfg.Logger = s.log
	det, err := failover.New(s.nc, cfg)
	if err != nil {
		s.log.Error("fast failover off", "err", err)
		return
	}
	f := &s.failover
	ctx := s.runCtx
	for {
		f.mu.Lock()
		t := f.term
		var wctx context.Context
		if nextInLine(t, s.cfg.ID) {
			wctx, f.cancel = context.WithCancel(ctx)
		}
		f.mu.Unlock()
		if wctx == nil {
			select {
			case <-f.kick:
				continue
			case <-ctx.Done():
				return
			}
		}
		s.log.Debug("next in line: probing the leader", "leader", t.Leader.ID, "leader_znode", t.Leader.Znode)
		death, err := det.Watch(wctx, s.subj.NodePing(t.Leader.ID), func() []string { return s.witnesses(t.Leader.ID) })
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			continue // the term changed
		}
		s.log.Warn("leader's process is gone: deposing it", "leader", t.Leader.ID, "epoch", t.Epoch,
			"leader_znode", t.Leader.Znode, "probes", death.Probes, "span", death.Span.String(), "witness", death.Witness)
		dctx, cancel := context.WithTimeout(wctx, s.cfg.SessionTimeout)
		err = succ.Depose(dctx, t.Leader.Znode)
		cancel()
		if err != nil && !errors.Is(err, context.Canceled) {
			s.log.Warn("cannot depose the leader; its session will expire", "leader", t.Leader.ID, "err", err)
		}
		// Wait for the election to move on (or retry after a pause).
		select {
		case <-wctx.Done():
		case <-time.After(s.cfg.SessionTimeout / 10):
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// witnesses are the ping subjects of the registered servers other than
// this one and the leader: one must answer before a death counts, so a
// server cut off from everyone does not depose the leader.
func (s *Server) witnesses(leader string) []string {
	var out []string
	for _, id := range s.lease.Members() {
		if id != leader && id != s.cfg.ID {
			out = append(out, s.subj.NodePing(id))
		}
	}
	return out
}

// handlePing answers the next in line's probe with an empty reply.
func (s *Server) handlePing(req micro.Request) {
	if s.ownSubject(req.Reply()) {
		return
	}
	_ = req.Respond(nil)
}
