package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/client"
	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/testdriver/cluster"
)

// Write operations of the durability study. Every zkv row writes through
// kv.write; the JetStream rows put into a KV bucket with file storage.
const (
	OpDurAlways      = "zkv-fsync-always"            // --data-dir, --fsync always, acks=leader
	OpDurAlwaysAll   = "zkv-fsync-always-acks-all"   // the same, acks=all
	OpDurInterval    = "zkv-fsync-interval"          // --fsync interval, acks=leader
	OpDurIntervalAll = "zkv-fsync-interval-acks-all" // --fsync interval, acks=all
	OpDurMemory      = "zkv-memory"                  // no data directory, acks=leader
	OpDurMemoryAll   = "zkv-memory-acks-all"         // no data directory, acks=all
	OpJSR1SyncPut    = "js-kv-r1-sync-put"           // JetStream R1, sync_interval always
	OpJSR3SyncPut    = "js-kv-r3-sync-put"           // JetStream R3, sync_interval always
	// OpJSR1Put and OpJSR3Put (nats-server's default sync) are measured
	// too, on a NATS cluster of their own.
)

// DurableOps are the write operations in report order.
var DurableOps = []string{
	OpDurAlways, OpDurAlwaysAll, OpDurInterval, OpDurIntervalAll, OpDurMemory, OpDurMemoryAll,
	OpJSR1SyncPut, OpJSR3SyncPut, OpJSR1Put, OpJSR3Put,
}

// durableTarget is one zkv cluster of the study: its subject prefix and
// how its servers keep their data.
type durableTarget struct {
	name   string // "always", "interval", "memory"
	prefix string
	fsync  string // "" for no data directory
	ops    [2]string
}

var durableTargets = []durableTarget{
	{"always", bus.DefaultPrefix, "always", [2]string{OpDurAlways, OpDurAlwaysAll}},
	{"interval", "kvi", "interval", [2]string{OpDurInterval, OpDurIntervalAll}},
	{"memory", "kvm", "", [2]string{OpDurMemory, OpDurMemoryAll}},
}

// DurableConfig configures RunDurable.
type DurableConfig struct {
	// Duration, Rounds, Clients and ValueSize are as in KVConfig, for the
	// write measurements.
	Duration  time.Duration
	Rounds    int
	Clients   []int
	ValueSize int
	// Keys are loaded into the fsync-always cluster (InFlight writes
	// outstanding) before one follower is killed and started again.
	Keys     int
	InFlight int
	// Writers keep writing while a follower is away for Absence and
	// catches up after it.
	Writers int
	Absence time.Duration
	// Behind is how far behind the leader (in time) the returning
	// follower may be to count as caught up.
	Behind time.Duration
	// Timeout bounds the restart and the catch-up each.
	Timeout  time.Duration
	KVServer string
	Log      io.Writer
	// OnCluster is called once the first cluster is up.
	OnCluster func(*cluster.Local)
	// OnStep is called after each write measurement.
	OnStep func(label string)
}

// withDefaults fills in the zero fields of c.
func (c DurableConfig) withDefaults() DurableConfig {
	if c.Log == nil {
		c.Log = io.Discard
	}
	if len(c.Clients) == 0 {
		c.Clients = []int{1, 16}
	}
	c.Rounds = max(c.Rounds, 1)
	if c.ValueSize <= 0 {
		c.ValueSize = 100
	}
	if c.InFlight <= 0 {
		c.InFlight = 1024
	}
	if c.Behind <= 0 {
		c.Behind = time.Second
	}
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Minute
	}
	return c
}

// DurableSteps is the number of OnStep calls RunDurable makes.
func (c DurableConfig) DurableSteps() int { return c.Rounds * len(DurableOps) * len(c.Clients) }

// DurableResult is what one run measured.
type DurableResult struct {
	Writes  []KVResult
	Restart RestartResult
	CatchUp DeltaResult
}

// RunDurable measures, in one run: writes with every durability setting
// of zkv and of JetStream KV side by side; a follower of the fsync-always
// cluster restarting on Keys keys; and the same follower catching up
// after Absence under write load.
func RunDurable(ctx context.Context, cfg DurableConfig) (DurableResult, error) {
	cfg = cfg.withDefaults()
	var res DurableResult
	dir, err := os.MkdirTemp("", "zkv-durable-*")
	if err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	w, err := startDurableWorld(ctx, cfg, dir)
	if w != nil {
		defer w.close(ctx)
	}
	if err != nil {
		return res, err
	}
	if cfg.OnCluster != nil {
		cfg.OnCluster(w.main)
	}
	if res.Writes, err = interleaved(ctx, cfg.Rounds, DurableOps, cfg.Clients, cfg.Duration, w.measure, cfg.OnStep); err != nil {
		return res, err
	}
	// The rest uses the fsync-always cluster only.
	w.closeExtras(ctx)
	if res.Restart, err = measureRestart(ctx, cfg, w.main, filepath.Join(dir, "always")); err != nil {
		return res, fmt.Errorf("durable: restart: %w", err)
	}
	if res.CatchUp, err = measureDeltaCatchUp(ctx, cfg, w.main); err != nil {
		return res, fmt.Errorf("durable: catch-up: %w", err)
	}
	return res, nil
}

// durableWorld is the clusters of the write measurements: main (the
// fsync-always zkv cluster, on three NATS servers with JetStream syncing
// every write), two more zkv clusters on the same ZooKeeper and NATS, and
// a NATS cluster with JetStream's default sync.
type durableWorld struct {
	cfg    DurableConfig
	main   *cluster.Local
	extras []*cluster.Local
	plain  []*harness.NATS // the default-sync NATS cluster
	conns  []*nats.Conn
	// clients[target][slot] writes to a zkv cluster; js[op][slot] puts
	// into a JetStream bucket.
	clients map[string][]*client.Client
	js      map[string][]jetstream.KeyValue
	value   string
}

func startDurableWorld(ctx context.Context, cfg DurableConfig, dir string) (*durableWorld, error) {
	w := &durableWorld{cfg: cfg, clients: map[string][]*client.Client{}, js: map[string][]jetstream.KeyValue{}, value: strings.Repeat("v", cfg.ValueSize)}
	fmt.Fprintf(cfg.Log, "starting ZooKeeper, 3 NATS servers (JetStream, sync always) and three kvservers with --fsync always\n")
	var err error
	w.main, err = startLocal(ctx, cluster.LocalOptions{
		KVServer: cfg.KVServer, NATSServers: 3, JetStream: true, JetStreamSyncAlways: true,
		DataDir: filepath.Join(dir, "always"), NodeArgs: []string{"--fsync", "always"}, ServerLogLevel: "info",
	})
	if err != nil {
		return nil, err
	}
	for _, t := range durableTargets[1:] {
		fmt.Fprintf(cfg.Log, "starting three kvservers (%s) on the same ZooKeeper and NATS\n", t.name)
		opts := cluster.LocalOptions{
			KVServer: cfg.KVServer, ZooKeeper: w.main.ZooKeeper(), NATSURL: w.main.NATSURL(), SubjectPrefix: t.prefix,
			ElectionPath: "/bench-" + t.name, LeaderPath: "/bench-" + t.name + "-leader", ServerLogLevel: "warn",
		}
		if t.fsync != "" {
			opts.DataDir, opts.NodeArgs = filepath.Join(dir, t.name), []string{"--fsync", t.fsync}
		}
		l, err := startLocal(ctx, opts)
		if err != nil {
			return w, fmt.Errorf("durable: %s cluster: %w", t.name, err)
		}
		w.extras = append(w.extras, l)
	}
	fmt.Fprintf(cfg.Log, "starting 3 NATS servers with JetStream's default sync\n")
	if w.plain, err = harness.StartNATSCluster(ctx, 3, filepath.Join(dir, "nats-default"), nil, false); err != nil {
		return w, fmt.Errorf("durable: default-sync NATS: %w", err)
	}
	return w, w.connect(ctx)
}

// connect opens a connection per client slot to each NATS cluster, the
// zkv clients of every cluster and the JetStream buckets.
func (w *durableWorld) connect(ctx context.Context) error {
	slots := max(slices.Max(w.cfg.Clients), 1)
	dialSlots := func(url string) ([]*nats.Conn, error) {
		var out []*nats.Conn
		for range slots {
			nc, err := nats.Connect(url, nats.MaxReconnects(-1))
			if err != nil {
				return nil, err
			}
			w.conns = append(w.conns, nc)
			out = append(out, nc)
		}
		return out, nil
	}
	main, err := dialSlots(w.main.NATSURL())
	if err != nil {
		return err
	}
	hctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	locals := append([]*cluster.Local{w.main}, w.extras...)
	for i, t := range durableTargets {
		for _, nc := range main {
			c, err := client.New(nc, client.WithPrefix(t.prefix), client.WithRequestTimeout(5*time.Second))
			if err != nil {
				return err
			}
			w.clients[t.name] = append(w.clients[t.name], c)
		}
		if _, _, err := firstLeader(hctx, w.clients[t.name][0], locals[i]); err != nil {
			return fmt.Errorf("durable: %s cluster: %w", t.name, err)
		}
	}
	plain, err := dialSlots(w.plain[0].URL())
	if err != nil {
		return err
	}
	buckets := []struct {
		op, name string
		replicas int
		conns    []*nats.Conn
	}{
		{OpJSR1SyncPut, "bench_r1_sync", 1, main}, {OpJSR3SyncPut, "bench_r3_sync", 3, main},
		{OpJSR1Put, "bench_r1", 1, plain}, {OpJSR3Put, "bench_r3", 3, plain},
	}
	for _, b := range buckets {
		if w.js[b.op], err = openKVBucket(hctx, b.conns, b.name, b.replicas, StorageFile, w.value); err != nil {
			return fmt.Errorf("durable: %w", err)
		}
	}
	return nil
}

// measure is the measureFunc of the write operations.
func (w *durableWorld) measure(ctx context.Context, op string, c int, d time.Duration) (*Hist, int64, time.Duration) {
	calls := make([]func(context.Context) error, c)
	val := []byte(w.value)
	for i := range c {
		key := fmt.Sprintf("bench-%d", i)
		if kv, ok := w.js[op]; ok {
			calls[i] = func(ctx context.Context) error { _, err := kv[i].Put(ctx, key, val); return err }
			continue
		}
		for _, t := range durableTargets {
			acks := map[string]string{t.ops[0]: bus.AcksLeader, t.ops[1]: bus.AcksAll}[op]
			if acks == "" {
				continue
			}
			cl := w.clients[t.name][i]
			calls[i] = func(ctx context.Context) error {
				_, err := cl.Put(ctx, key, w.value, client.WithAcks(acks))
				return err
			}
		}
	}
	return runCalls(ctx, calls, d)
}

// closeExtras stops everything but the main cluster.
func (w *durableWorld) closeExtras(ctx context.Context) {
	for _, l := range w.extras {
		closeLocal(ctx, l)
	}
	for _, n := range w.plain {
		n.Shutdown()
	}
}

func (w *durableWorld) close(ctx context.Context) {
	for _, nc := range w.conns {
		nc.Close()
	}
	w.closeExtras(ctx)
	if w.main != nil {
		closeLocal(ctx, w.main)
	}
}
