package election

import (
	"context"
	"errors"
	"time"

	"github.com/go-zookeeper/zk"
)

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
// (go-zookeeper's own pings are invisible to us). A leader's round trip
// asks whether its own znode still exists: one deleted by the next in line
// (Depose) ends the lease, even if the watch on it is late.
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
		e.mu.Lock()
		own, leading := e.znode, e.leading
		e.mu.Unlock()
		target := e.cfg.Path
		if leading && own != "" {
			target += "/" + own
		}
		err := e.track(conn, func() error {
			ok, _, err := conn.Exists(target)
			if err == nil && !ok {
				return errZnodeGone
			}
			return err
		})
		if errors.Is(err, errZnodeGone) {
			e.fenced(own)
		}
	}
}
