package election

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"
)

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
	e.lastOK, e.znodeGone, e.watching = time.Time{}, false, ""
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
