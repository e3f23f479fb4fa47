package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/election"
	"github.com/zkvstore/zkv/internal/natsnode"
	"github.com/zkvstore/zkv/store"
	"github.com/zkvstore/zkv/store/wal"
)

// Config configures a Server.
type Config struct {
	// ID names the server; it is a NATS subject token. Required.
	ID string
	// HTTPAddr is the host:port of the HTTP API; "" disables it.
	HTTPAddr string
	// HTTPTLSCert and HTTPTLSKey are PEM files of the HTTP API's
	// certificate (chain) and private key: both or neither. Set, the API
	// speaks HTTPS only. Re-read by ReloadHTTP.
	HTTPTLSCert, HTTPTLSKey string
	// HTTPTLSClientCA is a PEM file of CAs; set, every HTTP client must
	// present a certificate one of them signed, or the TLS handshake
	// fails. Needs HTTPTLSCert. Re-read by ReloadHTTP.
	HTTPTLSClientCA string
	// HTTPAuthFile is the auth file of the HTTP API (see package
	// httpauth); set, every /v1 request needs a user's credentials and
	// writes need the readwrite role. Re-read by ReloadHTTP.
	HTTPAuthFile string
	// HTTPPprof serves /debug/pprof on the HTTP API (readwrite users only
	// with HTTPAuthFile). Refused on a non-loopback address unless
	// HTTPAuthFile or HTTPTLSClientCA authenticates its callers.
	HTTPPprof bool
	// AdvertiseAddr is the HTTP address other people and servers are told
	// (election znode, leader znode, status). Default: HTTPAddr, with this
	// machine's host name instead of an unspecified host (0.0.0.0, ::).
	AdvertiseAddr string
	// ZooKeeper lists the ZooKeeper servers, host:port each. Required.
	ZooKeeper []string
	// SessionTimeout is the ZooKeeper session timeout: a crashed leader is
	// replaced after about this long. Default 4s. ZooKeeper clamps it to
	// [2, 20] × its tickTime.
	SessionTimeout time.Duration
	// ElectionPath is the parent znode of the election. Default /election.
	ElectionPath string
	// LeaderPath is the ephemeral znode the leader publishes. Default /leader.
	LeaderPath string
	// RecordPath is the persistent znode of the cluster record. Default:
	// ElectionPath with "-cluster" appended.
	RecordPath string
	// NATSURL is the NATS server URL (comma-separated for several). Default
	// nats://127.0.0.1:4222.
	NATSURL string
	// NATSOptions are extra nats.go options (credentials, TLS; see
	// bus.Auth).
	NATSOptions []nats.Option
	// NATSListen, set (host:port; port 0 picks a free one), makes this
	// server a NATS node (embedded mode): it runs nats-server in its own
	// process, listening for clients there, and connects to it
	// in-process; NATSURL is then ignored. "" (the default) connects to
	// the NATS server at NATSURL. See package natsnode.
	NATSListen string
	// NATSClusterListen is the embedded server's route listener
	// (host:port), as nats-server's --cluster: the embedded servers of
	// every node form one NATS cluster. Needs NATSListen.
	NATSClusterListen string
	// NATSRoutes are the route URLs (nats-route://host:port) of the other
	// nodes' embedded servers, as nats-server's --routes; the same list
	// may be given to every node. Needs NATSClusterListen.
	NATSRoutes []string
	// NATSClusterName names the NATS cluster of the embedded servers.
	// Default natsnode.DefaultClusterName ("zkv").
	NATSClusterName string
	// NATSConfigFile is a nats-server config file for the embedded server
	// (authorization and permissions, TLS, limits); NATSListen,
	// NATSClusterListen and NATSRoutes override its listen, cluster and
	// routes. Without it, NATSAuth (user and password, token or NKey) is
	// the one identity the listener accepts.
	NATSConfigFile string
	// NATSAuth is what this server connects with; in embedded mode without
	// NATSConfigFile it is also what the listener requires. NATSOptions
	// must carry the same credentials for the connection itself.
	NATSAuth bus.Auth
	// ZooKeeperAuth is "user:password" for ZooKeeper digest auth and ACLs
	// on every znode zkv creates (see election.Config.Auth), or "".
	ZooKeeperAuth string
	// SubjectPrefix is the first token of every subject. Default "kv".
	SubjectPrefix string
	// ForwardTimeout bounds how long a follower tries to reach a leader for
	// a write it forwards (an election may be under way). Default 5s.
	ForwardTimeout time.Duration
	// Acks is the default acknowledgement level of writes: bus.AcksLeader
	// (the specification's behaviour), bus.AcksMajority or bus.AcksAll. A
	// write may ask for another. Default leader.
	Acks string
	// WriteTimeout bounds how long the leader waits for replicas to confirm
	// a majority or all write before it answers "timeout". Default 5s.
	WriteTimeout time.Duration
	// CatchUp makes a replica that knows it missed updates (restarted into
	// a running cluster, or a gap in the stream) fetch the leader's store
	// and report stale only until it has; and makes a stale server refuse
	// to lead. Off by default: the specification's stale read.
	CatchUp bool
	// MaxForwards bounds the writes a follower forwards to the leader at
	// once (budget forwarded_writes); more are refused "unavailable".
	// Default 256. Each holds a goroutine for up to ForwardTimeout +
	// WriteTimeout.
	MaxForwards int
	// MaxWaitingReads bounds the min_revision reads waiting at once for
	// their revision (budget waiting_reads), each for up to its wait_ms;
	// more are refused "unavailable". Default 1024. A wait is a parked
	// goroutine, so the bound is on memory, and it keeps a flood of waits
	// from taking the slots of writes.
	MaxWaitingReads int
	// MaxLeaderReads bounds the consistency=leader reads a follower
	// forwards at once (budget leader_reads); more are refused
	// "unavailable". Default 256.
	MaxLeaderReads int
	// MaxAckWaits bounds the acks=majority and acks=all writes the leader
	// holds at once while replicas confirm them (budget ack_waits), each
	// for up to WriteTimeout. A write that finds it full is refused
	// "unavailable" before it is applied. Default 4096: above what 256
	// forwarding followers and direct clients keep in flight, so that
	// refusal is for floods, not load.
	MaxAckWaits int
	// MaxSnapshotPages bounds the snapshot pages (catch-ups) the leader
	// serves at once (budget snapshot_pages); more are refused
	// "unavailable" and a catch-up asks again. Default 4. A page holds
	// the store's read lock for one pass over its ordered index.
	MaxSnapshotPages int
	// MaxLists bounds the list pages a node builds and encodes at once
	// (budget lists); more are refused "unavailable". Default 64. A page
	// holds the store's read lock for one pass over at most MaxListPage
	// keys of its ordered index.
	MaxLists int
	// MaxWatches bounds the changes requests that wait for a new update
	// at once (budget watches: watchers' long polls); more are refused
	// "unavailable". Default 1024. A request that finds updates to
	// return answers at once and takes no slot.
	MaxWatches int
	// History is how many versions of each key the copy keeps, the
	// current one included (1 to bus.MaxHistory). Default 8.
	History int
	// Changes is how many recent updates the copy keeps in order for
	// watchers to replay from a revision. Default 65536. ChangesBytes
	// bounds their keys and values: default 64 MiB.
	Changes      int
	ChangesBytes int
	// ExpiryInterval is how often the leader looks for keys whose time
	// to live passed and deletes them. Default 100ms.
	ExpiryInterval time.Duration
	// ShutdownTimeout bounds a clean stop. Default 5s.
	ShutdownTimeout time.Duration
	// DataDir, if set, is this server's data directory: every update it
	// applies is logged there before it is acknowledged or confirmed, and
	// a restart loads what it held (see docs/durability.md). It implies
	// CatchUp. Empty: the store lives in memory only.
	DataDir string
	// Fsync says when the data directory's log is fsynced: always (the
	// default: before an acknowledgement or a confirmation), interval or
	// never.
	Fsync wal.SyncMode
	// SnapshotBytes is the log size past which the server writes a
	// snapshot of its store and drops the log behind it. Default 64 MiB.
	SnapshotBytes int64
	// ForceLead lets a --catch-up server lead although it holds fewer
	// revisions than the cluster record says were acknowledged: the
	// operator accepts that those writes are lost (like etcd's
	// --force-new-cluster). Without CatchUp such a server leads anyway and
	// reports the loss.
	ForceLead bool
	// HeartbeatInterval is how often the leader publishes its epoch and
	// revision on the replication subject. Default 1s.
	HeartbeatInterval time.Duration
	// RecordInterval is how often the leader raises the cluster record to
	// the revision it acknowledged (and followers re-read it, every fifth
	// time). Default 1s.
	RecordInterval time.Duration
	// Logger receives the server's logs. Default slog.Default().
	Logger *slog.Logger

	// newElector replaces the ZooKeeper election in tests.
	newElector func(election.Config) (Elector, error)
}

// DefaultConfig returns a Config with every default filled in; ID and
// ZooKeeper are still to be set.
func DefaultConfig() Config {
	return Config{
		SessionTimeout:   4 * time.Second,
		ElectionPath:     "/election",
		LeaderPath:       "/leader",
		NATSURL:          nats.DefaultURL,
		SubjectPrefix:    bus.DefaultPrefix,
		ForwardTimeout:   5 * time.Second,
		Acks:             bus.AcksLeader,
		WriteTimeout:     5 * time.Second,
		MaxForwards:      256,
		MaxWaitingReads:  1024,
		MaxLeaderReads:   256,
		MaxAckWaits:      4096,
		MaxSnapshotPages: 4,
		MaxLists:         64,
		MaxWatches:       1024,
		History:          store.DefaultHistory,
		Changes:          store.DefaultChanges,
		ChangesBytes:     store.DefaultChangesBytes,
		ExpiryInterval:   100 * time.Millisecond,
		ShutdownTimeout:  5 * time.Second,

		HeartbeatInterval: time.Second,
		RecordInterval:    time.Second,
	}
}

func (c *Config) setDefaults() {
	d := DefaultConfig()
	if c.AdvertiseAddr == "" {
		c.AdvertiseAddr = advertised(c.HTTPAddr)
	}
	if c.DataDir != "" {
		c.CatchUp = true
	}
	if c.SnapshotBytes <= 0 {
		c.SnapshotBytes = DefaultSnapshotBytes
	}
	if c.SessionTimeout == 0 {
		c.SessionTimeout = d.SessionTimeout
	}
	if c.ElectionPath == "" {
		c.ElectionPath = d.ElectionPath
	}
	if c.LeaderPath == "" {
		c.LeaderPath = d.LeaderPath
	}
	if c.NATSURL == "" {
		c.NATSURL = d.NATSURL
	}
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = d.SubjectPrefix
	}
	if c.ForwardTimeout == 0 {
		c.ForwardTimeout = d.ForwardTimeout
	}
	if c.Acks == "" {
		c.Acks = d.Acks
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = d.WriteTimeout
	}
	if c.MaxForwards == 0 {
		c.MaxForwards = d.MaxForwards
	}
	if c.MaxWaitingReads == 0 {
		c.MaxWaitingReads = d.MaxWaitingReads
	}
	if c.MaxLeaderReads == 0 {
		c.MaxLeaderReads = d.MaxLeaderReads
	}
	if c.MaxAckWaits == 0 {
		c.MaxAckWaits = d.MaxAckWaits
	}
	if c.MaxSnapshotPages == 0 {
		c.MaxSnapshotPages = d.MaxSnapshotPages
	}
	if c.MaxLists == 0 {
		c.MaxLists = d.MaxLists
	}
	if c.MaxWatches == 0 {
		c.MaxWatches = d.MaxWatches
	}
	if c.History == 0 {
		c.History = d.History
	}
	if c.Changes == 0 {
		c.Changes = d.Changes
	}
	if c.ChangesBytes == 0 {
		c.ChangesBytes = d.ChangesBytes
	}
	if c.ExpiryInterval == 0 {
		c.ExpiryInterval = d.ExpiryInterval
	}
	if c.ShutdownTimeout == 0 {
		c.ShutdownTimeout = d.ShutdownTimeout
	}
	if c.HeartbeatInterval == 0 {
		c.HeartbeatInterval = d.HeartbeatInterval
	}
	if c.RecordInterval == 0 {
		c.RecordInterval = d.RecordInterval
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports every problem with c.
func (c Config) Validate() error {
	var errs []error
	if err := bus.ValidNodeID(c.ID); err != nil {
		errs = append(errs, err)
	}
	if err := bus.ValidPrefix(c.SubjectPrefix); err != nil {
		errs = append(errs, err)
	}
	if c.HTTPAddr != "" {
		if _, _, err := net.SplitHostPort(c.HTTPAddr); err != nil {
			errs = append(errs, fmt.Errorf("http address %q: %w", c.HTTPAddr, err))
		}
	}
	errs = append(errs, c.validateHTTPSecurity()...)
	if c.ForwardTimeout <= 0 {
		errs = append(errs, fmt.Errorf("forward timeout %s must be positive", c.ForwardTimeout))
	}
	if err := bus.ValidAcks(c.Acks); err != nil {
		errs = append(errs, err)
	}
	if c.WriteTimeout <= 0 {
		errs = append(errs, fmt.Errorf("write timeout %s must be positive", c.WriteTimeout))
	}
	if c.HeartbeatInterval < 0 || c.RecordInterval < 0 {
		errs = append(errs, fmt.Errorf("heartbeat interval %s and record interval %s must be positive", c.HeartbeatInterval, c.RecordInterval))
	}
	for _, b := range []struct {
		name string
		n    int
	}{{"max forwards", c.MaxForwards}, {"max waiting reads", c.MaxWaitingReads}, {"max leader reads", c.MaxLeaderReads},
		{"max ack waits", c.MaxAckWaits}, {"max snapshot pages", c.MaxSnapshotPages},
		{"max lists", c.MaxLists}, {"max watches", c.MaxWatches}, {"changes", c.Changes}, {"changes bytes", c.ChangesBytes}} {
		if b.n < 1 {
			errs = append(errs, fmt.Errorf("%s %d must be at least 1", b.name, b.n))
		}
	}
	if c.History < 1 || c.History > bus.MaxHistory {
		errs = append(errs, fmt.Errorf("history %d: want 1 to %d", c.History, bus.MaxHistory))
	}
	if c.ExpiryInterval < 0 {
		errs = append(errs, fmt.Errorf("expiry interval %s must be positive", c.ExpiryInterval))
	}
	if err := c.electionConfig().Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.NATSListen != "" {
		if err := c.natsNodeConfig().Validate(); err != nil {
			errs = append(errs, err)
		}
	} else if c.NATSClusterListen != "" || len(c.NATSRoutes) > 0 || c.NATSConfigFile != "" {
		errs = append(errs, fmt.Errorf("nats cluster listen %q, routes %v and config file %q need a nats listen address (embedded mode)",
			c.NATSClusterListen, c.NATSRoutes, c.NATSConfigFile))
	}
	return errors.Join(errs...)
}

func (c Config) electionConfig() election.Config {
	ec := election.Config{
		Servers:        c.ZooKeeper,
		SessionTimeout: c.SessionTimeout,
		Path:           c.ElectionPath,
		LeaderPath:     c.LeaderPath,
		RecordPath:     c.RecordPath,
		ID:             c.ID,
		Addr:           c.AdvertiseAddr,
		LeaseInterval:  c.SessionTimeout / 10,
		Auth:           c.ZooKeeperAuth,
		Logger:         c.Logger.With("node", c.ID),
	}
	return ec
}

// natsNodeConfig is the embedded NATS server's configuration.
func (c Config) natsNodeConfig() natsnode.Config {
	log := c.Logger
	if log == nil {
		log = slog.Default()
	}
	return natsnode.Config{
		Name:          c.ID,
		Listen:        c.NATSListen,
		ClusterListen: c.NATSClusterListen,
		Routes:        c.NATSRoutes,
		ClusterName:   c.NATSClusterName,
		ConfigFile:    c.NATSConfigFile,
		Auth:          c.NATSAuth,
		Logger:        log.With("node", c.ID),
	}
}

// advertised turns a listen address into one others can reach: an
// unspecified host becomes this machine's host name.
func advertised(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil || port == "0" {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if name, err := os.Hostname(); err == nil {
			return net.JoinHostPort(name, port)
		}
	}
	return listen
}
