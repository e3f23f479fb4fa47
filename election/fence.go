package election

import (
	"context"
	"errors"
	"fmt"

	"github.com/go-zookeeper/zk"
)

// ErrNotNext means Depose was refused: the znode named is not the
// smallest (the leader's), or this server's znode is not right after it.
var ErrNotNext = errors.New("not next in line after the leader")

// errZnodeGone is what a lease round trip of the leader reports when its
// own election znode no longer exists.
var errZnodeGone = errors.New("own election znode is gone")

// Depose removes the election znode leader, which must be the smallest,
// and the leader znode, on behalf of the server right after
// it in line: the caller has found the leader's process gone (see package
// failover) and takes over without waiting for ZooKeeper to expire the
// dead leader's session. Its own watch on that znode then fires, it finds
// itself the smallest and leads at a higher epoch.
//
// ZooKeeper lets any client with delete rights on the election path delete
// another session's ephemeral znode. If the leader was in fact alive, it
// learns of the deletion by its watch on its own znode (and its lease
// round trips check the znode too), stops acknowledging, and registers
// again at the back; whatever it still sends carries the old epoch, which
// every replica drops once it knows the new one.
//
// The caller must know leader is the leader's znode (the Term's
// Leader.Znode); Depose checks that this server watches it, i.e. is
// right after it. It returns nil when the znode is gone (deleted here or
// already), ErrNotNext when this server is not next in line after leader,
// and an error from ZooKeeper otherwise. It blocks for one ZooKeeper
// round trip (a multi), two when there is no leader znode.
func (e *Elector) Depose(ctx context.Context, leader string) error {
	e.mu.Lock()
	conn, me, connected, settled := e.conn, e.znode, e.connected, e.settled
	e.mu.Unlock()
	if conn == nil || !connected || !settled || me == "" {
		return fmt.Errorf("depose %s: no usable session or place in line: %w", leader, ErrNotNext)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("depose %s: %w", leader, err)
	}
	// The Term that made the caller probe said we watch leader; check it
	// still holds rather than listing the children again (a round trip
	// less on the way to leading). Deleting the wrong znode is refused
	// here, not by ZooKeeper.
	e.mu.Lock()
	watching := e.watching
	e.mu.Unlock()
	if watching != leader || e.seqOf(leader) >= e.seqOf(me) {
		return fmt.Errorf("depose %s as %s (watching %q): %w", leader, me, watching, ErrNotNext)
	}
	own := e.cfg.Path + "/" + leader
	// While the leader's election znode exists nobody else can lead, so
	// a leader znode there is the leader's own (or an older stale one):
	// both go in one multi, a single write. Without a leader znode the
	// multi fails as a whole and the election znode goes alone.
	_, err := conn.Multi(&zk.DeleteRequest{Path: e.cfg.LeaderPath, Version: -1}, &zk.DeleteRequest{Path: own, Version: -1})
	if err != nil {
		e.log.Debug("multi delete failed; deleting the election znode alone", "znode", own, "err", err)
		if err := conn.Delete(own, -1); err != nil && !errors.Is(err, zk.ErrNoNode) {
			return fmt.Errorf("depose: delete %s: %w", own, err)
		}
	}
	e.log.Warn("deposed a leader whose process is gone", "znode", own)
	return nil
}

// fenced marks the lease of znode invalid: a round trip found it deleted.
// The campaign's watch on the znode re-registers; until then, and even if
// that watch is late, this server acknowledges nothing.
func (e *Elector) fenced(znode string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.znode != znode || e.znodeGone {
		return
	}
	e.znodeGone = true
	e.log.Warn("own znode is gone: lease ended", "znode", e.cfg.Path+"/"+znode, "leading", e.leading)
}
