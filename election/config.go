package election

import (
	"errors"
	"fmt"
	"log/slog"
	"path"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"
)

// Config configures an Elector.
type Config struct {
	// Servers are the ZooKeeper servers, host:port each. Required.
	Servers []string
	// SessionTimeout is the ZooKeeper session timeout asked for. ZooKeeper
	// clamps it to [2, 20] × its tickTime; the Elector bases its lease on
	// the timeout granted (Elector.SessionTimeout) and logs both when they
	// differ. A crashed leader is replaced after about the granted timeout.
	// Default 4s.
	SessionTimeout time.Duration
	// Path is the parent of the election znodes, created if missing.
	// Default "/election".
	Path string
	// LeaderPath is the ephemeral znode the leader publishes. Default
	// "/leader".
	LeaderPath string
	// ID names this server in its znode's data. Required.
	ID string
	// Addr is this server's address for people (its HTTP API), stored in
	// its znode's data. Optional.
	Addr string
	// TickTime is ZooKeeper's tickTime, by which it rounds session
	// expiry up: the Elector asks for SessionTimeout less one tick (at most
	// a quarter of it), so a crashed leader is replaced within
	// SessionTimeout. 0 (the default) learns it at start from a short
	// session; negative asks for SessionTimeout as it is.
	TickTime time.Duration
	// LeaseInterval is how often the Elector makes a round trip to confirm
	// its session. Default SessionTimeout/10. Must be below SessionTimeout/2,
	// or the lease would lapse between checks. When ZooKeeper grants another
	// session timeout, the interval is scaled by granted/asked, so it keeps
	// its share of the session.
	LeaseInterval time.Duration
	// Auth is "user:password" for ZooKeeper digest authentication, or ""
	// for none. With it, every znode zkv creates (the election path and its
	// parents, the election znodes, the leader znode and its parents) gets
	// an ACL giving this user all rights and everyone else read only, so
	// another client can watch the election but cannot delete or forge its
	// znodes. The parent of LeaderPath must not be "/" then, since nobody
	// can protect the root: use e.g. /zkv/election and /zkv/leader.
	Auth string
	// RecordPath is the persistent znode holding the cluster record (id,
	// key, highest epoch and revision; see Record). Default: Path with
	// "-cluster" appended, e.g. /election-cluster.
	RecordPath string
	// Known, if set, reports the highest epoch and revision this server
	// knows, so that a record found missing (an emptied or replaced
	// ZooKeeper) is written again no lower than that.
	Known func() (epoch, revision uint64)
	// Logger receives the election's transitions. Default slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns a Config with every default filled in and no
// servers or ID.
func DefaultConfig() Config {
	return Config{
		SessionTimeout: 4 * time.Second,
		Path:           "/election",
		LeaderPath:     "/leader",
	}
}

// acl is the ACL of every znode zkv creates.
func (c Config) acl() []zk.ACL {
	user, pass, ok := strings.Cut(c.Auth, ":")
	if c.Auth == "" || !ok {
		return zk.WorldACL(zk.PermAll)
	}
	return append(zk.DigestACL(zk.PermAll, user, pass), zk.WorldACL(zk.PermRead)...)
}

// recordACL is the ACL of the cluster record: it holds the cluster key, so
// with digest auth nobody else may even read it.
func (c Config) recordACL() []zk.ACL {
	user, pass, ok := strings.Cut(c.Auth, ":")
	if c.Auth == "" || !ok {
		return zk.WorldACL(zk.PermAll)
	}
	return zk.DigestACL(zk.PermAll, user, pass)
}

// parentOf is the parent znode of p ("/" for a top-level one).
func parentOf(p string) string { return path.Dir(p) }

func (c *Config) setDefaults() {
	d := DefaultConfig()
	if c.SessionTimeout == 0 {
		c.SessionTimeout = d.SessionTimeout
	}
	if c.Path == "" {
		c.Path = d.Path
	}
	if c.LeaderPath == "" {
		c.LeaderPath = d.LeaderPath
	}
	if c.RecordPath == "" && c.Path != "" {
		c.RecordPath = c.Path + "-cluster"
	}
	if c.LeaseInterval == 0 {
		c.LeaseInterval = c.SessionTimeout / 10
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports the first problem with c, naming the values involved.
func (c Config) Validate() error {
	var errs []error
	if len(c.Servers) == 0 {
		errs = append(errs, errors.New("no ZooKeeper servers"))
	}
	for _, s := range c.Servers {
		if !strings.Contains(s, ":") {
			errs = append(errs, fmt.Errorf("ZooKeeper server %q: want host:port", s))
		}
	}
	if c.ID == "" {
		errs = append(errs, errors.New("empty ID"))
	}
	if c.SessionTimeout < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("session timeout %s is below 100ms", c.SessionTimeout))
	}
	for _, p := range []string{c.Path, c.LeaderPath, c.RecordPath} {
		if p == c.RecordPath && p == "" {
			continue // defaulted from Path
		}
		if !strings.HasPrefix(p, "/") || p == "/" || path.Clean(p) != p {
			errs = append(errs, fmt.Errorf("znode path %q: want an absolute path like /election", p))
		}
	}
	if c.Path != "" && (c.LeaderPath == c.Path || strings.HasPrefix(c.LeaderPath, c.Path+"/")) {
		errs = append(errs, fmt.Errorf("leader path %s must not be inside election path %s", c.LeaderPath, c.Path))
	}
	if c.Auth != "" {
		user, pass, ok := strings.Cut(c.Auth, ":")
		if !ok || user == "" || pass == "" {
			errs = append(errs, errors.New("ZooKeeper auth: want user:password"))
		}
		if path.Dir(c.LeaderPath) == "/" {
			errs = append(errs, fmt.Errorf("with ZooKeeper auth, leader path %s needs a parent other than / (e.g. /zkv/leader), or anyone could delete it", c.LeaderPath))
		}
	}
	if c.LeaseInterval >= c.SessionTimeout/2 {
		errs = append(errs, fmt.Errorf("lease interval %s must be < half the session timeout %s", c.LeaseInterval, c.SessionTimeout))
	}
	return errors.Join(errs...)
}
