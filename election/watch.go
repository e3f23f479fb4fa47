package election

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkvstore/zkv/internal/retry"
)

// campaign is the election loop: register, find our place, lead or watch
// the predecessor, and start again whenever something changes.
//
// It pauses itself with the ZooKeeper retry policy instead of calling
// retry.Do: a failed step waits for the pause, a session event or the
// watch, whichever comes first, and a step never "succeeds" for good.
func (e *Elector) campaign(ctx context.Context, conn *zk.Conn) error {
	pause := retry.ZooKeeper.Backoff()
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
			d := pause.NextBackOff()
			e.log.Warn("election step failed, retrying", "err", err, "retry_in", d)
			delay = time.After(d)
		case again:
			pause.Reset()
			continue
		default:
			pause.Reset()
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
	e.watching = ""
	if hasPred {
		e.watching = pred.Name
	}
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

// watchLoop runs arm, which reads something and sets a one-shot watch on
// it, again each time the watch fires, for the life of the connection;
// while the session is down it waits, and after an error it backs off.
// Like campaign it pauses itself (it waits on the watch as well), with the
// ZooKeeper retry policy.
func (e *Elector) watchLoop(ctx context.Context, arm func() (<-chan zk.Event, error)) {
	pause := retry.ZooKeeper.Backoff()
	for {
		if e.waitConnected(ctx) != nil {
			return
		}
		ch, err := arm()
		wait := ch
		var delay <-chan time.Time
		if err != nil {
			wait, delay = nil, time.After(pause.NextBackOff())
		} else {
			pause.Reset()
		}
		select {
		case <-ctx.Done():
			return
		case <-wait:
		case <-delay:
		}
	}
}
