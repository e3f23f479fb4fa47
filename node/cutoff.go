package node

import (
	"context"
	"sync/atomic"
	"time"
)

// How a server cut off from ZooKeeper or NATS says so: it looks at both
// links every linkPoll; one that is down for firstCutOffWarning is logged
// at WARN, then again after twice as long each time, up to every
// maxCutOffWarning, for as long as it lasts; when it comes back, once at
// INFO with how long it was down.
const (
	linkPoll           = 250 * time.Millisecond
	firstCutOffWarning = time.Second
	maxCutOffWarning   = time.Minute
)

// nextCutOffWarning is the wait before the warning that follows one
// after wait.
func nextCutOffWarning(wait time.Duration) time.Duration {
	return min(2*wait, maxCutOffWarning)
}

// link is this server's view of one connection it needs (ZooKeeper or
// NATS): whether it is up and since when it is not. watchLinks writes it;
// status, readiness and metrics read it.
type link struct {
	name  string
	since atomic.Int64 // Unix nanoseconds when it went down; 0 while up
}

// up reports whether the link was up when last looked at.
func (l *link) up() bool { return l.since.Load() == 0 }

// cutOffFor is how long the link has been down at now (0 while up).
func (l *link) cutOffFor(now time.Time) time.Duration {
	since := l.since.Load()
	if since == 0 {
		return 0
	}
	return now.Sub(time.Unix(0, since))
}

// links are the connections watchLinks watches.
type links struct {
	zk, nats link
}

func newLinks() *links {
	return &links{zk: link{name: "zookeeper"}, nats: link{name: "nats"}}
}

func (ls *links) all() []*link { return []*link{&ls.zk, &ls.nats} }

// cutOffMS is how long l has been down, in milliseconds, for status.
func (l *link) cutOffMS() int64 { return l.cutOffFor(time.Now()).Milliseconds() }

// linkWatch is watchLinks' state of one link.
type linkWatch struct {
	l      *link
	state  func() (bool, string) // whether the link is up, and its state
	next   time.Time             // when to warn next while down
	wait   time.Duration         // the wait before next
	warned int                   // warnings since it went down
}

// watchLinks looks at the ZooKeeper session and the NATS connection until
// ctx ends, recording when each went down and warning about a link that
// stays down, on a backoff schedule. It stops before the server's clean
// stop closes both, so a stop warns about nothing.
func (s *Server) watchLinks(ctx context.Context) {
	ws := []*linkWatch{
		{l: &s.links.zk, state: func() (bool, string) { return s.zk.Connected(), s.zk.SessionState() }},
		{l: &s.links.nats, state: func() (bool, string) { st := s.natsState(); return st == "connected", st }},
	}
	tick := time.NewTicker(linkPoll)
	defer tick.Stop()
	for {
		now := time.Now()
		for _, w := range ws {
			s.checkLink(w, now)
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// checkLink updates w at now and logs what changed or is due.
func (s *Server) checkLink(w *linkWatch, now time.Time) {
	up, state := w.state()
	switch {
	case up && w.l.up():
	case up:
		down := w.l.cutOffFor(now)
		w.l.since.Store(0)
		if w.warned > 0 {
			s.log.Info(w.l.name+" reachable again", "link", w.l.name, "cut_off_for", down.Round(time.Millisecond).String())
		}
		w.warned = 0
	case w.l.up():
		w.l.since.Store(now.UnixNano())
		w.wait, w.next = firstCutOffWarning, now.Add(firstCutOffWarning)
	case !now.Before(w.next):
		down := w.l.cutOffFor(now)
		w.warned++
		s.metrics.cutOffWarns.WithLabelValues(w.l.name).Inc()
		s.log.Warn("cut off from "+w.l.name, "link", w.l.name, "state", state, "for", down.Round(time.Second).String(),
			"leader", s.isLeader(), "next_warning_in", nextCutOffWarning(w.wait).String())
		w.wait = nextCutOffWarning(w.wait)
		w.next = now.Add(w.wait)
	}
}

// forText is " for 12s" while the link is down and watchLinks noticed,
// for readiness reasons; "" otherwise.
func (l *link) forText() string {
	if d := l.cutOffFor(time.Now()); d > 0 {
		return " for " + d.Round(time.Second).String()
	}
	return ""
}
