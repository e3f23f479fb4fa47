package election

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"

	"github.com/go-zookeeper/zk"
)

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
