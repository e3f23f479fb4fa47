package election

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

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
	// Watching is the election znode just before ours, the one this server
	// watches ("" when it leads or has no place yet). When it is
	// Leader.Znode, this server is next in line.
	Watching string
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
	watching     string // the predecessor's znode name, "" when none
	// znodeGone is set when a lease round trip found our znode deleted
	// (another server deposed us); the lease stays invalid until we
	// register again.
	znodeGone bool
	leader    LeaderData
	last      Term
	lastOK    time.Time // send time of the newest round trip on znodeSession
	started   bool
	resigning bool // Resign was called: never register again
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
	// ask is the session timeout asked for, in nanoseconds (0: the
	// configured one); tick is ZooKeeper's tickTime as known (0: unknown).
	ask, tick atomic.Int64
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
// now: it holds the smallest znode, its session is connected, a round
// trip sent on the session its znode was created in succeeded less than
// half the session timeout ZooKeeper granted (SessionTimeout) ago, and no
// round trip found its znode deleted (Depose by the next in line). Check
// it before applying a write and again before replying.
func (e *Elector) LeaseValid() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leading && e.settled && e.connected && e.znodeSession != 0 && !e.znodeGone &&
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

	e.askFor(ctx)
	for {
		fresh, err := e.session(ctx)
		if !fresh {
			return err
		}
		e.log.Warn("ZooKeeper did not take this client back: starting over on a new connection (an emptied or replaced ZooKeeper refuses a client that has seen newer transactions)",
			"unreachable_for", e.stuckAfter().String())
	}
}

func (e *Elector) termLocked() Term {
	t := Term{Epoch: e.leader.Epoch, Leader: e.leader, Znode: e.znode}
	if e.settled && !e.leading {
		t.Watching = e.watching
	}
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
