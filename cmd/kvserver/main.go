// Command kvserver runs one zkv server: it joins the ZooKeeper election,
// serves reads from its in-memory copy and writes through the leader over
// NATS, and offers a small HTTP API on --host:--port.
//
//	kvserver --id n1 --host 127.0.0.1 --port 8001 \
//	  --zookeeper 127.0.0.1 --zookeeper-port 2181 --nats nats://127.0.0.1:4222
//
// SIGINT or SIGTERM stop it cleanly: it resigns leadership at once and
// exits 0. SIGHUP re-reads the HTTP API's certificate, key, client CAs and
// auth file; a failed reload is logged and the old settings stay.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/zkvstore/zkv/internal/cliflags"
	"github.com/zkvstore/zkv/internal/natsnode"
	"github.com/zkvstore/zkv/node"
	"github.com/zkvstore/zkv/store/wal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// From the start, SIGHUP is caught and never kills the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	if err := app(hup).RunContext(ctx, os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "kvserver:", err)
		os.Exit(1)
	}
}

// app is the command; each signal on hup reloads the HTTP settings.
func app(hup <-chan os.Signal) *cli.App {
	d := node.DefaultConfig()
	return &cli.App{
		Name:    "kvserver",
		Usage:   "run one zkv server (ZooKeeper-elected leader, NATS replication, local reads)",
		Version: cliflags.Version(),
		Flags: append([]cli.Flag{
			&cli.StringFlag{Name: "id", Usage: "node ID, unique in the cluster (letters, digits, - and _)", EnvVars: []string{"ZKV_ID"}, Required: true},
			&cli.StringFlag{Name: "host", Value: "127.0.0.1", Usage: "HTTP API host", EnvVars: []string{"ZKV_HOST"}},
			&cli.IntFlag{Name: "port", Value: 8001, Usage: "HTTP API port (0 picks a free one)", EnvVars: []string{"ZKV_PORT"}},
			&cli.StringFlag{Name: "advertise", Usage: "HTTP `HOST:PORT` to tell others (default: --host:--port, with the host name for 0.0.0.0)", EnvVars: []string{"ZKV_ADVERTISE"}},
			&cli.StringFlag{Name: "zookeeper", Value: "127.0.0.1", Usage: "ZooKeeper host, or a comma-separated list of host[:port]", EnvVars: []string{"ZKV_ZOOKEEPER"}},
			&cli.IntFlag{Name: "zookeeper-port", Value: 2181, Usage: "ZooKeeper port for hosts given without one", EnvVars: []string{"ZKV_ZOOKEEPER_PORT"}},
			&cli.StringFlag{Name: "nats", Value: d.NATSURL, Usage: "NATS server URL(s), comma-separated", EnvVars: []string{"ZKV_NATS", "NATS_URL"}},
			&cli.StringFlag{Name: "nats-listen", Usage: "run a NATS server inside kvserver, listening for clients on `HOST:PORT` (embedded mode; --nats is then ignored)", EnvVars: []string{"ZKV_NATS_LISTEN"}, Category: "NATS node (embedded mode)"},
			&cli.StringFlag{Name: "nats-cluster-listen", Usage: "route listener `HOST:PORT` of the embedded NATS server, as nats-server --cluster", EnvVars: []string{"ZKV_NATS_CLUSTER_LISTEN"}, Category: "NATS node (embedded mode)"},
			&cli.StringFlag{Name: "nats-routes", Usage: "route `URL`s of the other nodes' embedded servers, comma-separated (nats-route://host:port), as nats-server --routes", EnvVars: []string{"ZKV_NATS_ROUTES"}, Category: "NATS node (embedded mode)"},
			&cli.StringFlag{Name: "nats-cluster-name", Value: natsnode.DefaultClusterName, Usage: "NATS cluster name of the embedded servers", EnvVars: []string{"ZKV_NATS_CLUSTER_NAME"}, Category: "NATS node (embedded mode)"},
			&cli.StringFlag{Name: "nats-config", Usage: "nats-server config `FILE` of the embedded server (authorization, permissions, TLS); without it the listener accepts the --nats-user/--nats-password, --nats-token or --nats-nkey identity", EnvVars: []string{"ZKV_NATS_CONFIG"}, Category: "NATS node (embedded mode)"},
			&cli.DurationFlag{Name: "session-timeout", Value: d.SessionTimeout, Usage: "ZooKeeper session timeout: a crashed leader is replaced after about this long", EnvVars: []string{"ZKV_SESSION_TIMEOUT"}},
			&cli.StringFlag{Name: "election-path", Value: d.ElectionPath, Usage: "parent znode of the election", EnvVars: []string{"ZKV_ELECTION_PATH"}},
			&cli.StringFlag{Name: "leader-path", Value: d.LeaderPath, Usage: "ephemeral znode the leader publishes", EnvVars: []string{"ZKV_LEADER_PATH"}},
			&cli.StringFlag{Name: "subject-prefix", Value: d.SubjectPrefix, Usage: "first token of every NATS subject", EnvVars: []string{"ZKV_SUBJECT_PREFIX"}},
			&cli.DurationFlag{Name: "forward-timeout", Value: d.ForwardTimeout, Usage: "how long a follower tries to reach a leader for a forwarded write", EnvVars: []string{"ZKV_FORWARD_TIMEOUT"}},
			&cli.StringFlag{Name: "acks", Value: d.Acks, Usage: "default acknowledgement of writes: leader (reply once applied and published), majority or all (reply once that many servers confirmed)", EnvVars: []string{"ZKV_ACKS"}},
			&cli.DurationFlag{Name: "write-timeout", Value: d.WriteTimeout, Usage: "how long the leader waits for confirmations of a majority or all write", EnvVars: []string{"ZKV_WRITE_TIMEOUT"}},
			&cli.BoolFlag{Name: "catch-up", Usage: "fetch the leader's store when this copy missed updates (restart, gap), and refuse to lead while stale; off: a restarted server answers empty until a key is written again", EnvVars: []string{"ZKV_CATCH_UP"}},
			&cli.StringFlag{Name: "data-dir", Usage: "keep this server's data in `DIR` (a log and snapshots): a restart loads it, and a write is acknowledged only once logged (implies --catch-up); empty: memory only", EnvVars: []string{"ZKV_DATA_DIR"}},
			&cli.StringFlag{Name: "fsync", Value: "always", Usage: "with --data-dir, when the log is fsynced: always (before an acknowledgement), interval (every 100ms) or never", EnvVars: []string{"ZKV_FSYNC"}},
			&cli.Int64Flag{Name: "snapshot-bytes", Value: node.DefaultSnapshotBytes, Usage: "with --data-dir, write a snapshot and drop the log behind it once the log passes this many bytes", EnvVars: []string{"ZKV_SNAPSHOT_BYTES"}},
			&cli.BoolFlag{Name: "force-lead", Usage: "with --catch-up, lead even with fewer revisions than the cluster record says were acknowledged, accepting that those writes are lost (use on one server, once, after a restart of every server)", EnvVars: []string{"ZKV_FORCE_LEAD"}},
			&cli.StringFlag{Name: "record-path", Usage: "persistent znode of the cluster record (cluster id, key, highest epoch and revision); default: --election-path with -cluster appended", EnvVars: []string{"ZKV_RECORD_PATH"}},
			&cli.IntFlag{Name: "max-forwards", Value: d.MaxForwards, Usage: "budget forwarded_writes: writes a follower forwards to the leader at once; more are refused unavailable", EnvVars: []string{"ZKV_MAX_FORWARDS"}},
			&cli.IntFlag{Name: "max-waiting-reads", Value: d.MaxWaitingReads, Usage: "budget waiting_reads: min_revision reads waiting at once for their revision", EnvVars: []string{"ZKV_MAX_WAITING_READS"}},
			&cli.IntFlag{Name: "max-leader-reads", Value: d.MaxLeaderReads, Usage: "budget leader_reads: consistency=leader reads a follower forwards at once", EnvVars: []string{"ZKV_MAX_LEADER_READS"}},
			&cli.IntFlag{Name: "max-ack-waits", Value: d.MaxAckWaits, Usage: "budget ack_waits: majority or all writes waiting for confirmations at once; more are refused before they are applied", EnvVars: []string{"ZKV_MAX_ACK_WAITS"}},
			&cli.IntFlag{Name: "max-snapshot-pages", Value: d.MaxSnapshotPages, Usage: "budget snapshot_pages: catch-up pages the leader serves at once", EnvVars: []string{"ZKV_MAX_SNAPSHOT_PAGES"}},
			&cli.IntFlag{Name: "max-lists", Value: d.MaxLists, Usage: "budget lists: list pages a node builds at once", EnvVars: []string{"ZKV_MAX_LISTS"}},
			&cli.IntFlag{Name: "max-watches", Value: d.MaxWatches, Usage: "budget watches: changes requests waiting for an update at once", EnvVars: []string{"ZKV_MAX_WATCHES"}},
			&cli.IntFlag{Name: "history", Value: d.History, Usage: "versions of each key kept, the current one included (1-64)", EnvVars: []string{"ZKV_HISTORY"}},
			&cli.IntFlag{Name: "watch-window", Value: d.Changes, Usage: "recent updates kept in order for watchers to replay from a revision", EnvVars: []string{"ZKV_WATCH_WINDOW"}},
			&cli.IntFlag{Name: "watch-window-bytes", Value: d.ChangesBytes, Usage: "bytes of keys and values those updates may hold at most", EnvVars: []string{"ZKV_WATCH_WINDOW_BYTES"}},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "debug, info, warn or error", EnvVars: []string{"ZKV_LOG_LEVEL"}},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "text or json", EnvVars: []string{"ZKV_LOG_FORMAT"}},
			&cli.StringFlag{Name: "zookeeper-auth", Usage: "`USER:PASSWORD` for ZooKeeper digest auth; znodes then get an ACL: this user all, others read", EnvVars: []string{"ZKV_ZOOKEEPER_AUTH"}},
			&cli.StringFlag{Name: "http-tls-cert", Usage: "PEM certificate `FILE` of the HTTP API: it then speaks HTTPS only (with --http-tls-key; re-read on SIGHUP)", EnvVars: []string{"ZKV_HTTP_TLS_CERT"}, Category: "HTTP security"},
			&cli.StringFlag{Name: "http-tls-key", Usage: "PEM private key `FILE` of --http-tls-cert", EnvVars: []string{"ZKV_HTTP_TLS_KEY"}, Category: "HTTP security"},
			&cli.StringFlag{Name: "http-tls-client-ca", Usage: "PEM `FILE` of CAs: HTTP clients must present a certificate one of them signed (re-read on SIGHUP)", EnvVars: []string{"ZKV_HTTP_TLS_CLIENT_CA"}, Category: "HTTP security"},
			&cli.StringFlag{Name: "http-auth-file", Usage: "`FILE` of HTTP users (name role hash per line; kvctl auth hash makes lines): /v1 then needs credentials (re-read on SIGHUP)", EnvVars: []string{"ZKV_HTTP_AUTH_FILE"}, Category: "HTTP security"},
			&cli.BoolFlag{Name: "http-pprof", Usage: "serve /debug/pprof on the HTTP API (refused on a non-loopback address without auth)", EnvVars: []string{"ZKV_HTTP_PPROF"}, Category: "HTTP security"},
		}, cliflags.NATSAuth()...),
		Action: func(c *cli.Context) error { return run(c, hup) },
	}
}

func run(c *cli.Context, hup <-chan os.Signal) error {
	logger, err := newLogger(c.String("log-level"), c.String("log-format"))
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	cfg := node.DefaultConfig()
	cfg.ID = c.String("id")
	cfg.HTTPAddr = net.JoinHostPort(c.String("host"), strconv.Itoa(c.Int("port")))
	cfg.AdvertiseAddr = c.String("advertise")
	cfg.ZooKeeper = zookeeperServers(c.String("zookeeper"), c.Int("zookeeper-port"))
	cfg.NATSURL = c.String("nats")
	cfg.SessionTimeout = c.Duration("session-timeout")
	cfg.ElectionPath = c.String("election-path")
	cfg.LeaderPath = c.String("leader-path")
	cfg.SubjectPrefix = c.String("subject-prefix")
	cfg.ForwardTimeout = c.Duration("forward-timeout")
	cfg.Acks = c.String("acks")
	cfg.WriteTimeout = c.Duration("write-timeout")
	cfg.CatchUp = c.Bool("catch-up")
	cfg.ForceLead = c.Bool("force-lead")
	cfg.DataDir = c.String("data-dir")
	cfg.SnapshotBytes = c.Int64("snapshot-bytes")
	if cfg.Fsync, err = wal.ParseSyncMode(c.String("fsync")); err != nil {
		return cli.Exit("--fsync: "+err.Error(), 2)
	}
	cfg.RecordPath = c.String("record-path")
	cfg.MaxForwards = c.Int("max-forwards")
	cfg.MaxWaitingReads = c.Int("max-waiting-reads")
	cfg.MaxLeaderReads = c.Int("max-leader-reads")
	cfg.MaxAckWaits = c.Int("max-ack-waits")
	cfg.MaxSnapshotPages = c.Int("max-snapshot-pages")
	cfg.MaxLists = c.Int("max-lists")
	cfg.MaxWatches = c.Int("max-watches")
	cfg.History = c.Int("history")
	cfg.Changes = c.Int("watch-window")
	cfg.ChangesBytes = c.Int("watch-window-bytes")
	cfg.ZooKeeperAuth = c.String("zookeeper-auth")
	cfg.HTTPTLSCert = c.String("http-tls-cert")
	cfg.HTTPTLSKey = c.String("http-tls-key")
	cfg.HTTPTLSClientCA = c.String("http-tls-client-ca")
	cfg.HTTPAuthFile = c.String("http-auth-file")
	cfg.HTTPPprof = c.Bool("http-pprof")
	cfg.Logger = logger
	natsOpts, err := cliflags.NATSAuthFrom(c).Options()
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	cfg.NATSOptions = natsOpts
	cfg.NATSAuth = cliflags.NATSAuthFrom(c)
	cfg.NATSListen = c.String("nats-listen")
	cfg.NATSClusterListen = c.String("nats-cluster-listen")
	cfg.NATSRoutes = splitList(c.String("nats-routes"))
	cfg.NATSClusterName = c.String("nats-cluster-name")
	cfg.NATSConfigFile = c.String("nats-config")
	if cfg.NATSListen != "" && c.IsSet("nats") {
		logger.Warn("--nats is ignored: --nats-listen runs the NATS server in this process", "nats", cfg.NATSURL, "nats_listen", cfg.NATSListen)
	}

	srv, err := node.New(cfg)
	if err != nil {
		return cli.Exit(err.Error(), 2)
	}
	ctx, cancel := context.WithCancel(c.Context)
	defer cancel()
	reloaded := make(chan struct{})
	go func() {
		defer close(reloaded)
		reloadOnHUP(ctx, hup, srv, logger)
	}()
	err = srv.Run(ctx)
	cancel()
	<-reloaded
	return err
}

// reloadOnHUP calls srv.ReloadHTTP for each signal on hup until ctx ends;
// ReloadHTTP logs the outcome.
func reloadOnHUP(ctx context.Context, hup <-chan os.Signal, srv *node.Server, logger *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			logger.Info("SIGHUP: reloading the HTTP settings")
			_ = srv.ReloadHTTP()
		}
	}
}

// splitList splits a comma-separated list, dropping empty entries.
func splitList(list string) []string {
	var out []string
	for _, v := range strings.Split(list, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// zookeeperServers turns "a,b:2182" into host:port entries, adding port to
// hosts given without one.
func zookeeperServers(list string, port int) []string {
	var out []string
	for _, h := range strings.Split(list, ",") {
		h = strings.TrimSpace(h)
		if h == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(h); err != nil {
			h = net.JoinHostPort(h, strconv.Itoa(port))
		}
		out = append(out, h)
	}
	return out
}

// readableDurations logs a duration as Go writes it ("4s", "250ms"), not
// as the nanoseconds the JSON handler would print.
func readableDurations(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}

func newLogger(level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l, ReplaceAttr: readableDurations}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}
