package election

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/go-zookeeper/zk"
)

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
