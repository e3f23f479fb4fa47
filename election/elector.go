package election

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/go-zookeeper/zk"
)

// Sentinel errors. Callers branch on them with errors.Is.
var (
	// ErrNotLeader means the call needs this Elector to lead and it does not.
	ErrNotLeader = errors.New("not the leader")
	// ErrDeposed means the leader znode names a higher epoch than ours.
	ErrDeposed = errors.New("a newer leader exists")
	// ErrClosed means the Elector has stopped (Run returned or Resign was called).
	ErrClosed = errors.New("elector closed")
)

// Role is a server's place in the election.
type Role int

// The roles, as Term reports them.
const (
	// RoleCandidate: registering, or registered while no leader is known.
	RoleCandidate Role = iota
	// RoleFollower: registered, and a leader is known from the leader znode.
	RoleFollower
	// RoleLeader: this server's znode is the smallest.
	RoleLeader
	// RoleDisconnected: the ZooKeeper session is not usable right now.
	RoleDisconnected
)

func (r Role) String() string {
	switch r {
	case RoleCandidate:
		return "candidate"
	case RoleFollower:
		return "follower"
	case RoleLeader:
		return "leader"
	case RoleDisconnected:
		return "disconnected"
	}
	return fmt.Sprintf("role(%d)", int(r))
}

// Term is the Elector's view of the election at one moment.
type Term struct {
	Role Role
	// Epoch is this server's sequence number when it leads, otherwise the
	// epoch published in the leader znode (0 when none is known).
	Epoch uint64
	// Leader is the content of the leader znode (zero when there is none).
	// When Role is RoleLeader it describes this server once Announce ran.
	Leader LeaderData
	// Znode is this server's election znode name ("" before registration).
	Znode string
}

// Elector takes part in a ZooKeeper leader election. Create it with New and
// start it with Run. All methods are safe for concurrent use.
type Elector struct {
	cfg   Config
	log   *slog.Logger
	token string

	leadership chan Term
	stop       chan struct{}
	stopOnce   sync.Once
	done       chan struct{}

	mu           sync.Mutex
	conn         *zk.Conn
	state        zk.State
	connected    bool
	changed      chan struct{} // closed and replaced on every session event
	settled      bool          // the loop has placed us since the last session event
	znode        string
	seq          int64
	znodeSession int64
	lostCreate   bool
	leading      bool
	leader       LeaderData
	last         Term
	lastOK       time.Time // send time of the newest round trip on znodeSession
	started      bool
	resigning    bool // Resign was called: never register again
	// announcedSession and announcedVersion identify the leader znode this
	// server published (session 0: none), so a resign deletes it without
	// reading it first.
	announcedSession int64
	announcedVersion int32
	// holdEvents, a test hook, makes onEvent ignore session events, so a
	// test can show the lease alone stopping a leader.
	holdEvents bool
	members    map[string]string // election znode name -> server ID
	// negotiated is the session timeout ZooKeeper granted in the latest
	// connect handshake, in nanoseconds (0: none yet).
	negotiated atomic.Int64
	// gen numbers the connections Run made; events of older ones are
	// ignored. unusableSince is when the session last stopped being usable
	// (or the connection was made).
	gen           atomic.Uint64
	unusableSince time.Time

	// The cluster record (see Record): the newest copy, what is wrong
	// with it, the session it was last checked in, and recordReady, closed
	// once a usable copy is known.
	record        Record
	recordProblem string
	recordSession int64
	recordReady   chan struct{}
	recordOnce    sync.Once
}

// New checks cfg, fills in defaults and returns an Elector that has not yet
// connected.
func New(cfg Config) (*Elector, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("election config: %w", err)
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("election token: %w", err)
	}
	return &Elector{
		cfg:        cfg,
		log:        cfg.Logger.With("component", "election"),
		token:      hex.EncodeToString(b[:]),
		leadership: make(chan Term, 1),
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
		changed:    make(chan struct{}),

		recordReady: make(chan struct{}),
	}, nil
}

// Leadership delivers the Elector's Term whenever it changes. The channel
// holds one Term and the newest wins: a slow reader skips intermediate
// terms but always sees the last one. It is never closed.
func (e *Elector) Leadership() <-chan Term { return e.leadership }

// Current returns the latest Term.
func (e *Elector) Current() Term {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.termLocked()
}

// Connected reports whether the ZooKeeper session is usable now.
func (e *Elector) Connected() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.connected
}

// SessionState is the last ZooKeeper session state seen, for status output.
func (e *Elector) SessionState() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	switch e.state {
	case zk.StateHasSession:
		return "connected"
	case zk.StateExpired:
		return "expired"
	case zk.StateConnecting, zk.StateConnected:
		return "connecting"
	}
	return "disconnected"
}

// LeaseValid reports whether this server leads and may acknowledge a write
// now: it holds the smallest znode, its session is connected, and a round
// trip sent on the session its znode was created in succeeded less than
// half the session timeout ZooKeeper granted (SessionTimeout) ago. Check
// it before applying a write and again before replying.
func (e *Elector) LeaseValid() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leading && e.settled && e.connected && e.znodeSession != 0 &&
		time.Since(e.lastOK) < e.SessionTimeout()/2
}

// Run connects to ZooKeeper and takes part in the election until ctx is
// done or Resign is called. It returns nil after a clean stop. With
// Config.Auth set it first checks the ACLs of the election path and the
// leader's parent, fixing open ones, and returns an error wrapping
// ErrOpenACL if it cannot. On return the session is closed, which deletes
// this server's ephemeral znodes. Run may be called once.
func (e *Elector) Run(ctx context.Context) error {
	e.mu.Lock()
	if e.started {
		e.mu.Unlock()
		return errors.New("election: Run called twice")
	}
	e.started = true
	e.mu.Unlock()
	defer close(e.done)

	for {
		fresh, err := e.session(ctx)
		if !fresh {
			return err
		}
		e.log.Warn("ZooKeeper did not take this client back: starting over on a new connection (an emptied or replaced ZooKeeper refuses a client that has seen newer transactions)",
			"unreachable_for", e.stuckAfter().String())
	}
}

// stuckAfter is how long the session may be unusable before session gives
// up the connection for a new one: twice the session timeout, by when
// ZooKeeper has expired the session anyway.
func (e *Elector) stuckAfter() time.Duration { return max(2*e.cfg.SessionTimeout, 2*time.Second) }

// session takes part in the election over one ZooKeeper connection until
// ctx ends, Resign is called, or the connection stays unusable for
// stuckAfter, in which case it returns fresh=true so Run dials again with
// no memory of the old server's transactions.
func (e *Elector) session(ctx context.Context) (fresh bool, err error) {
	gen := e.gen.Add(1)
	conn, events, err := zk.Connect(e.cfg.Servers, e.cfg.SessionTimeout,
		zk.WithLogger(zkLogger{e.log}), zk.WithLogInfo(false),
		zk.WithEventCallback(func(ev zk.Event) { e.onEvent(gen, ev) }), zk.WithDialer(e.dial))
	if err != nil {
		return false, fmt.Errorf("connect to ZooKeeper %s: %w", strings.Join(e.cfg.Servers, ","), err)
	}
	e.mu.Lock()
	e.conn = conn
	e.unusableSince = time.Now()
	e.mu.Unlock()

	var wg sync.WaitGroup
	goFunc := func(f func()) {
		wg.Add(1)
		go func() { defer wg.Done(); f() }()
	}
	loopCtx, cancel := context.WithCancel(ctx)
	// go-zookeeper drops session events when its small channel is full: drain
	// it for the whole life of the connection. The callback has already
	// acted on each event; the channel closes when the connection does.
	goFunc(func() {
		for range events {
		}
	})
	goFunc(func() {
		select {
		case <-loopCtx.Done():
		case <-e.stop:
			cancel()
		}
	})
	var stuck atomic.Bool
	goFunc(func() {
		if e.waitStuck(loopCtx) {
			stuck.Store(true)
			cancel()
			conn.Close() // ends calls waiting for a connection
		}
	})
	err = e.addAuth(loopCtx, conn)
	if err == nil {
		err = e.protect(loopCtx, conn)
	}
	if err == nil && loopCtx.Err() == nil {
		goFunc(func() { e.leaseLoop(loopCtx, conn) })
		goFunc(func() { e.watchLeader(loopCtx, conn) })
		goFunc(func() { e.watchMembers(loopCtx, conn) })
		err = e.campaign(loopCtx, conn)
	}
	failed := err != nil && loopCtx.Err() == nil // not just stopped
	cancel()
	conn.Close()
	wg.Wait()
	e.mu.Lock()
	e.leading, e.connected, e.znode, e.znodeSession, e.settled = false, false, "", 0, false
	e.emitLocked()
	resigning := e.resigning
	e.mu.Unlock()
	if stuck.Load() && ctx.Err() == nil && !resigning {
		return true, nil
	}
	if failed {
		return false, err
	}
	return false, nil
}

// waitStuck reports true once the session has been unusable for
// stuckAfter, or false when ctx ends.
func (e *Elector) waitStuck(ctx context.Context) bool {
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
		e.mu.Lock()
		stuck := !e.connected && time.Since(e.unusableSince) > e.stuckAfter()
		e.mu.Unlock()
		if stuck {
			return true
		}
	}
}

// addAuth adds the digest credentials before anything is created, retrying
// while ZooKeeper is unreachable. go-zookeeper sends them again after every
// reconnect.
func (e *Elector) addAuth(ctx context.Context, conn *zk.Conn) error {
	if e.cfg.Auth == "" {
		return nil
	}
	retry := newBackoff()
	for {
		err := conn.AddAuth("digest", []byte(e.cfg.Auth))
		if err == nil {
			return nil
		}
		d := retry.NextBackOff()
		e.log.Warn("ZooKeeper auth failed, retrying", "err", err, "retry_in", d)
		select {
		case <-ctx.Done():
			return nil
		case <-e.stop:
			return nil
		case <-time.After(d):
		}
	}
}

// Resign gives up leadership and candidacy: it deletes the leader znode (if
// this server published it) and its election znode, then closes the
// session, so a successor takes over at once. It waits for Run to return or
// ctx to end.
func (e *Elector) Resign(ctx context.Context) error {
	e.mu.Lock()
	conn, znode, sid, wasLeader, connected := e.conn, e.znode, e.znodeSession, e.leading, e.connected
	e.leading, e.resigning = false, true
	e.emitLocked()
	e.mu.Unlock()
	defer e.stopOnce.Do(func() { close(e.stop) })
	var errs []error
	if conn != nil && connected && znode != "" {
		if err := e.deleteOwn(conn, znode, sid, wasLeader); err != nil {
			errs = append(errs, err)
		} else {
			e.log.Info("resigned: deleted znode", "znode", e.cfg.Path+"/"+znode, "was_leader", wasLeader)
		}
	}
	e.stopOnce.Do(func() { close(e.stop) })
	e.mu.Lock()
	started := e.started
	e.mu.Unlock()
	if started {
		select {
		case <-e.done:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("resign: waiting for the election to stop: %w", ctx.Err()))
		}
	}
	return errors.Join(errs...)
}

func (e *Elector) setAnnounced(sid int64, version int32) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.announcedSession, e.announcedVersion = sid, version
}

// deleteOwn deletes this server's election znode and, if it published it
// in session sid, the leader znode: in one ZooKeeper round trip (a multi)
// when the leader znode is known, so a handover costs as little as it can.
func (e *Elector) deleteOwn(conn *zk.Conn, znode string, sid int64, wasLeader bool) error {
	own := e.cfg.Path + "/" + znode
	e.mu.Lock()
	announced, version := e.announcedSession == sid && sid != 0, e.announcedVersion
	e.announcedSession = 0
	e.mu.Unlock()
	if wasLeader && announced {
		_, err := conn.Multi(&zk.DeleteRequest{Path: e.cfg.LeaderPath, Version: version}, &zk.DeleteRequest{Path: own, Version: -1})
		if err == nil {
			return nil
		}
		e.log.Debug("multi delete failed; deleting the election znode alone", "err", err)
	}
	if err := conn.Delete(own, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
		return fmt.Errorf("delete %s: %w", own, err)
	}
	return nil
}

// Requeue gives up this server's place in the line: it deletes its
// election znode (and the leader znode, if it published it), and the
// election registers a new znode at the back. A server that must not lead
// (its copy is stale) uses it to let the next one take over.
func (e *Elector) Requeue(ctx context.Context) error {
	e.mu.Lock()
	conn, znode, sid, wasLeader := e.conn, e.znode, e.znodeSession, e.leading
	e.leading, e.settled = false, false
	e.emitLocked()
	e.mu.Unlock()
	if conn == nil || znode == "" {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("requeue: %w", err)
	}
	if err := e.deleteOwn(conn, znode, sid, wasLeader); err != nil {
		return fmt.Errorf("requeue: %w", err)
	}
	e.log.Info("requeued: deleted znode, registering at the back", "znode", e.cfg.Path+"/"+znode)
	return nil
}

// Announce publishes the leader znode with data, once this server leads
// and is ready for writes. data.Epoch must be this server's epoch. A stale
// leader znode left by an older epoch is replaced; one naming a higher
// epoch yields ErrDeposed.
func (e *Elector) Announce(ctx context.Context, data LeaderData) error {
	e.mu.Lock()
	conn, leading, epoch, sid := e.conn, e.leading, e.epochOfLocked(e.seq), e.znodeSession
	e.mu.Unlock()
	if conn == nil || !leading || data.Epoch != epoch {
		return fmt.Errorf("announce epoch %d: %w", data.Epoch, ErrNotLeader)
	}
	b, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("announce: %w", err)
	}
	if parent := path.Dir(e.cfg.LeaderPath); parent != "/" {
		if err := e.ensurePath(conn, parent); err != nil {
			return fmt.Errorf("announce: %w", err)
		}
	}
	for attempt := 0; attempt < 5; attempt++ {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("announce epoch %d: %w", data.Epoch, err)
		}
		_, err := conn.Create(e.cfg.LeaderPath, b, zk.FlagEphemeral, e.cfg.acl())
		if err == nil {
			e.setAnnounced(sid, 0)
			e.log.Info("announced leadership", "path", e.cfg.LeaderPath, "epoch", data.Epoch)
			return nil
		}
		if !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("announce: create %s: %w", e.cfg.LeaderPath, err)
		}
		old, stat, err := conn.Get(e.cfg.LeaderPath)
		if errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			return fmt.Errorf("announce: read %s: %w", e.cfg.LeaderPath, err)
		}
		od, _ := decodeLeader(old)
		switch {
		case od.Epoch > data.Epoch:
			return fmt.Errorf("announce epoch %d: leader znode has epoch %d: %w", data.Epoch, od.Epoch, ErrDeposed)
		case stat.EphemeralOwner == sid:
			st, err := conn.Set(e.cfg.LeaderPath, b, stat.Version)
			if err != nil && !errors.Is(err, zk.ErrBadVersion) {
				return fmt.Errorf("announce: update %s: %w", e.cfg.LeaderPath, err)
			}
			if err == nil {
				e.setAnnounced(sid, st.Version)
			}
			return nil
		default:
			e.log.Warn("replacing stale leader znode", "old_leader", od.ID, "old_epoch", od.Epoch, "epoch", data.Epoch)
			if err := conn.Delete(e.cfg.LeaderPath, stat.Version); err != nil && !errors.Is(err, zk.ErrNoNode) && !errors.Is(err, zk.ErrBadVersion) {
				return fmt.Errorf("announce: delete stale %s: %w", e.cfg.LeaderPath, err)
			}
		}
	}
	return fmt.Errorf("announce epoch %d: leader znode keeps changing", data.Epoch)
}

// onEvent runs on go-zookeeper's goroutine for every event; it must not block.
// Events of a connection given up (gen is not the newest) are ignored.
func (e *Elector) onEvent(gen uint64, ev zk.Event) {
	if ev.Type != zk.EventSession || gen != e.gen.Load() {
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.holdEvents {
		return
	}
	prev := e.state
	e.state = ev.State
	wasConnected := e.connected
	e.connected = ev.State == zk.StateHasSession
	if wasConnected && !e.connected {
		e.unusableSince = time.Now()
	}
	switch ev.State {
	case zk.StateHasSession:
		// The session may be the old one (our znode lives) or a new one after
		// an expiry: the loop must look before we lead again.
		e.settled = false
		if !wasConnected {
			e.log.Info("session connected", "server", ev.Server)
		}
	case zk.StateDisconnected:
		if wasConnected {
			if e.leading {
				e.log.Warn("session disconnected: stepped down", "epoch", e.epochOfLocked(e.seq))
			} else {
				e.log.Warn("session disconnected", "server", ev.Server)
			}
		}
	case zk.StateExpired:
		if e.znode != "" {
			e.log.Warn("session expired: znode is gone, registering again", "znode", e.znode)
		}
		e.znode, e.znodeSession, e.leading, e.settled = "", 0, false, false
	}
	if prev != ev.State {
		close(e.changed)
		e.changed = make(chan struct{})
	}
	e.emitLocked()
}

// sessionChanged returns a channel closed at the next session event.
func (e *Elector) sessionChanged() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.changed
}

// waitConnected blocks until the session is usable or ctx ends.
func (e *Elector) waitConnected(ctx context.Context) error {
	for {
		e.mu.Lock()
		ok, ch := e.connected, e.changed
		e.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ch:
		}
	}
}

func (e *Elector) termLocked() Term {
	t := Term{Epoch: e.leader.Epoch, Leader: e.leader, Znode: e.znode}
	switch {
	case !e.connected:
		t.Role = RoleDisconnected
	case e.leading && e.settled:
		t.Role = RoleLeader
		t.Epoch = e.epochOfLocked(e.seq)
	case e.znode != "" && e.settled && e.leader.ID != "":
		t.Role = RoleFollower
	default:
		t.Role = RoleCandidate
	}
	return t
}

// emitLocked offers the current Term on the leadership channel, replacing an
// unread older one. Every sender holds e.mu, so the send never blocks.
func (e *Elector) emitLocked() {
	t := e.termLocked()
	if t == e.last {
		return
	}
	e.last = t
	select {
	case <-e.leadership:
	default:
	}
	e.leadership <- t
}

// track runs one ZooKeeper round trip and, if it succeeded on the session
// this server's znode lives in, records its send time for the lease.
func (e *Elector) track(conn *zk.Conn, f func() error) error {
	sent := time.Now()
	sid := conn.SessionID()
	err := f()
	if err == nil && sid != 0 && conn.SessionID() == sid {
		e.mu.Lock()
		if sid == e.znodeSession && sent.After(e.lastOK) {
			e.lastOK = sent
		}
		e.mu.Unlock()
	}
	return err
}

// leaseLoop makes a light round trip every lease interval (LeaseInterval,
// scaled to the negotiated session timeout) to keep the lease fresh
// (go-zookeeper's own pings are invisible to us).
func (e *Elector) leaseLoop(ctx context.Context, conn *zk.Conn) {
	t := time.NewTimer(e.leaseInterval())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		t.Reset(e.leaseInterval())
		if !e.Connected() {
			continue
		}
		_ = e.track(conn, func() error {
			_, _, err := conn.Exists(e.cfg.Path)
			return err
		})
	}
}

// campaign is the election loop: register, find our place, lead or watch
// the predecessor, and start again whenever something changes.
func (e *Elector) campaign(ctx context.Context, conn *zk.Conn) error {
	retry := newBackoff()
	for {
		if err := e.waitConnected(ctx); err != nil {
			return err
		}
		changed := e.sessionChanged()
		watch, again, err := e.step(conn)
		var delay <-chan time.Time
		switch {
		case errors.Is(err, ErrClosed):
			<-ctx.Done() // resigning: wait for Resign to stop us
			return ctx.Err()
		case err != nil:
			if ctx.Err() != nil {
				return ctx.Err()
			}
			d := retry.NextBackOff()
			e.log.Warn("election step failed, retrying", "err", err, "retry_in", d)
			delay = time.After(d)
		case again:
			retry.Reset()
			continue
		default:
			retry.Reset()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-changed:
		case <-watch:
		case <-delay:
		}
	}
}

// step registers if needed, lists the children and leads or watches the
// predecessor. It returns the watch that fires when the position may have
// changed, or again=true when the loop should look again at once.
func (e *Elector) step(conn *zk.Conn) (watch <-chan zk.Event, again bool, err error) {
	if err := e.ensureRegistered(conn); err != nil {
		return nil, false, err
	}
	e.mu.Lock()
	me := e.znode
	e.mu.Unlock()

	var children []string
	err = e.track(conn, func() (err error) {
		children, _, err = conn.Children(e.cfg.Path)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("list %s: %w", e.cfg.Path, err)
	}
	sorted := Sort(children)
	pred, hasPred, found := Predecessor(sorted, me)
	if !found {
		e.mu.Lock()
		if e.znode == me {
			e.log.Warn("own znode is gone, registering again", "znode", me)
			e.znode, e.znodeSession, e.leading = "", 0, false
			e.emitLocked()
		}
		e.mu.Unlock()
		return nil, true, nil
	}

	watched := me // the leader watches its own znode, to notice a deletion
	if hasPred {
		watched = pred.Name
	}
	var exists bool
	var ch <-chan zk.Event
	err = e.track(conn, func() (err error) {
		exists, _, ch, err = conn.ExistsW(e.cfg.Path + "/" + watched)
		return err
	})
	if err != nil {
		return nil, false, fmt.Errorf("watch %s/%s: %w", e.cfg.Path, watched, err)
	}
	if !exists {
		return nil, true, nil
	}

	e.mu.Lock()
	if e.znode != me {
		e.mu.Unlock()
		return nil, true, nil
	}
	wasLeading, wasSettled := e.leading, e.settled
	e.leading, e.settled = !hasPred, true
	e.emitLocked()
	e.mu.Unlock()
	switch {
	case !hasPred && (!wasLeading || !wasSettled):
		e.log.Info("elected leader", "epoch", e.epochOf(e.seqOf(me)), "znode", e.cfg.Path+"/"+me, "candidates", len(sorted))
	case hasPred && (wasLeading || !wasSettled):
		e.log.Info("following", "leader_znode", sorted[0].Name, "watching", pred.Name, "znode", me)
	}
	return ch, false, nil
}

func (e *Elector) seqOf(name string) int64 {
	n, _ := ParseSeq(name)
	return n
}

// ensureRegistered creates our znode unless one created in the current
// session exists. After an ambiguous failure it first looks for a znode
// carrying our token, so a create whose reply was lost is not repeated.
func (e *Elector) ensureRegistered(conn *zk.Conn) error {
	e.mu.Lock()
	znode, sid, lost, resigning := e.znode, e.znodeSession, e.lostCreate, e.resigning
	e.mu.Unlock()
	if resigning {
		return ErrClosed
	}
	cur := conn.SessionID()
	if znode != "" && sid == cur {
		return nil
	}
	if znode != "" {
		e.log.Warn("session changed: znode belonged to the old session", "znode", znode)
	}
	if err := e.ensurePath(conn, e.cfg.Path); err != nil {
		return err
	}
	if err := e.checkRecord(conn, cur); err != nil {
		return err
	}
	if lost {
		name, err := e.findOwn(conn, cur)
		if err != nil {
			return err
		}
		if name != "" {
			e.adopt(name, cur, "found own znode after a lost reply")
			return nil
		}
	}
	data, err := json.Marshal(NodeData{ID: e.cfg.ID, Addr: e.cfg.Addr, Token: e.token})
	if err != nil {
		return fmt.Errorf("encode znode data: %w", err)
	}
	var created string
	err = e.track(conn, func() (err error) {
		created, err = conn.Create(e.cfg.Path+"/"+Prefix, data, zk.FlagEphemeral|zk.FlagSequence, e.cfg.acl())
		return err
	})
	if err != nil || conn.SessionID() != cur {
		// The create may have happened even though its reply was lost.
		e.mu.Lock()
		e.lostCreate = true
		e.mu.Unlock()
		if err == nil {
			err = errors.New("session changed during create")
		}
		return fmt.Errorf("register under %s: %w", e.cfg.Path, err)
	}
	e.adopt(created[strings.LastIndex(created, "/")+1:], cur, "registered")
	return nil
}

func (e *Elector) adopt(name string, sid int64, msg string) {
	seq, _ := ParseSeq(name)
	e.mu.Lock()
	e.znode, e.seq, e.znodeSession, e.lostCreate, e.leading, e.settled = name, seq, sid, false, false, false
	e.lastOK = time.Time{}
	e.emitLocked()
	e.mu.Unlock()
	e.log.Info(msg+" "+e.cfg.Path+"/"+name, "znode", e.cfg.Path+"/"+name, "seq", seq)
}

// findOwn returns the name of the child carrying our token and owned by
// session sid, deleting any that an older session of ours left behind.
func (e *Elector) findOwn(conn *zk.Conn, sid int64) (string, error) {
	children, _, err := conn.Children(e.cfg.Path)
	if err != nil {
		return "", fmt.Errorf("list %s: %w", e.cfg.Path, err)
	}
	found := ""
	for _, c := range Sort(children) {
		b, stat, err := conn.Get(e.cfg.Path + "/" + c.Name)
		if errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("read %s/%s: %w", e.cfg.Path, c.Name, err)
		}
		var d NodeData
		if json.Unmarshal(b, &d) != nil || d.Token != e.token {
			continue
		}
		if stat.EphemeralOwner == sid && found == "" {
			found = c.Name
			continue
		}
		e.log.Warn("deleting a duplicate of our znode (older session or lost reply)", "znode", c.Name)
		if err := conn.Delete(e.cfg.Path+"/"+c.Name, stat.Version); err != nil && !errors.Is(err, zk.ErrNoNode) {
			return "", fmt.Errorf("delete %s/%s: %w", e.cfg.Path, c.Name, err)
		}
	}
	return found, nil
}

// ensurePath creates p and its parents as persistent znodes if missing.
func (e *Elector) ensurePath(conn *zk.Conn, p string) error {
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	cur := ""
	for _, part := range parts {
		cur += "/" + part
		_, err := conn.Create(cur, nil, 0, e.cfg.acl())
		if err != nil && !errors.Is(err, zk.ErrNodeExists) {
			return fmt.Errorf("create %s: %w", cur, err)
		}
	}
	return nil
}

// watchLeader follows the leader znode for the life of the connection, so
// every server learns each new epoch.
func (e *Elector) watchLeader(ctx context.Context, conn *zk.Conn) {
	e.watchLoop(ctx, func() (<-chan zk.Event, error) {
		for {
			data, _, ch, err := conn.GetW(e.cfg.LeaderPath)
			if err == nil {
				if d, derr := decodeLeader(data); derr != nil {
					e.log.Warn("ignoring unreadable leader znode", "err", derr)
				} else {
					e.setLeader(d)
				}
				return ch, nil
			}
			if !errors.Is(err, zk.ErrNoNode) {
				return nil, err
			}
			exists, _, ch, err := conn.ExistsW(e.cfg.LeaderPath)
			if err != nil {
				return nil, err
			}
			if !exists {
				e.setLeader(LeaderData{})
				return ch, nil
			}
			// Created in between: read it.
		}
	})
}

// watchMembers keeps e.members in step with the election path's children.
// The path may not exist yet (the campaign creates it): the loop retries.
func (e *Elector) watchMembers(ctx context.Context, conn *zk.Conn) {
	e.watchLoop(ctx, func() (<-chan zk.Event, error) {
		children, _, ch, err := conn.ChildrenW(e.cfg.Path)
		if err != nil {
			return nil, err
		}
		return ch, e.updateMembers(conn, children)
	})
}

// watchLoop runs arm, which reads something and sets a one-shot watch on
// it, again each time the watch fires, for the life of the connection;
// while the session is down it waits, and after an error it backs off.
func (e *Elector) watchLoop(ctx context.Context, arm func() (<-chan zk.Event, error)) {
	retry := newBackoff()
	for {
		if e.waitConnected(ctx) != nil {
			return
		}
		ch, err := arm()
		wait := ch
		var delay <-chan time.Time
		if err != nil {
			wait, delay = nil, time.After(retry.NextBackOff())
		} else {
			retry.Reset()
		}
		select {
		case <-ctx.Done():
			return
		case <-wait:
		case <-delay:
		}
	}
}

// Members returns the IDs of the servers registered in the election now
// (this one included once registered), sorted, as last seen by a watch on
// the election path. A server whose session ZooKeeper has not yet expired
// is still a member.
func (e *Elector) Members() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	seen := make(map[string]bool, len(e.members))
	ids := make([]string, 0, len(e.members))
	for _, id := range e.members {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// updateMembers reads the data of new children and forgets departed ones.
func (e *Elector) updateMembers(conn *zk.Conn, children []string) error {
	e.mu.Lock()
	known := make(map[string]string, len(e.members))
	for k, v := range e.members {
		known[k] = v
	}
	e.mu.Unlock()
	next := make(map[string]string, len(children))
	for _, c := range Sort(children) {
		if id, ok := known[c.Name]; ok {
			next[c.Name] = id
			continue
		}
		b, _, err := conn.Get(e.cfg.Path + "/" + c.Name)
		if errors.Is(err, zk.ErrNoNode) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read %s/%s: %w", e.cfg.Path, c.Name, err)
		}
		var d NodeData
		if json.Unmarshal(b, &d) == nil && d.ID != "" {
			next[c.Name] = d.ID
		}
	}
	e.mu.Lock()
	e.members = next
	e.mu.Unlock()
	return nil
}

func (e *Elector) setLeader(d LeaderData) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if d == e.leader {
		return
	}
	e.leader = d
	if d.ID == "" {
		e.log.Info("no leader published", "path", e.cfg.LeaderPath)
	} else {
		e.log.Info("leader is "+d.ID, "leader", d.ID, "epoch", d.Epoch)
	}
	e.emitLocked()
}

// zkLogger sends go-zookeeper's own messages to slog at debug level.
type zkLogger struct{ log *slog.Logger }

func (l zkLogger) Printf(format string, args ...any) {
	l.log.Debug("zookeeper client: " + fmt.Sprintf(format, args...))
}

// newBackoff returns the retry policy of the election loops: exponential
// from 50ms to 1s with jitter, never giving up.
func newBackoff() *backoff.ExponentialBackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 50 * time.Millisecond
	b.MaxInterval = time.Second
	b.MaxElapsedTime = 0
	b.Reset()
	return b
}
