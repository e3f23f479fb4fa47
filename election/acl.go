package election

import (
	"context"
	"errors"
	"fmt"
	"path"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkvstore/zkv/internal/retry"
)

// ErrOpenACL means, with Config.Auth set, that a znode the election relies
// on already exists with an ACL that lets anyone create, change, delete or
// administer it, and this client may not correct it. Run returns it.
var ErrOpenACL = errors.New("election znode is open to anyone")

// openPerms are the rights nobody but zkv's user may hold on the election
// path and the leader's parent.
const openPerms = zk.PermWrite | zk.PermCreate | zk.PermDelete | zk.PermAdmin

// protectedPaths are the znodes whose ACL guards the election: the election
// path (its children are the candidates) and the leader path's parent
// (creating or deleting the leader znode needs rights there).
func (c Config) protectedPaths() []string {
	paths := []string{c.Path}
	if p := path.Dir(c.LeaderPath); p != "/" && p != c.Path {
		paths = append(paths, p)
	}
	return paths
}

// protect makes sure, with Config.Auth set, that the protected paths exist
// and that none grants anyone more than read: missing ones (and their
// missing parents) are created with the Config's ACL, open ones are given
// it (logged as a warning). It retries while ZooKeeper is unreachable and
// returns an error wrapping ErrOpenACL if an open ACL cannot be fixed.
func (e *Elector) protect(ctx context.Context, conn *zk.Conn) error {
	if e.cfg.Auth == "" {
		return nil
	}
	fatal := false
	err := retry.Do(ctx, retry.ZooKeeper, func() error {
		err := e.protectOnce(conn)
		if errors.Is(err, ErrOpenACL) || errors.Is(err, zk.ErrNoAuth) {
			fatal = true
			return retry.Permanent(err)
		}
		return err
	}, func(err error, d time.Duration) {
		e.log.Warn("checking the election ACLs failed, retrying", "err", err, "retry_in", d)
	})
	if !fatal {
		return nil // checked, or stopped (ctx ends when Resign closes e.stop)
	}
	return err
}

func (e *Elector) protectOnce(conn *zk.Conn) error {
	for _, p := range e.cfg.protectedPaths() {
		if err := e.ensurePath(conn, p); err != nil {
			return err
		}
		if err := e.protectPath(conn, p); err != nil {
			return err
		}
	}
	return nil
}

// protectPath gives p the Config's ACL if p's ACL grants anyone more than
// read. A concurrent ACL change (another server fixing it) is read again.
func (e *Elector) protectPath(conn *zk.Conn, p string) error {
	return e.restrictACL(conn, p, openPerms, e.cfg.acl(), "anyone could change the election")
}

// restrictACL gives p the ACL want if p's ACL grants everyone any of the
// rights forbidden; why says what that would allow, for the log.
func (e *Elector) restrictACL(conn *zk.Conn, p string, forbidden int32, want []zk.ACL, why string) error {
	for attempt := 0; attempt < 5; attempt++ {
		acl, stat, err := conn.GetACL(p)
		if err != nil {
			return fmt.Errorf("read the ACL of %s: %w", p, err)
		}
		open := worldPerms(acl) & forbidden
		if open == 0 {
			return nil
		}
		_, err = conn.SetACL(p, want, stat.Aversion)
		switch {
		case err == nil:
			e.log.Warn("fixed an open ACL: "+why, "path", p,
				"old_acl", formatACL(acl), "acl", formatACL(want))
			return nil
		case errors.Is(err, zk.ErrBadVersion):
			continue
		case errors.Is(err, zk.ErrNoAuth):
			return fmt.Errorf("%w: %s grants anyone %s (ACL %s) and this client may not change it: %v",
				ErrOpenACL, p, formatPerms(open), formatACL(acl), err)
		default:
			return fmt.Errorf("set the ACL of %s: %w", p, err)
		}
	}
	return fmt.Errorf("set the ACL of %s: it keeps changing", p)
}

// worldPerms is the rights acl grants everyone.
func worldPerms(acl []zk.ACL) int32 {
	var perms int32
	for _, a := range acl {
		if a.Scheme == "world" && a.ID == "anyone" {
			perms |= a.Perms
		}
	}
	return perms
}

// formatACL writes acl as ZooKeeper's CLI does: scheme:id:perms, without
// digest hashes.
func formatACL(acl []zk.ACL) string {
	parts := make([]string, len(acl))
	for i, a := range acl {
		id := a.ID
		if a.Scheme == "digest" {
			id, _, _ = strings.Cut(id, ":")
		}
		parts[i] = a.Scheme + ":" + id + ":" + formatPerms(a.Perms)
	}
	return strings.Join(parts, ",")
}

// formatPerms writes perms as ZooKeeper's CLI does, e.g. "cdrwa".
func formatPerms(perms int32) string {
	var b strings.Builder
	for _, p := range []struct {
		bit int32
		c   byte
	}{{zk.PermCreate, 'c'}, {zk.PermDelete, 'd'}, {zk.PermRead, 'r'}, {zk.PermWrite, 'w'}, {zk.PermAdmin, 'a'}} {
		if perms&p.bit != 0 {
			b.WriteByte(p.c)
		}
	}
	return b.String()
}
