package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/client"
	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/testdriver/cluster"
)

// Operations the kv benchmark measures.
const (
	OpEcho          = "nats-echo"          // bare request/reply to an echo responder process: R
	OpEchoInProc    = "nats-echo-inproc"   // the same responder inside the driver process
	OpRead          = "zkv-read"           // kv.node.<follower>.read
	OpWriteLeader   = "zkv-write"          // kv.write with acks=leader, answered by the leader
	OpWriteAll      = "zkv-write-acks-all" // kv.write with acks=all: every server holds it
	OpWriteFollower = "zkv-write-follower" // kv.node.<follower>.write with acks=leader, forwarded
	// The same four on a second cluster in embedded mode: each kvserver
	// is a NATS node, and each client connects to the node it addresses
	// (the follower for reads and forwarded writes, the leader for
	// kv.write), so a request is one hop into the process that holds the
	// data, as a JetStream R1 request is.
	OpEmbRead          = "zkv-embedded-read"
	OpEmbWriteLeader   = "zkv-embedded-write"
	OpEmbWriteAll      = "zkv-embedded-write-acks-all"
	OpEmbWriteFollower = "zkv-embedded-write-follower"
	// JetStream KV with file storage.
	OpJSR1Put = "js-kv-r1-put"
	OpJSR1Get = "js-kv-r1-get"
	OpJSR3Put = "js-kv-r3-put"
	OpJSR3Get = "js-kv-r3-get"
	// JetStream KV with memory storage.
	OpJSR1MemPut = "js-kv-r1-mem-put"
	OpJSR1MemGet = "js-kv-r1-mem-get"
	OpJSR3MemPut = "js-kv-r3-mem-put"
	OpJSR3MemGet = "js-kv-r3-mem-get"
	OpLagUpper   = "replication-lag-upper" // per replica: publish → first read that saw it
	OpLagLower   = "replication-lag-lower" // per replica: publish → last read that did not
	// OpLagApplied is the lag from the replica's own clock: its status's
	// last_applied − the leader's publish time (kvservers that report it).
	OpLagApplied = "replication-lag"
	// OpLagDelivery is publish → the driver's own subscription on the
	// same NATS server receiving the update: the network part of the lag,
	// without the replica's decode and apply (a floor, not the lag).
	OpLagDelivery = "replication-delivery"
	// OpMemPerKey is one kvserver's resident memory before and after
	// loading distinct keys (one row per server).
	OpMemPerKey = "zkv-mem-per-key"
)

// KVOps are the measured operations in report order.
var KVOps = []string{
	OpEcho, OpEchoInProc,
	OpRead, OpWriteLeader, OpWriteAll, OpWriteFollower,
	OpEmbRead, OpEmbWriteLeader, OpEmbWriteAll, OpEmbWriteFollower,
	OpJSR1Put, OpJSR1Get, OpJSR3Put, OpJSR3Get,
	OpJSR1MemPut, OpJSR1MemGet, OpJSR3MemPut, OpJSR3MemGet,
}

// Storage kinds of the JetStream KV buckets.
const (
	StorageFile   = "file"
	StorageMemory = "memory"
)

// jsOp describes a JetStream KV operation: the bucket's replicas and
// storage, and whether it puts or gets.
type jsOp struct {
	replicas int
	storage  string
	put      bool
}

var jsOps = map[string]jsOp{
	OpJSR1Put: {1, StorageFile, true}, OpJSR1Get: {1, StorageFile, false},
	OpJSR3Put: {3, StorageFile, true}, OpJSR3Get: {3, StorageFile, false},
	OpJSR1MemPut: {1, StorageMemory, true}, OpJSR1MemGet: {1, StorageMemory, false},
	OpJSR3MemPut: {3, StorageMemory, true}, OpJSR3MemGet: {3, StorageMemory, false},
}

// isEmbedded reports whether op runs on the embedded-mode cluster.
func isEmbedded(op string) bool {
	switch op {
	case OpEmbRead, OpEmbWriteLeader, OpEmbWriteAll, OpEmbWriteFollower:
		return true
	}
	return false
}

// bucketName is the JetStream KV bucket of a replica count and storage.
func bucketName(replicas int, storage string) string {
	name := fmt.Sprintf("bench_r%d", replicas)
	if storage == StorageMemory {
		name += "_mem"
	}
	return name
}

// KVConfig configures RunKV.
type KVConfig struct {
	// Duration of one measurement of one operation at one concurrency;
	// each is repeated Rounds times, interleaved with the others, and the
	// rounds merged, so that a noisy moment of a shared machine hits every
	// operation alike.
	Duration time.Duration
	Rounds   int
	// Clients are the concurrency levels (default 1, 16 and 64).
	Clients []int
	// LagSamples is the number of replication-lag samples.
	LagSamples int
	// ValueSize is the size of written values in bytes.
	ValueSize int
	// JSStorages are the JetStream KV storages measured: StorageFile,
	// StorageMemory or both (the default).
	JSStorages []string
	// R3 enables the three-server NATS cluster and the JetStream R3
	// buckets; without it only R1 is measured on one server.
	R3 bool
	// Embedded also starts a second zkv cluster in embedded mode (every
	// kvserver a NATS node, clustered with routes) on the same ZooKeeper
	// and measures the zkv operations on it too.
	Embedded bool
	// MemKeys is the number of distinct keys loaded for the memory
	// measurement after the other rounds (0: none).
	MemKeys  int
	KVServer string
	Log      io.Writer
	// OnCluster is called once the cluster is up.
	OnCluster func(*cluster.Local)
	// OnStep is called after each measurement.
	OnStep func(label string)
}

// KVResult is one operation at one concurrency.
type KVResult struct {
	Op      string
	Clients int
	Replica string // for the lag and memory rows
	Errors  int64
	Elapsed time.Duration
	Latency Summary
	// Throughput in operations per second.
	Throughput float64
	// Memory rows only: the server's resident set before and after the
	// load of Latency.N keys, and the raw bytes (key + value) of one key.
	RSSBefore, RSSAfter int64
	RawPerKey           int
}

// KVSteps is the number of OnStep calls RunKV makes.
func (c KVConfig) KVSteps() int {
	n := c.Rounds*len(KVOps)*len(c.Clients) + 1
	if c.MemKeys > 0 {
		n++
	}
	return n
}

// withDefaults fills in the zero fields of c.
func (c KVConfig) withDefaults() KVConfig {
	if c.Log == nil {
		c.Log = io.Discard
	}
	if len(c.Clients) == 0 {
		c.Clients = []int{1, 16, 64}
	}
	if c.Rounds < 1 {
		c.Rounds = 1
	}
	if c.ValueSize <= 0 {
		c.ValueSize = 100
	}
	if len(c.JSStorages) == 0 {
		c.JSStorages = []string{StorageFile, StorageMemory}
	}
	return c
}

// RunKV starts a cluster of ZooKeeper, NATS with JetStream (three
// clustered servers with R3, else one) and three kvservers (and three
// more in embedded mode with Embedded), measures every operation, the
// replication lag and, with MemKeys, the memory per key.
func RunKV(ctx context.Context, cfg KVConfig) ([]KVResult, error) {
	cfg = cfg.withDefaults()
	nservers := 1
	if cfg.R3 {
		nservers = 3
	}
	fmt.Fprintf(cfg.Log, "starting ZooKeeper, %d NATS server(s) with JetStream and three kvservers\n", nservers)
	local, err := startLocal(ctx, cluster.LocalOptions{
		KVServer:       cfg.KVServer,
		NATSServers:    nservers,
		JetStream:      true,
		ServerLogLevel: "warn",
	})
	if err != nil {
		return nil, err
	}
	defer closeLocal(ctx, local)
	if cfg.OnCluster != nil {
		cfg.OnCluster(local)
	}

	slots := max(slices.Max(cfg.Clients), 3)
	w, err := newKVWorld(ctx, cfg, local, slots)
	if err != nil {
		return nil, err
	}
	defer w.close()
	fmt.Fprintf(cfg.Log, "leader %s, reading from and writing through %s\n", w.leader, w.follower)
	if cfg.Embedded {
		fmt.Fprintf(cfg.Log, "starting three kvservers in embedded mode (each a NATS node) on the same ZooKeeper\n")
		emb, err := startLocal(ctx, cluster.LocalOptions{
			KVServer:       cfg.KVServer,
			ZooKeeper:      local.ZooKeeper(),
			EmbeddedNATS:   true,
			ElectionPath:   "/bench-embedded",
			LeaderPath:     "/bench-embedded-leader",
			ServerLogLevel: "warn",
		})
		if err != nil {
			return nil, fmt.Errorf("kv: embedded cluster: %w", err)
		}
		defer closeLocal(ctx, emb)
		if w.emb, err = newEmbWorld(ctx, emb, slots, w.value); err != nil {
			return nil, err
		}
		defer w.emb.close()
		fmt.Fprintf(cfg.Log, "embedded: leader %s, reading from and writing through %s\n", w.emb.leader, w.emb.follower)
	}

	out, err := w.rounds(ctx)
	if err != nil {
		return nil, err
	}
	lag, err := w.replicationLag(ctx, cfg.LagSamples)
	if cfg.OnStep != nil {
		cfg.OnStep("replication lag")
	}
	if err != nil {
		return out, err
	}
	out = append(out, lag...)
	if cfg.MemKeys <= 0 {
		return out, nil
	}
	mem, err := w.memoryPerKey(ctx, local)
	if cfg.OnStep != nil {
		cfg.OnStep("memory per key")
	}
	if err != nil {
		return out, fmt.Errorf("kv: memory per key: %w", err)
	}
	return append(out, mem...), nil
}

// rounds measures every operation at every concurrency, Rounds times
// interleaved, and merges the rounds.
func (w *kvWorld) rounds(ctx context.Context) ([]KVResult, error) {
	return interleaved(ctx, w.cfg.Rounds, KVOps, w.cfg.Clients, w.cfg.Duration, w.measure, w.cfg.OnStep)
}

// kvWorld holds the connections and handles of the measurements on a
// running cluster: one connection per client slot, so concurrent clients
// never share a socket.
type kvWorld struct {
	cfg      KVConfig
	conns    []*nats.Conn
	clients  []*client.Client
	js       map[string][]jetstream.KeyValue // by bucket name, one handle per slot
	echo     *nats.Conn
	echoSubj string
	echoProc *exec.Cmd
	leader   string
	follower string
	replicas []string
	value    string
	body     []byte
	emb      *embWorld // nil without KVConfig.Embedded
}

// embWorld holds the clients of the cluster in embedded mode: toLeader[i]
// is connected to the leader's own NATS listener, toFollower[i] to the
// follower's.
type embWorld struct {
	local              *cluster.Local
	conns              []*nats.Conn
	toLeader, toFollow []*client.Client
	leader, follower   string
	followers          []string
}

func newEmbWorld(ctx context.Context, local *cluster.Local, n int, value string) (_ *embWorld, err error) {
	e := &embWorld{local: local}
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	connect := func(url string) (*client.Client, error) {
		nc, err := nats.Connect(url, nats.MaxReconnects(-1))
		if err != nil {
			return nil, fmt.Errorf("kv: embedded cluster: %w", err)
		}
		e.conns = append(e.conns, nc)
		return client.New(nc, client.WithRequestTimeout(5*time.Second))
	}
	first, err := connect(local.NATSURL())
	if err != nil {
		return nil, err
	}
	leader, followers, err := firstLeader(ctx, first, local)
	if err != nil {
		return nil, fmt.Errorf("kv: embedded cluster not ready: %w", err)
	}
	e.leader, e.follower, e.followers = leader, followers[0], followers
	for range n {
		l, err := connect(local.NodeNATSURL(e.leader))
		if err != nil {
			return nil, err
		}
		f, err := connect(local.NodeNATSURL(e.follower))
		if err != nil {
			return nil, err
		}
		e.toLeader, e.toFollow = append(e.toLeader, l), append(e.toFollow, f)
	}
	hctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if _, err := e.toLeader[0].Put(hctx, "bench-read", value); err != nil {
		return nil, fmt.Errorf("kv: embedded cluster: first write: %w", err)
	}
	err = harness.WaitFor(hctx, 10*time.Millisecond, func() error {
		r, err := e.toFollow[0].Read(hctx, "bench-read", client.FromNode(e.follower))
		if err == nil && !r.Found {
			err = errors.New("bench-read not replicated yet")
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("kv: embedded cluster: %w", err)
	}
	return e, nil
}

func (e *embWorld) close() {
	for _, nc := range e.conns {
		nc.Close()
	}
}

func newKVWorld(ctx context.Context, cfg KVConfig, local *cluster.Local, n int) (*kvWorld, error) {
	w := &kvWorld{cfg: cfg, value: strings.Repeat("v", cfg.ValueSize)}
	w.body = bus.Encode(bus.WriteRequest{Key: "bench-0", Value: w.value})
	var err error
	if w.echo, err = dial(local); err != nil {
		return nil, err
	}
	w.echoSubj = "bench.echo"
	if _, err := w.echo.Subscribe(w.echoSubj, func(m *nats.Msg) { _ = m.Respond(m.Data) }); err != nil {
		w.close()
		return nil, err
	}
	if err := w.echo.Flush(); err != nil {
		w.close()
		return nil, err
	}
	if w.echoProc, err = startEchoProcess(ctx, local.NATSURL(), echoProcSubject); err != nil {
		fmt.Fprintf(cfg.Log, "no echo responder process (%v): R is measured in-process only\n", err)
	}
	for range n {
		nc, err := dial(local)
		if err != nil {
			w.close()
			return nil, err
		}
		w.conns = append(w.conns, nc)
		c, err := client.New(nc, client.WithRequestTimeout(5*time.Second))
		if err != nil {
			w.close()
			return nil, err
		}
		w.clients = append(w.clients, c)
	}
	w.leader, w.replicas, err = firstLeader(ctx, w.clients[0], local)
	if err != nil {
		w.close()
		return nil, fmt.Errorf("kv: cluster not ready: %w", err)
	}
	w.follower = w.replicas[0]
	hctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if _, err := w.clients[0].Put(hctx, "bench-read", w.value); err != nil {
		w.close()
		return nil, fmt.Errorf("kv: first write: %w", err)
	}
	w.js = map[string][]jetstream.KeyValue{}
	for _, storage := range cfg.JSStorages {
		for _, replicas := range []int{1, 3} {
			if replicas == 3 && !cfg.R3 {
				continue
			}
			if err := w.openBucket(hctx, replicas, storage); err != nil {
				w.close()
				return nil, err
			}
		}
	}
	return w, nil
}

// openBucket creates the JetStream KV bucket of replicas and storage (an
// R1 bucket on s1, beside the kvservers' server), writes the key the gets
// read, and opens a handle on it for every client slot.
func (w *kvWorld) openBucket(ctx context.Context, replicas int, storage string) error {
	name := bucketName(replicas, storage)
	hs, err := openKVBucket(ctx, w.conns, name, replicas, storage, w.value)
	if err != nil {
		return fmt.Errorf("kv: %w", err)
	}
	w.js[name] = hs
	return nil
}

// openKVBucket creates the JetStream KV bucket name of replicas and
// storage on the NATS servers conns reach (an R1 bucket on the server
// tagged node:s1), puts value at "bench-read", and returns a handle on it
// for each of conns.
func openKVBucket(ctx context.Context, conns []*nats.Conn, name string, replicas int, storage, value string) ([]jetstream.KeyValue, error) {
	kcfg := jetstream.KeyValueConfig{Bucket: name, Replicas: replicas, Storage: jetstream.FileStorage, History: 1}
	if storage == StorageMemory {
		kcfg.Storage = jetstream.MemoryStorage
	}
	if replicas == 1 {
		kcfg.Placement = &jetstream.Placement{Tags: []string{"node:s1"}}
	}
	js, err := jetstream.New(conns[0])
	if err != nil {
		return nil, fmt.Errorf("JetStream: %w", err)
	}
	var kv jetstream.KeyValue
	err = harness.WaitFor(ctx, 100*time.Millisecond, func() error {
		var err error
		kv, err = js.CreateOrUpdateKeyValue(ctx, kcfg)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("JetStream bucket %s: %w", name, err)
	}
	if _, err := kv.Put(ctx, "bench-read", []byte(value)); err != nil {
		return nil, fmt.Errorf("JetStream bucket %s: %w", name, err)
	}
	var hs []jetstream.KeyValue
	for _, nc := range conns {
		js, err := jetstream.New(nc)
		if err != nil {
			return nil, fmt.Errorf("JetStream: %w", err)
		}
		h, err := js.KeyValue(ctx, name)
		if err != nil {
			return nil, fmt.Errorf("JetStream bucket %s: %w", name, err)
		}
		hs = append(hs, h)
	}
	return hs, nil
}

func (w *kvWorld) close() {
	for _, nc := range w.conns {
		nc.Close()
	}
	if w.echo != nil {
		w.echo.Close()
	}
	if w.echoProc != nil {
		_ = w.echoProc.Process.Kill()
		_ = w.echoProc.Wait()
	}
}

// opFunc returns the call client i makes for op.
func (w *kvWorld) opFunc(op string, i int) func(context.Context) error {
	c := w.clients[i]
	key := fmt.Sprintf("bench-%d", i)
	val := []byte(w.value)
	switch op {
	case OpEcho, OpEchoInProc:
		nc := w.conns[i]
		subj := w.echoSubj
		if op == OpEcho {
			subj = echoProcSubject
		}
		return func(ctx context.Context) error {
			_, err := nc.RequestWithContext(ctx, subj, w.body)
			return err
		}
	case OpRead:
		return func(ctx context.Context) error {
			r, err := c.Read(ctx, "bench-read", client.FromNode(w.follower))
			if err == nil && !r.Found {
				err = errors.New("bench-read not found")
			}
			return err
		}
	case OpWriteLeader:
		return w.putFunc(c, key, client.WithAcks(bus.AcksLeader))
	case OpWriteAll:
		return w.putFunc(c, key, client.WithAcks(bus.AcksAll))
	case OpWriteFollower:
		return w.putFunc(c, key, client.WithAcks(bus.AcksLeader), client.Via(w.follower))
	case OpEmbRead:
		c := w.emb.toFollow[i]
		return func(ctx context.Context) error {
			r, err := c.Read(ctx, "bench-read", client.FromNode(w.emb.follower))
			if err == nil && !r.Found {
				err = errors.New("bench-read not found")
			}
			return err
		}
	case OpEmbWriteLeader:
		return w.putFunc(w.emb.toLeader[i], key, client.WithAcks(bus.AcksLeader))
	case OpEmbWriteAll:
		return w.putFunc(w.emb.toLeader[i], key, client.WithAcks(bus.AcksAll))
	case OpEmbWriteFollower:
		return w.putFunc(w.emb.toFollow[i], key, client.WithAcks(bus.AcksLeader), client.Via(w.emb.follower))
	}
	if j, ok := jsOps[op]; ok {
		kv := w.js[bucketName(j.replicas, j.storage)][i]
		if j.put {
			return func(ctx context.Context) error { _, err := kv.Put(ctx, key, val); return err }
		}
		return func(ctx context.Context) error { _, err := kv.Get(ctx, "bench-read"); return err }
	}
	panic("unknown op " + op)
}

// putFunc is a client's write of key with opts.
func (w *kvWorld) putFunc(c *client.Client, key string, opts ...client.WriteOption) func(context.Context) error {
	return func(ctx context.Context) error { _, err := c.Put(ctx, key, w.value, opts...); return err }
}

// available reports whether op can be measured in this run.
func (w *kvWorld) available(op string) bool {
	switch {
	case op == OpEcho:
		return w.echoProc != nil
	case isEmbedded(op):
		return w.emb != nil
	}
	if j, ok := jsOps[op]; ok {
		return len(w.js[bucketName(j.replicas, j.storage)]) > 0
	}
	return true
}

// measure runs op with c concurrent clients for d and returns the
// latencies of the successful calls, the errors and the elapsed time.
func (w *kvWorld) measure(ctx context.Context, op string, c int, d time.Duration) (*Hist, int64, time.Duration) {
	if !w.available(op) {
		return NewHist(), 0, 0
	}
	calls := make([]func(context.Context) error, c)
	for i := range c {
		calls[i] = w.opFunc(op, i)
	}
	return runCalls(ctx, calls, d)
}

var errQuietDone = errors.New("seen")

// replicationLag writes a key through the leader n times; for each write
// it takes the leader's publish time (Update.Time, on the replication
// subject) and, for each replica, the wall-clock times of the last read
// that did not yet see the new value and of the first that did. The
// apply happened in between: upper = first seen − publish, lower = last
// unseen − publish (at least 0).
func (w *kvWorld) replicationLag(ctx context.Context, n int) ([]KVResult, error) {
	if n <= 0 {
		return nil, nil
	}
	pubs := make(chan bus.Update, 1024)
	var delivery []time.Duration
	var dmu sync.Mutex
	sub, err := w.echo.Subscribe(bus.Subjects{}.Replication(), func(m *nats.Msg) {
		at := time.Now().UnixNano()
		ups, _ := bus.DecodeReplication(m.Data)
		if len(ups) == 1 && ups[0].Kind == bus.KindPut && ups[0].Key == "bench-lag" {
			u := ups[0]
			dmu.Lock()
			delivery = append(delivery, time.Duration(at-u.Time))
			dmu.Unlock()
			select {
			case pubs <- u:
			default:
			}
		}
	})
	if err != nil {
		return nil, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := w.echo.Flush(); err != nil {
		return nil, err
	}
	// Quiet phase: only the writes, so that the delivery floor is not
	// inflated by the pollers of the next phase.
	for i := range max(n/2, 1) {
		want := fmt.Sprintf("quiet-%d", i)
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := w.clients[0].Put(pctx, "bench-lag", want)
		for err == nil {
			select {
			case u := <-pubs:
				if u.Value == want {
					err = errQuietDone
				}
			case <-pctx.Done():
				err = pctx.Err()
			}
		}
		cancel()
	}
	dmu.Lock()
	quiet := delivery
	delivery = nil
	dmu.Unlock()

	// The replicas' own timestamps: one write at a time, then each
	// replica's status, whose last_applied is then the apply of that write.
	applied := make([][]time.Duration, len(w.replicas))
	ownClock := true
	for i := 0; i < n && ownClock; i++ {
		want := fmt.Sprintf("applied-%d", i)
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		rep, err := w.clients[0].Put(pctx, "bench-lag", want)
		var pub bus.Update
		for err == nil && pub.Value != want {
			select {
			case pub = <-pubs:
			case <-pctx.Done():
				err = pctx.Err()
			}
		}
		for ri, node := range w.replicas {
			for err == nil {
				st, serr := w.clients[1].Status(pctx, node)
				if serr != nil {
					err = serr
					break
				}
				if st.AppliedSeq >= rep.Revision {
					if st.LastApplied == 0 {
						ownClock = false
					} else {
						applied[ri] = append(applied[ri], time.Duration(st.LastApplied-pub.Time))
					}
					break
				}
				_ = harness.Sleep(pctx, 200*time.Microsecond)
			}
		}
		cancel()
	}

	upper := make([][]time.Duration, len(w.replicas))
	lower := make([][]time.Duration, len(w.replicas))
	var errCount int64
	for i := range n {
		want := fmt.Sprintf("lag-%d", i)
		type seen struct{ lastUnseen, firstSeen int64 }
		results := make([]seen, len(w.replicas))
		var wg sync.WaitGroup
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		started := make(chan struct{}, len(w.replicas))
		for ri, rep := range w.replicas {
			c := w.clients[1+ri%(len(w.clients)-1)]
			wg.Go(func() {
				first := true
				var lastSend int64
				for pctx.Err() == nil {
					send := time.Now().UnixNano()
					r, err := c.Read(pctx, "bench-lag", client.FromNode(rep))
					if first {
						started <- struct{}{}
						first = false
					}
					if err == nil && r.Value == want {
						results[ri] = seen{lastUnseen: lastSend, firstSeen: time.Now().UnixNano()}
						return
					}
					lastSend = send
				}
			})
		}
		for range w.replicas {
			<-started
		}
		_, err := w.clients[0].Put(pctx, "bench-lag", want)
		var pub bus.Update
		if err == nil {
			for err == nil && pub.Value != want {
				select {
				case pub = <-pubs:
				case <-pctx.Done():
					err = pctx.Err()
				}
			}
		}
		wg.Wait()
		cancel()
		if err != nil {
			errCount++
			continue
		}
		for ri, s := range results {
			if s.firstSeen == 0 {
				errCount++
				continue
			}
			upper[ri] = append(upper[ri], time.Duration(s.firstSeen-pub.Time))
			lower[ri] = append(lower[ri], time.Duration(max(s.lastUnseen-pub.Time, 0)))
		}
	}
	out := []KVResult{{Op: OpLagDelivery, Clients: 1, Replica: "driver", Latency: Summarize(quiet)}}
	if ownClock {
		for ri, node := range w.replicas {
			out = append(out, KVResult{Op: OpLagApplied, Clients: 1, Replica: node, Latency: Summarize(applied[ri])})
		}
	}
	for ri, rep := range w.replicas {
		out = append(out,
			KVResult{Op: OpLagUpper, Clients: 1, Replica: rep, Errors: errCount, Latency: Summarize(upper[ri])},
			KVResult{Op: OpLagLower, Clients: 1, Replica: rep, Errors: errCount, Latency: Summarize(lower[ri])},
		)
	}
	return out, nil
}

// echoProcSubject is the subject of the echo responder process.
const echoProcSubject = "bench.echo.proc"

// startEchoProcess runs this executable's hidden `bench echo-responder`
// command, so that R is measured against a responder that is, like a
// kvserver, a separate process the kernel has to wake up.
func startEchoProcess(ctx context.Context, url, subject string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "bench", "echo-responder", "--nats", url, "--subject", subject)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	_ = stdin // closed when the driver exits, which ends the responder
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ready := make(chan error, 1)
	go func() {
		line, err := bufio.NewReader(out).ReadString('\n')
		if err == nil && strings.TrimSpace(line) != "ready" {
			err = fmt.Errorf("echo responder said %q", line)
		}
		ready <- err
	}()
	select {
	case err = <-ready:
	case <-time.After(10 * time.Second):
		err = errors.New("echo responder not ready after 10s")
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return nil, err
	}
	return cmd, nil
}

// EchoResponder answers every request on subject with its body until
// stdin closes or a signal arrives. It prints "ready" once subscribed.
func EchoResponder(url, subject string) error {
	nc, err := nats.Connect(url)
	if err != nil {
		return err
	}
	defer nc.Close()
	if _, err := nc.Subscribe(subject, func(m *nats.Msg) { _ = m.Respond(m.Data) }); err != nil {
		return err
	}
	if err := nc.Flush(); err != nil {
		return err
	}
	fmt.Println("ready")
	done := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(done)
	}()
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	select {
	case <-done:
	case <-sig:
	}
	return nil
}
