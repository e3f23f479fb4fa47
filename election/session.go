package election

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkvstore/zkv/internal/retry"
)

// ZooKeeper clamps the session timeout a client asks for to [2, 20] ×
// its tickTime and says which it granted in the reply to the connect
// request. go-zookeeper uses that value but does not export it, so the
// Elector reads it from the wire: the connect reply is the first message
// on every connection, a 4-byte length, then protocolVersion and timeOut
// (milliseconds) as big-endian int32s.

// connectReplyHead is the length prefix, protocolVersion and timeOut.
const connectReplyHead = 12

// timeoutConn passes a connection to ZooKeeper through and reports the
// session timeout of the connect reply once, when its first bytes have
// been read. go-zookeeper reads each connection from one goroutine at a
// time, so Read needs no lock.
type timeoutConn struct {
	net.Conn
	head   [connectReplyHead]byte
	n      int
	report func(time.Duration)
}

func (c *timeoutConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.n < len(c.head) && n > 0 {
		c.n += copy(c.head[c.n:], p[:n])
		if c.n == len(c.head) {
			if ms := int32(binary.BigEndian.Uint32(c.head[8:12])); ms > 0 {
				c.report(time.Duration(ms) * time.Millisecond)
			}
		}
	}
	return n, err
}

// dial is the Elector's zk.Dialer: a TCP connection that reports the
// negotiated session timeout to setNegotiated.
func (e *Elector) dial(network, address string, timeout time.Duration) (net.Conn, error) {
	c, err := net.DialTimeout(network, address, timeout)
	if err != nil {
		return nil, err
	}
	return &timeoutConn{Conn: c, report: e.setNegotiated}, nil
}

// setNegotiated records the session timeout ZooKeeper granted and logs it
// (as a warning when it differs from the one asked for).
func (e *Elector) setNegotiated(d time.Duration) {
	if old := time.Duration(e.negotiated.Swap(int64(d))); old == d {
		return
	}
	ask := e.asked()
	if d != ask {
		e.log.Warn("ZooKeeper negotiated a different session timeout; the lease follows it",
			"requested", e.cfg.SessionTimeout, "asked", ask, "negotiated", d, "lease", d/2, "lease_interval", e.leaseInterval())
		return
	}
	e.log.Info("ZooKeeper session timeout", "requested", e.cfg.SessionTimeout, "asked", ask, "negotiated", d,
		"tick", time.Duration(e.tick.Load()), "lease", d/2, "lease_interval", e.leaseInterval())
}

// asked is the session timeout the Elector asks ZooKeeper for: the one
// configured, less the tick rounding (see askFor).
func (e *Elector) asked() time.Duration {
	if d := e.ask.Load(); d > 0 {
		return time.Duration(d)
	}
	return e.cfg.SessionTimeout
}

// tickProbe is the session timeout the tick probe asks for: below any
// minimum, so ZooKeeper grants its minSessionTimeout (2 × tickTime unless
// configured otherwise).
const tickProbe = 100 * time.Millisecond

// askFor sets the session timeout to ask for. ZooKeeper expires sessions
// in buckets of tickTime: a session dies at the first tick boundary at or
// after the timeout has passed since the client was last heard, so up to
// a tick late (measured: 3-14 % past the timeout at a 200 ms tick). Asking
// for the configured timeout less one tick (one and a half with several
// servers; at most a quarter of it) makes a crashed leader's session
// expire within the configured timeout. The
// tick is Config.TickTime, or learned from a first session that asks for
// less than any minimum: ZooKeeper grants its minimum, 2 × tickTime by
// default (a larger configured minimum only makes the estimate, and so the
// margin, larger).
func (e *Elector) askFor(ctx context.Context) {
	tick := e.cfg.TickTime
	if tick == 0 {
		tick = e.learnTick(ctx)
	}
	if tick <= 0 {
		return
	}
	e.tick.Store(int64(tick))
	adjust := tick
	if len(e.cfg.Servers) > 1 {
		// In an ensemble the leader expires sessions, and learns that a
		// follower's clients were heard from its answers to the leader's
		// pings, every half tick: another half tick late.
		adjust += tick / 2
	}
	e.ask.Store(int64(e.cfg.SessionTimeout - min(adjust, e.cfg.SessionTimeout/4)))
}

// learnTick opens a short session asking for tickProbe and returns half
// the timeout granted, or 0 if ZooKeeper does not answer within the
// configured session timeout.
func (e *Elector) learnTick(ctx context.Context) time.Duration {
	got := make(chan time.Duration, 1)
	dial := func(network, address string, timeout time.Duration) (net.Conn, error) {
		c, err := net.DialTimeout(network, address, timeout)
		if err != nil {
			return nil, err
		}
		return &timeoutConn{Conn: c, report: func(d time.Duration) {
			select {
			case got <- d:
			default:
			}
		}}, nil
	}
	// Its few events fill the channel and go-zookeeper drops the rest;
	// nothing needs them.
	conn, _, err := zk.Connect(e.cfg.Servers, tickProbe, zk.WithLogger(zkLogger{e.log}), zk.WithLogInfo(false), zk.WithDialer(dial))
	if err != nil {
		return 0
	}
	defer conn.Close()
	t := time.NewTimer(e.cfg.SessionTimeout)
	defer t.Stop()
	select {
	case d := <-got:
		return d / 2
	case <-t.C:
	case <-ctx.Done():
	case <-e.stop:
	}
	return 0
}

// SessionTimeout returns the session timeout ZooKeeper granted in the
// latest connect handshake, or, before the first, the one asked for
// (Config.SessionTimeout less the tick rounding). The lease is valid for half of it. Safe for concurrent use.
func (e *Elector) SessionTimeout() time.Duration {
	if d := e.negotiated.Load(); d > 0 {
		return time.Duration(d)
	}
	return e.asked()
}

// leaseInterval is Config.LeaseInterval scaled by the negotiated session
// timeout over the requested one, so it keeps its share of the session
// (a tenth by default) and stays below half of the session timeout.
func (e *Elector) leaseInterval() time.Duration {
	st := e.SessionTimeout()
	if st == e.cfg.SessionTimeout || e.cfg.SessionTimeout <= 0 {
		return e.cfg.LeaseInterval
	}
	return time.Duration(float64(e.cfg.LeaseInterval) * float64(st) / float64(e.cfg.SessionTimeout))
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
	conn, events, err := zk.Connect(e.cfg.Servers, e.asked(),
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
	// ctx ends when Resign closes e.stop (see session); a stop is not an
	// error.
	_ = retry.Do(ctx, retry.ZooKeeper, func() error {
		return conn.AddAuth("digest", []byte(e.cfg.Auth))
	}, func(err error, d time.Duration) {
		e.log.Warn("ZooKeeper auth failed, retrying", "err", err, "retry_in", d)
	})
	return nil
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

// zkLogger sends go-zookeeper's own messages to slog at debug level.
type zkLogger struct{ log *slog.Logger }

func (l zkLogger) Printf(format string, args ...any) {
	l.log.Debug("zookeeper client: " + fmt.Sprintf(format, args...))
}
