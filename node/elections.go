package node

import (
	"sync"
	"time"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/election"
)

// maxElections is how many leader changes a server remembers for its
// status page.
const maxElections = 16

// electionLog remembers the latest leader changes this server saw and
// how long it knew no leader before each. It is fed from the election
// loop and read by the HTTP handlers; the zero value is ready.
type electionLog struct {
	mu     sync.Mutex
	leader string // the leader known now ("" while none)
	epoch  uint64
	// lostAt is when the last known leader, lostFrom, went away; zero
	// while a leader is known or none ever was.
	lostAt   time.Time
	lostFrom string
	events   []bus.ElectionEvent // oldest first, at most maxElections
}

// observe records that this server now knows leader as the leader of
// epoch ("" for no leader) and returns the leader change it completes,
// if any.
func (l *electionLog) observe(leader string, epoch uint64, now time.Time) (bus.ElectionEvent, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if leader == l.leader && (leader == "" || epoch == l.epoch) {
		return bus.ElectionEvent{}, false
	}
	if leader == "" {
		l.lostAt, l.lostFrom = now, l.leader
		l.leader, l.epoch = "", 0
		return bus.ElectionEvent{}, false
	}
	ev := bus.ElectionEvent{Leader: leader, Epoch: epoch, Previous: l.leader, At: now.UnixMilli()}
	if l.leader == "" {
		ev.Previous = l.lostFrom
		if !l.lostAt.IsZero() {
			ev.LeaderlessMS = now.Sub(l.lostAt).Milliseconds()
		}
	}
	l.leader, l.epoch, l.lostAt, l.lostFrom = leader, epoch, time.Time{}, ""
	if len(l.events) == maxElections {
		l.events = append(l.events[:0], l.events[1:]...)
	}
	l.events = append(l.events, ev)
	return ev, true
}

// list returns a copy of the remembered changes, oldest first.
func (l *electionLog) list() []bus.ElectionEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]bus.ElectionEvent(nil), l.events...)
}

// noteTerm records the leader a new term names. This server, once
// elected, knows no leader until it takes writes (noteLeading).
func (s *Server) noteTerm(t election.Term) {
	leader := t.Leader.ID
	if t.Role == election.RoleLeader {
		leader = ""
		if s.leaderEpoch.Load() == t.Epoch && s.serving.Load() {
			leader = s.cfg.ID
		}
	}
	s.noteLeader(leader, t.Epoch)
}

// noteLeading records that this server takes writes in epoch.
func (s *Server) noteLeading(epoch uint64) { s.noteLeader(s.cfg.ID, epoch) }

func (s *Server) noteLeader(leader string, epoch uint64) {
	ev, ok := s.elections.observe(leader, epoch, time.Now())
	if !ok || ev.Previous == "" {
		return
	}
	s.log.Info("leader changed", "leader", ev.Leader, "epoch", ev.Epoch, "previous", ev.Previous,
		"leaderless", (time.Duration(ev.LeaderlessMS) * time.Millisecond).String())
}
