package cluster

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/zkvstore/zkv/internal/harness"
)

// DefaultServers is the number of kvservers a Local starts by
// default.
const DefaultServers = 3

// DefaultSessionTimeout is the ZooKeeper session timeout a Local cluster
// gives its servers unless told otherwise.
const DefaultSessionTimeout = 2 * time.Second

// EnsembleSize is the number of members of the ZooKeeper ensemble a
// Local starts with LocalOptions.ZooKeeperEnsemble.
const EnsembleSize = 3

// LocalOptions configures StartLocal.
type LocalOptions struct {
	// KVServer is the path of the kvserver binary. Required.
	KVServer string
	// Servers is the number of kvservers, with IDs n1..nN; 0 means
	// DefaultServers.
	Servers int
	// NoServers starts no kvserver, only ZooKeeper and NATS: for a driver
	// that starts and stops clusters of its own against them many times,
	// each a Local given ZooKeeper() and NATSURL().
	NoServers bool
	// SessionTimeout is the servers' ZooKeeper session timeout; 0 means
	// DefaultSessionTimeout.
	SessionTimeout time.Duration
	// ZooKeeper is the connect string of a running ZooKeeper
	// (host:port[,host:port...]); "" starts a standalone one, or an
	// ensemble when ZooKeeperEnsemble is set.
	ZooKeeper string
	// ZooKeeperEnsemble starts an ensemble of EnsembleSize loopback
	// members instead of a standalone ZooKeeper; the cluster then
	// implements ZooKeeperFaults for them. It excludes ZooKeeper.
	ZooKeeperEnsemble bool
	// ZooKeeperTick is the tickTime of the ZooKeeper servers started; 0
	// means harness.DefaultTickTime.
	ZooKeeperTick time.Duration
	// ZooKeeperLatency and ZooKeeperJitter, when ZooKeeperLatency is
	// positive, put one Proxy in front of ZooKeeper that delays each
	// direction by ZooKeeperLatency ± ZooKeeperJitter: a remote ZooKeeper.
	// The servers and ZooKeeper() go through it.
	ZooKeeperLatency, ZooKeeperJitter time.Duration
	// ProxyZooKeeper gives every server its own Proxy to ZooKeeper, which
	// Cut and Heal act on.
	ProxyZooKeeper bool
	// NATSURL is the URL of a running NATS server; "" starts an embedded
	// one.
	NATSURL string
	// NATSServers is the number of embedded NATS servers, clustered on
	// loopback with JetStream (for baselines); 0 or 1 starts one, without
	// JetStream unless JetStream is set. The servers connect to the first.
	NATSServers int
	// JetStream enables JetStream on a single embedded NATS server.
	JetStream bool
	// JetStreamSyncAlways makes the embedded servers' JetStream fsync
	// every write (nats-server's `sync_interval: always`); false keeps
	// nats-server's default.
	JetStreamSyncAlways bool
	// ProxyNATS gives every server its own Proxy to NATS, which Cut and
	// Heal act on.
	ProxyNATS bool
	// EmbeddedNATS runs no NATS server of its own: each kvserver is a
	// NATS node (--nats-listen) on a free loopback port, and the nodes'
	// servers are clustered with routes between all of them
	// (--nats-cluster-listen, --nats-routes). NATSURL() then lists every
	// node's client URL. It excludes NATSURL, NATSServers, JetStream,
	// ProxyNATS and NoServers.
	EmbeddedNATS bool
	// SubjectPrefix, ElectionPath and LeaderPath are the servers'
	// --subject-prefix, --election-path and --leader-path; "" keeps the
	// kvserver defaults. Several clusters can share one ZooKeeper and one
	// NATS with paths and prefixes of their own.
	SubjectPrefix, ElectionPath, LeaderPath string
	// Parallel starts every server at once instead of each after the one
	// before is ready (which makes n1 the usual first leader).
	Parallel bool
	// NATSPort is the port of the embedded NATS server; 0 means a free
	// one.
	NATSPort int
	// NATSPortFallback makes a busy NATSPort fall back to a free port
	// instead of failing.
	NATSPortFallback bool
	// HTTPBasePort, if set, gives node nI the HTTP port HTTPBasePort+I-1;
	// 0 means free ports.
	HTTPBasePort int
	// LogDir receives each server's log (<id>.log), ZooKeeper's
	// (zookeeper.log) and the embedded NATS server's (nats.log). ""
	// keeps only the last lines of each in memory.
	LogDir string
	// ServerLogLevel is the kvservers' --log-level; "" means debug.
	ServerLogLevel string
	// ServerLog, if set, receives every server's log lines prefixed with
	// "<id>: ", in addition to LogDir.
	ServerLog io.Writer
	// NodeArgs are extra kvserver flags of every node (e.g. HTTP TLS).
	NodeArgs []string
	// DataDir, if set, gives every server a data directory of its own,
	// <DataDir>/<id> (kvserver --data-dir), kept across restarts.
	DataDir string
	// NodeEnv are extra environment variables (KEY=value) of every
	// server process.
	NodeEnv []string
	// HealthyOnly returns from StartLocal once every server answers
	// /healthz, without waiting for /readyz (for servers that are not
	// meant to become ready).
	HealthyOnly bool
	// NodeTLS is the client TLS config of the nodes' HTTP API when
	// NodeArgs turn TLS on; nil for plain HTTP.
	NodeTLS *tls.Config
	// Progress, if set, receives a line for each part started.
	Progress io.Writer
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
}

// Local is a zkv cluster of local processes: kvservers started by
// PID with internal/harness, a standalone ZooKeeper (or an ensemble) and
// an embedded NATS server, unless existing ones were given. It implements
// Cluster, Versioned and ZooKeeperFaults (which offers members only when
// it runs an ensemble). Its methods are safe for concurrent use, but Stop,
// Start and Close of one node are meant to come from one goroutine at a
// time.
type Local struct {
	opts     LocalOptions
	log      *slog.Logger
	zk       *harness.ZooKeeper // nil when external or an ensemble
	ensemble *harness.Ensemble  // nil unless ZooKeeperEnsemble
	zkAddr   string
	zkDirect []string        // the ZooKeeper servers' own addresses
	nats     []*harness.NATS // nil when external
	natsURL  string
	// embedded maps a node ID to its NATS listener and route listener
	// ports when EmbeddedNATS is set; routes lists every route URL.
	embedded map[string][2]int
	routes   []string
	proxies  map[string]*Proxy // "<id>/zookeeper", "<id>/nats"
	logMux   *harness.LogMux
	nodes    []*harness.Node

	mu       sync.Mutex
	cleanups []cleanup
	closed   bool
}

// cleanup is one entry of the Local's cleanup stack.
type cleanup struct {
	what string
	node bool // a kvserver: stopped before the rest, all at once
	f    func(ctx context.Context) error
}

// StartLocal starts ZooKeeper (unless opts.ZooKeeper is set), NATS (unless
// opts.NATSURL is set) and opts.Servers kvservers, each once the one before
// is ready (connected to ZooKeeper and NATS), so that n1 usually leads,
// and returns once every server is ready. If anything fails, or ctx ends, whatever was
// started is stopped again before StartLocal returns.
func StartLocal(ctx context.Context, opts LocalOptions) (_ *Local, err error) {
	if opts.KVServer == "" {
		return nil, errors.New("local cluster: no kvserver binary given")
	}
	if _, err := os.Stat(opts.KVServer); err != nil {
		return nil, fmt.Errorf("local cluster: kvserver binary: %w", err)
	}
	switch {
	case opts.NoServers:
		opts.Servers = 0
	case opts.Servers == 0:
		opts.Servers = DefaultServers
	case opts.Servers < 1:
		return nil, fmt.Errorf("local cluster: %d servers: need at least one", opts.Servers)
	}
	if opts.ZooKeeperEnsemble && opts.ZooKeeper != "" {
		return nil, errors.New("local cluster: a ZooKeeper to use and an ensemble to start exclude each other")
	}
	if opts.EmbeddedNATS && (opts.NATSURL != "" || opts.NATSServers > 1 || opts.JetStream || opts.ProxyNATS || opts.NoServers) {
		return nil, errors.New("local cluster: embedded NATS excludes a NATS URL, NATS servers, JetStream, NATS proxies and a cluster without servers")
	}
	if opts.SessionTimeout <= 0 {
		opts.SessionTimeout = DefaultSessionTimeout
	}
	if opts.ServerLogLevel == "" {
		opts.ServerLogLevel = "debug"
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Progress == nil {
		opts.Progress = io.Discard
	}
	if opts.LogDir != "" {
		if err := os.MkdirAll(opts.LogDir, 0o755); err != nil {
			return nil, fmt.Errorf("local cluster: log dir: %w", err)
		}
	}
	c := &Local{opts: opts, log: opts.Logger, proxies: map[string]*Proxy{}}
	defer func() {
		if err != nil {
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), TeardownTimeout)
			defer cancel()
			if cerr := c.Close(cctx); cerr != nil {
				err = errors.Join(err, fmt.Errorf("clean up: %w", cerr))
			}
		}
	}()
	if err := c.startZooKeeper(ctx); err != nil {
		return nil, err
	}
	if err := c.startNATS(ctx); err != nil {
		return nil, err
	}
	if opts.ServerLog != nil {
		c.logMux = harness.NewLogMux(opts.ServerLog)
	}
	if !opts.Parallel {
		for i := 1; i <= opts.Servers; i++ {
			if err := c.startNode(ctx, i); err != nil {
				return nil, err
			}
		}
		return c, nil
	}
	errs := make([]error, opts.Servers)
	var wg sync.WaitGroup
	for i := 1; i <= opts.Servers; i++ {
		wg.Go(func() { errs[i-1] = c.startNode(ctx, i) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	c.sortNodes()
	return c, nil
}

// sortNodes puts the nodes in ID order after a parallel start.
func (c *Local) sortNodes() {
	c.mu.Lock()
	defer c.mu.Unlock()
	slices.SortFunc(c.nodes, func(a, b *harness.Node) int {
		return cmp.Compare(len(a.ID()), len(b.ID()))*2 + cmp.Compare(a.ID(), b.ID())
	})
}

// TeardownTimeout bounds stopping what a failed start had started.
const TeardownTimeout = 20 * time.Second

// push adds a cleanup to the stack; Close runs them in reverse order.
func (c *Local) push(what string, f func(ctx context.Context) error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cleanups = append(c.cleanups, cleanup{what: what, f: f})
}

// pushNode adds the cleanup of a kvserver to the stack; a node started
// while Close runs is stopped at once.
func (c *Local) pushNode(n *harness.Node) {
	c.mu.Lock()
	closed := c.closed
	if !closed {
		c.cleanups = append(c.cleanups, cleanup{what: "stop " + n.ID(), node: true, f: func(ctx context.Context) error { return stopNode(ctx, n) }})
	}
	c.mu.Unlock()
	if closed {
		_ = n.Kill()
	}
}

// isClosed reports whether Close has begun.
func (c *Local) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// ErrClosed is returned by what cannot be done once Close has begun.
var ErrClosed = errors.New("local cluster closed")

// logFile opens name in the log dir, or returns nil when there is none.
// The file is closed by the cleanup stack.
func (c *Local) logFile(name string) (*os.File, error) {
	if c.opts.LogDir == "" {
		return nil, nil
	}
	f, err := os.OpenFile(filepath.Join(c.opts.LogDir, name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("local cluster: %w", err)
	}
	c.push("close "+name, func(context.Context) error { return f.Close() })
	return f, nil
}

func (c *Local) startZooKeeper(ctx context.Context) error {
	if c.opts.ZooKeeper != "" {
		c.zkAddr = c.opts.ZooKeeper
		c.zkDirect = strings.Split(c.zkAddr, ",")
		fmt.Fprintf(c.opts.Progress, "using ZooKeeper at %s\n", c.zkAddr)
		return c.startLatencyProxy()
	}
	f, err := c.logFile("zookeeper.log")
	if err != nil {
		return err
	}
	zopts := harness.ZooKeeperOptions{TickTime: c.opts.ZooKeeperTick}
	if f != nil {
		zopts.Log = f
	}
	begin := time.Now()
	if c.opts.ZooKeeperEnsemble {
		e, err := harness.StartEnsemble(ctx, EnsembleSize, zopts)
		if err != nil {
			return fmt.Errorf("local cluster: start a ZooKeeper ensemble: %w", err)
		}
		c.ensemble, c.zkAddr, c.zkDirect = e, e.Connect(), e.Addrs()
		c.push("stop the ZooKeeper ensemble", func(context.Context) error { return e.Stop() })
		var members []string
		for _, z := range e.Members() {
			members = append(members, fmt.Sprintf("%s on %s (pid %d)", z.Name(), z.Addr(), z.PID()))
		}
		fmt.Fprintf(c.opts.Progress, "started a ZooKeeper ensemble in %s: %s\n", time.Since(begin).Round(time.Millisecond), strings.Join(members, ", "))
		c.log.Debug("zookeeper ensemble started", "connect", e.Connect(), "dir", e.Dir())
		return c.startLatencyProxy()
	}
	zk, err := harness.StartZooKeeper(ctx, zopts)
	if err != nil {
		return fmt.Errorf("local cluster: start ZooKeeper: %w", err)
	}
	c.zk, c.zkAddr, c.zkDirect = zk, zk.Addr(), []string{zk.Addr()}
	c.push("stop ZooKeeper", func(context.Context) error { return zk.Stop() })
	fmt.Fprintf(c.opts.Progress, "started ZooKeeper on %s (pid %d) in %s\n", zk.Addr(), zk.PID(), time.Since(begin).Round(time.Millisecond))
	c.log.Debug("zookeeper started", "addr", zk.Addr(), "pid", zk.PID(), "dir", zk.Dir())
	return c.startLatencyProxy()
}

// startLatencyProxy puts one delaying Proxy in front of ZooKeeper when
// the options ask for a remote ZooKeeper.
func (c *Local) startLatencyProxy() error {
	if c.opts.ZooKeeperLatency <= 0 {
		return nil
	}
	if strings.Contains(c.zkAddr, ",") {
		return errors.New("local cluster: a latency proxy goes in front of one ZooKeeper server, not an ensemble")
	}
	p, err := NewProxy("zookeeper", c.zkAddr, c.opts.ZooKeeperLatency, c.opts.ZooKeeperJitter)
	if err != nil {
		return fmt.Errorf("local cluster: %w", err)
	}
	c.push("stop the ZooKeeper latency proxy", func(context.Context) error { p.Close(); return nil })
	fmt.Fprintf(c.opts.Progress, "ZooKeeper is reached through %s, %v ± %v each way\n", p.Addr(), c.opts.ZooKeeperLatency, c.opts.ZooKeeperJitter)
	c.zkAddr = p.Addr()
	return nil
}

// ZooKeeperDirect returns the ZooKeeper servers' own addresses (not
// through any proxy), for four-letter commands and record reads.
func (c *Local) ZooKeeperDirect() []string { return slices.Clone(c.zkDirect) }

func (c *Local) startNATS(ctx context.Context) error {
	if c.opts.EmbeddedNATS {
		return c.planEmbeddedNATS()
	}
	if c.opts.NATSURL != "" {
		c.natsURL = c.opts.NATSURL
		fmt.Fprintf(c.opts.Progress, "using NATS at %s\n", c.natsURL)
		return nil
	}
	f, err := c.logFile("nats.log")
	if err != nil {
		return err
	}
	var log io.Writer
	if f != nil {
		log = f
	}
	if c.opts.NATSServers > 1 {
		dir, err := os.MkdirTemp("", "zkv-nats-*")
		if err != nil {
			return fmt.Errorf("local cluster: %w", err)
		}
		c.push("remove the NATS store", func(context.Context) error { return os.RemoveAll(dir) })
		servers, err := harness.StartNATSCluster(ctx, c.opts.NATSServers, dir, log, c.opts.JetStreamSyncAlways)
		if err != nil {
			return fmt.Errorf("local cluster: start NATS: %w", err)
		}
		c.nats, c.natsURL = servers, servers[0].URL()
		c.push("stop NATS", func(context.Context) error { c.shutdownNATS(); return nil })
		fmt.Fprintf(c.opts.Progress, "started %d clustered NATS %s servers with JetStream (in this process)\n", len(servers), server.VERSION)
		return nil
	}
	port := c.opts.NATSPort
	if port != 0 && !portFree(port) {
		if !c.opts.NATSPortFallback {
			return fmt.Errorf("local cluster: NATS port %d is in use", port)
		}
		fmt.Fprintf(c.opts.Progress, "port %d is in use; NATS takes a free port instead\n", port)
		port = 0
	}
	nopts := harness.NATSOptions{Port: port, Log: log}
	if c.opts.JetStream {
		dir, err := os.MkdirTemp("", "zkv-nats-*")
		if err != nil {
			return fmt.Errorf("local cluster: %w", err)
		}
		c.push("remove the NATS store", func(context.Context) error { return os.RemoveAll(dir) })
		nopts.JetStream, nopts.StoreDir, nopts.SyncAlways = true, dir, c.opts.JetStreamSyncAlways
	}
	ns, err := harness.StartNATS(nopts)
	if err != nil {
		return fmt.Errorf("local cluster: start NATS: %w", err)
	}
	c.nats, c.natsURL = []*harness.NATS{ns}, ns.URL()
	c.push("stop NATS", func(context.Context) error { c.shutdownNATS(); return nil })
	fmt.Fprintf(c.opts.Progress, "started NATS %s on %s (in this process)\n", server.VERSION, ns.URL())
	return nil
}

// planEmbeddedNATS picks each node's NATS client and route ports.
func (c *Local) planEmbeddedNATS() error {
	ports, err := harness.FreePorts(2 * c.opts.Servers)
	if err != nil {
		return fmt.Errorf("local cluster: %w", err)
	}
	c.embedded = map[string][2]int{}
	var urls []string
	for i := 1; i <= c.opts.Servers; i++ {
		client, route := ports[2*i-2], ports[2*i-1]
		c.embedded["n"+strconv.Itoa(i)] = [2]int{client, route}
		urls = append(urls, "nats://127.0.0.1:"+strconv.Itoa(client))
		c.routes = append(c.routes, "nats-route://127.0.0.1:"+strconv.Itoa(route))
	}
	c.natsURL = strings.Join(urls, ",")
	fmt.Fprintf(c.opts.Progress, "NATS runs inside the kvservers (embedded mode), clustered: %s\n", c.natsURL)
	return nil
}

// embeddedArgs are node id's embedded NATS flags, or none.
func (c *Local) embeddedArgs(id string) []string {
	p, ok := c.embedded[id]
	if !ok {
		return nil
	}
	return []string{
		"--nats-listen", "127.0.0.1:" + strconv.Itoa(p[0]),
		"--nats-cluster-listen", "127.0.0.1:" + strconv.Itoa(p[1]),
		"--nats-routes", strings.Join(c.routes, ","),
	}
}

// NodeNATSURL is the client URL of node id's own NATS server in embedded
// mode, or "" for an unknown node or without EmbeddedNATS.
func (c *Local) NodeNATSURL(id string) string {
	p, ok := c.embedded[id]
	if !ok {
		return ""
	}
	return "nats://127.0.0.1:" + strconv.Itoa(p[0])
}

// shutdownNATS stops the embedded NATS servers.
func (c *Local) shutdownNATS() {
	for _, n := range c.nats {
		n.Shutdown()
	}
}

// NATS returns the embedded NATS servers (none when an external one is
// used); the servers connect to the first.
func (c *Local) NATS() []*harness.NATS { return slices.Clone(c.nats) }

// portFree reports whether 127.0.0.1:port can be bound now. The embedded
// NATS server does not fail on a busy port; it only logs it and never
// becomes ready, so the port is checked first.
func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

func (c *Local) startNode(ctx context.Context, i int) error {
	id := "n" + strconv.Itoa(i)
	port := 0
	if c.opts.HTTPBasePort > 0 {
		port = c.opts.HTTPBasePort + i - 1
	}
	begin := time.Now()
	zk, nats, err := c.nodeProxies(id)
	if err != nil {
		return err
	}
	args := slices.Clone(c.opts.NodeArgs)
	if c.opts.EmbeddedNATS {
		args = append(c.embeddedArgs(id), args...)
		nats = ""
	}
	if c.opts.LeaderPath != "" {
		args = append([]string{"--leader-path", c.opts.LeaderPath}, args...)
	}
	if c.opts.DataDir != "" {
		args = append([]string{"--data-dir", filepath.Join(c.opts.DataDir, id)}, args...)
	}
	opts := harness.NodeOptions{
		ID:             id,
		ZooKeeper:      zk,
		NATSURL:        nats,
		SessionTimeout: c.opts.SessionTimeout,
		ElectionPath:   c.opts.ElectionPath,
		SubjectPrefix:  c.opts.SubjectPrefix,
		Port:           port,
		LogLevel:       c.opts.ServerLogLevel,
		LogDir:         c.opts.LogDir,
		Args:           args,
		TLS:            c.opts.NodeTLS,
		Env:            c.opts.NodeEnv,
	}
	if c.logMux != nil {
		opts.Log = c.logMux.Writer(id + ": ")
	}
	n, err := harness.StartNode(ctx, c.opts.KVServer, opts)
	if err != nil {
		return fmt.Errorf("local cluster: %w", err)
	}
	c.mu.Lock()
	c.nodes = append(c.nodes, n)
	c.mu.Unlock()
	c.pushNode(n)
	// Ready means connected to ZooKeeper; waiting for it before starting
	// the next server makes n1 the usual first leader.
	if !c.opts.HealthyOnly {
		if err := n.WaitReady(ctx); err != nil {
			return fmt.Errorf("local cluster: %w", err)
		}
	}
	fmt.Fprintf(c.opts.Progress, "started kvserver %s on %s (pid %d) in %s\n", id, n.URL(), n.PID(), time.Since(begin).Round(time.Millisecond))
	c.log.Debug("kvserver started", "id", id, "http", n.HTTPAddr(), "pid", n.PID(), "log", n.LogPath())
	return nil
}

// nodeProxies returns the ZooKeeper connect string and NATS URL of node
// id, starting its own proxies when the options ask for them.
func (c *Local) nodeProxies(id string) (zk, nats string, err error) {
	zk, nats = c.zkAddr, c.natsURL
	add := func(part, upstream string) (string, error) {
		p, err := NewProxy(id+"-"+part, upstream, 0, 0)
		if err != nil {
			return "", fmt.Errorf("local cluster: %w", err)
		}
		c.mu.Lock()
		c.proxies[id+"/"+part] = p
		c.mu.Unlock()
		c.push("stop "+id+"'s "+part+" proxy", func(context.Context) error { p.Close(); return nil })
		return p.Addr(), nil
	}
	if c.opts.ProxyZooKeeper {
		if strings.Contains(zk, ",") {
			return "", "", errors.New("local cluster: a server's ZooKeeper proxy goes in front of one ZooKeeper server, not an ensemble")
		}
		if zk, err = add(PartZooKeeper, zk); err != nil {
			return "", "", err
		}
	}
	if c.opts.ProxyNATS {
		u, err := url.Parse(nats)
		if err != nil {
			return "", "", fmt.Errorf("local cluster: NATS URL %q: %w", nats, err)
		}
		addr, err := add(PartNATS, u.Host)
		if err != nil {
			return "", "", err
		}
		u.Host = addr
		nats = u.String()
	}
	return zk, nats, nil
}

// The parts a server can be cut off from.
const (
	PartZooKeeper = "zookeeper"
	PartNATS      = "nats"
)

// Cut cuts node id off from part (PartZooKeeper or PartNATS): its proxy
// closes every connection and resets new ones until Heal. The cluster
// must have been started with ProxyZooKeeper or ProxyNATS.
func (c *Local) Cut(id, part string) error {
	p, err := c.proxy(id, part)
	if err != nil {
		return err
	}
	c.log.Debug("cut", "id", id, "part", part)
	return p.Cut()
}

// Heal reconnects node id to part after Cut.
func (c *Local) Heal(id, part string) error {
	p, err := c.proxy(id, part)
	if err != nil {
		return err
	}
	c.log.Debug("heal", "id", id, "part", part)
	return p.Heal()
}

func (c *Local) proxy(id, part string) (*Proxy, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.proxies[id+"/"+part]
	if p == nil {
		return nil, fmt.Errorf("node %s has no %s proxy (start the cluster with Proxy%s)", id, part, map[string]string{PartZooKeeper: "ZooKeeper", PartNATS: "NATS"}[part])
	}
	return p, nil
}

// stopNode stops a node that still runs with SIGTERM (SIGKILL when ctx
// ends) and reports an unclean exit; a node already stopped is not an
// error.
func stopNode(ctx context.Context, n *harness.Node) error {
	if !n.Running() {
		return nil
	}
	err := n.Stop(ctx)
	_ = n.Kill()
	if err != nil {
		return fmt.Errorf("kvserver %s did not exit cleanly on SIGTERM: %w", n.ID(), err)
	}
	return nil
}

// node returns the node with the given ID.
func (c *Local) node(id string) (*harness.Node, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.nodes {
		if n.ID() == id {
			return n, nil
		}
	}
	return nil, fmt.Errorf("no node %q in the local cluster", id)
}

// NATSURL is the NATS server's URL.
func (c *Local) NATSURL() string { return c.natsURL }

// ZooKeeper is the ZooKeeper connect string the servers use.
func (c *Local) ZooKeeper() string { return c.zkAddr }

// ZooKeeperPID is the PID of the ZooKeeper the cluster started, or 0 when
// it uses an existing one.
func (c *Local) ZooKeeperPID() int {
	if c.zk == nil {
		return 0
	}
	return c.zk.PID()
}

// ZooKeeperMembers names the members of the ensemble the cluster started
// ("zk1", "zk2", "zk3"), or none when it runs no ensemble.
func (c *Local) ZooKeeperMembers() []string {
	if c.ensemble == nil {
		return nil
	}
	var names []string
	for _, z := range c.ensemble.Members() {
		names = append(names, z.Name())
	}
	return names
}

// zkMember returns the ensemble member named member.
func (c *Local) zkMember(member string) (*harness.ZooKeeper, error) {
	if c.ensemble != nil {
		for _, z := range c.ensemble.Members() {
			if z.Name() == member {
				return z, nil
			}
		}
	}
	return nil, fmt.Errorf("no ZooKeeper member %q in the local cluster", member)
}

// ZooKeeperMode asks ensemble member for its mode (srvr).
func (c *Local) ZooKeeperMode(ctx context.Context, member string) (string, error) {
	z, err := c.zkMember(member)
	if err != nil {
		return "", err
	}
	return z.Mode(ctx)
}

// KillZooKeeper kills ensemble member with SIGKILL and waits until it is
// gone; its data directory stays.
func (c *Local) KillZooKeeper(_ context.Context, member string) error {
	z, err := c.zkMember(member)
	if err != nil {
		return err
	}
	pid := z.PID()
	if err := z.Kill(); err != nil {
		return fmt.Errorf("kill ZooKeeper %s (pid %d): %w", member, pid, err)
	}
	c.log.Debug("zookeeper member killed", "member", member, "pid", pid)
	return nil
}

// StartZooKeeper starts ensemble member again, on its ports and with its
// data, and waits until it has rejoined the quorum.
func (c *Local) StartZooKeeper(ctx context.Context, member string) error {
	z, err := c.zkMember(member)
	if err != nil {
		return err
	}
	if err := z.Restart(ctx); err != nil {
		return fmt.Errorf("start ZooKeeper %s: %w", member, err)
	}
	c.log.Debug("zookeeper member started again", "member", member, "pid", z.PID())
	return nil
}

// SessionTimeout is the servers' ZooKeeper session timeout.
func (c *Local) SessionTimeout() time.Duration { return c.opts.SessionTimeout }

// Nodes returns the IDs of every node, n1..nN.
func (c *Local) Nodes() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		ids[i] = n.ID()
	}
	return ids
}

// LocalNode describes one kvserver process of a Local.
type LocalNode struct {
	// ID is the node ID.
	ID string
	// PID is the current (or last) process ID.
	PID int
	// HTTPAddr is the host:port of the node's HTTP API.
	HTTPAddr string
	// LogPath is the node's log file ("" without a log dir).
	LogPath string
	// Running reports whether the process runs.
	Running bool
	// CommandLine is the kvserver binary and its flags.
	CommandLine []string
}

// Node describes node id; ok is false when there is no such node.
func (c *Local) Node(id string) (LocalNode, bool) {
	n, err := c.node(id)
	if err != nil {
		return LocalNode{}, false
	}
	return LocalNode{ID: n.ID(), PID: n.PID(), HTTPAddr: n.HTTPAddr(), LogPath: n.LogPath(), Running: n.Running(), CommandLine: n.CommandLine()}, true
}

// Process returns the kvserver process of node id, for what the Cluster
// interface does not offer (pause, resume, signals, its options), or nil
// for an unknown node.
func (c *Local) Process(id string) *harness.Node {
	n, err := c.node(id)
	if err != nil {
		return nil
	}
	return n
}

// Replace stops node id with SIGTERM (SIGKILL when ctx ends) and starts a
// new process in its place with its options and extra arguments added
// (e.g. an operator's --force-lead), waiting until it answers /healthz.
// An unclean exit of the old process is returned with the new one
// running.
func (c *Local) Replace(ctx context.Context, id string, extra ...string) (unclean error, err error) {
	old, err := c.node(id)
	if err != nil {
		return nil, err
	}
	if old.Running() {
		unclean = old.Stop(ctx)
		_ = old.Kill()
	}
	opts := old.Options()
	opts.Args = append(slices.Clone(opts.Args), extra...)
	if c.isClosed() {
		return unclean, fmt.Errorf("replace %s: %w", id, ErrClosed)
	}
	n, err := harness.StartNode(ctx, c.opts.KVServer, opts)
	if err != nil {
		return unclean, fmt.Errorf("start %s with %v: %w", id, extra, err)
	}
	c.mu.Lock()
	for i, m := range c.nodes {
		if m == old {
			c.nodes[i] = n
		}
	}
	c.mu.Unlock()
	c.pushNode(n)
	return unclean, nil
}

// Exited returns a channel that is closed when node id's current process
// exits, or nil for an unknown node.
func (c *Local) Exited(id string) <-chan struct{} {
	n, err := c.node(id)
	if err != nil {
		return nil
	}
	return n.Exited()
}

// Stop stops node id by PID: SIGKILL, or SIGTERM and a wait for its clean
// exit (SIGKILL if ctx ends first). It returns once the process is gone.
func (c *Local) Stop(ctx context.Context, id string, how Stop) error {
	n, err := c.node(id)
	if err != nil {
		return err
	}
	pid := n.PID()
	c.log.Debug("stopping node", "id", id, "pid", pid, "how", how)
	switch how {
	case StopKill:
		err = n.Kill()
	case StopTerm:
		err = n.Stop(ctx)
	default:
		return fmt.Errorf("stop %s: unknown way %q", id, how)
	}
	if err != nil {
		return fmt.Errorf("stop %s (pid %d) with %s: %w", id, pid, how.Signal(), err)
	}
	return nil
}

// Start starts node id again, on the same port, with an empty store, and
// waits until it answers /healthz.
func (c *Local) Start(ctx context.Context, id string) error {
	n, err := c.node(id)
	if err != nil {
		return err
	}
	if err := n.Restart(ctx); err != nil {
		return fmt.Errorf("start %s: %w", id, err)
	}
	c.log.Debug("node started again", "id", id, "pid", n.PID())
	return nil
}

// Describe is "pid <PID>" for a running node, "pid <PID>, stopped" for one
// that is not.
func (c *Local) Describe(id string) string {
	n, err := c.node(id)
	if err != nil {
		return "unknown node"
	}
	if !n.Running() {
		return fmt.Sprintf("pid %d, stopped", n.PID())
	}
	return fmt.Sprintf("pid %d", n.PID())
}

// Versions reports the ZooKeeper version (asked with srvr) and, for an
// embedded NATS server, its version.
func (c *Local) Versions(ctx context.Context) map[string]string {
	v := map[string]string{}
	if len(c.nats) > 0 || c.opts.EmbeddedNATS {
		v["nats-server"] = server.VERSION
	}
	addr, _, _ := strings.Cut(c.zkAddr, ",")
	if _, s, _ := harness.ZooKeeperStat(ctx, addr); s != "" {
		v["zookeeper"] = s
	}
	return v
}

// Close stops everything the cluster started, newest first: the kvservers
// (SIGTERM, SIGKILL once ctx ends), NATS, then ZooKeeper, and closes the
// log files. It returns the joined errors; a second Close does nothing.
func (c *Local) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	stack := slices.Clone(c.cleanups)
	c.mu.Unlock()

	// The kvservers go first, all at once: each may take a moment to
	// resign.
	var (
		errs []error
		wg   sync.WaitGroup
		mu   sync.Mutex
	)
	rest := stack[:0:0]
	for _, cl := range stack {
		if cl.node {
			wg.Go(func() {
				if err := cl.f(ctx); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			})
			continue
		}
		rest = append(rest, cl)
	}
	wg.Wait()
	for i := len(rest) - 1; i >= 0; i-- {
		c.log.Debug("teardown", "step", rest[i].what)
		if err := rest[i].f(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", rest[i].what, err))
		}
	}
	return errors.Join(errs...)
}

var _ interface {
	Cluster
	Versioned
	ZooKeeperFaults
} = (*Local)(nil)
