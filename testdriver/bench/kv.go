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
	"strings"
	"sync"
	"sync/atomic"
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
	OpWriteLeader   = "zkv-write"          // kv.write, answered by the leader
	OpWriteFollower = "zkv-write-follower" // kv.node.<follower>.write, forwarded
	// The same three on a second cluster in embedded mode: each kvserver
	// is a NATS node, and each client connects to the node it addresses
	// (the follower for reads and forwarded writes, the leader for
	// kv.write), so a request is one hop into the process that holds the
	// data, as a JetStream R1 request is.
	OpEmbRead          = "zkv-embedded-read"
	OpEmbWriteLeader   = "zkv-embedded-write"
	OpEmbWriteFollower = "zkv-embedded-write-follower"
	OpJSR1Put          = "js-kv-r1-put"
	OpJSR1Get          = "js-kv-r1-get"
	OpJSR3Put          = "js-kv-r3-put"
	OpJSR3Get          = "js-kv-r3-get"
	OpLagUpper         = "replication-lag-upper" // per replica: publish → first read that saw it
	OpLagLower         = "replication-lag-lower" // per replica: publish → last read that did not
	// OpLagApplied is the lag from the replica's own clock: its status's
	// last_applied − the leader's publish time (kvservers that report it).
	OpLagApplied = "replication-lag"
	// OpLagDelivery is publish → the driver's own subscription on the
	// same NATS server receiving the update: the network part of the lag,
	// without the replica's decode and apply (a floor, not the lag).
	OpLagDelivery = "replication-delivery"
)

// KVOps are the measured operations in report order.
var KVOps = []string{OpEcho, OpEchoInProc, OpRead, OpWriteLeader, OpWriteFollower, OpEmbRead, OpEmbWriteLeader, OpEmbWriteFollower, OpJSR1Put, OpJSR1Get, OpJSR3Put, OpJSR3Get}

// KVConfig configures RunKV.
type KVConfig struct {
	// Duration of one measurement of one operation at one concurrency;
	// each is repeated Rounds times, interleaved with the others, and the
	// rounds merged, so that a noisy moment of a shared machine hits every
	// operation alike.
	Duration time.Duration
	Rounds   int
	// Clients are the concurrency levels (default 1 and 16).
	Clients []int
	// LagSamples is the number of replication-lag samples.
	LagSamples int
	// ValueSize is the size of written values in bytes.
	ValueSize int
	// JSStorage is "file" (default) or "memory".
	JSStorage string
	// R3 enables the three-server NATS cluster and the JetStream R3
	// bucket; without it only R1 is measured on one server.
	R3 bool
	// Embedded also starts a second zkv cluster in embedded mode (every
	// kvserver a NATS node, clustered with routes) on the same ZooKeeper
	// and measures the zkv operations on it too.
	Embedded bool
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
	Replica string // for the lag rows
	Errors  int64
	Elapsed time.Duration
	Latency Summary
	// Throughput in operations per second.
	Throughput float64
}

// KVSteps is the number of OnStep calls RunKV makes.
func (c KVConfig) KVSteps() int { return c.Rounds*len(KVOps)*len(c.Clients) + 1 }

// RunKV starts a cluster of ZooKeeper, NATS with JetStream (three
// clustered servers with R3, else one) and three kvservers, and measures
// every operation.
func RunKV(ctx context.Context, cfg KVConfig) ([]KVResult, error) {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if len(cfg.Clients) == 0 {
		cfg.Clients = []int{1, 16}
	}
	if cfg.Rounds < 1 {
		cfg.Rounds = 1
	}
	if cfg.ValueSize <= 0 {
		cfg.ValueSize = 100
	}
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

	maxClients := 0
	for _, c := range cfg.Clients {
		maxClients = max(maxClients, c)
	}
	w, err := newKVWorld(ctx, cfg, local, max(maxClients, 3))
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
		if w.emb, err = newEmbWorld(ctx, emb, max(maxClients, 3), w.value); err != nil {
			return nil, err
		}
		defer w.emb.close()
		fmt.Fprintf(cfg.Log, "embedded: leader %s, reading from and writing through %s\n", w.emb.leader, w.emb.follower)
	}

	type key struct {
		op string
		c  int
	}
	hists := map[key]*Hist{}
	errs := map[key]int64{}
	elapsed := map[key]time.Duration{}
	for round := 1; round <= cfg.Rounds; round++ {
		for _, op := range KVOps {
			for _, c := range cfg.Clients {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				h, n, el := w.measure(ctx, op, c, cfg.Duration)
				k := key{op, c}
				if hists[k] == nil {
					hists[k] = NewHist()
				}
				hists[k].Merge(h)
				errs[k] += n
				elapsed[k] += el
				if cfg.OnStep != nil {
					cfg.OnStep(fmt.Sprintf("round %d %s ×%d: p50 %s µs", round, op, c, Us(h.Quantile(50))))
				}
			}
		}
	}
	var out []KVResult
	for _, op := range KVOps {
		for _, c := range cfg.Clients {
			k := key{op, c}
			h := hists[k]
			r := KVResult{Op: op, Clients: c, Errors: errs[k], Elapsed: elapsed[k], Latency: h.Summary()}
			if elapsed[k] > 0 {
				r.Throughput = float64(h.Count()) / elapsed[k].Seconds()
			}
			out = append(out, r)
		}
	}
	lag, err := w.replicationLag(ctx, cfg.LagSamples)
	if cfg.OnStep != nil {
		cfg.OnStep("replication lag")
	}
	if err != nil {
		return out, err
	}
	return append(out, lag...), nil
}

// kvWorld holds the connections and handles of the measurements on a
// running cluster: one connection per client slot, so concurrent clients
// never share a socket.
type kvWorld struct {
	cfg      KVConfig
	conns    []*nats.Conn
	clients  []*client.Client
	r1, r3   []jetstream.KeyValue
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
	conns              []*nats.Conn
	toLeader, toFollow []*client.Client
	leader, follower   string
}

func newEmbWorld(ctx context.Context, local *cluster.Local, n int, value string) (_ *embWorld, err error) {
	e := &embWorld{}
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
	e.leader, e.follower = leader, followers[0]
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
	storage := jetstream.FileStorage
	if cfg.JSStorage == "memory" {
		storage = jetstream.MemoryStorage
	}
	buckets := []struct {
		name     string
		replicas int
		dst      *[]jetstream.KeyValue
	}{{"bench_r1", 1, &w.r1}}
	if cfg.R3 {
		buckets = append(buckets, struct {
			name     string
			replicas int
			dst      *[]jetstream.KeyValue
		}{"bench_r3", 3, &w.r3})
	}
	for _, b := range buckets {
		kcfg := jetstream.KeyValueConfig{Bucket: b.name, Replicas: b.replicas, Storage: storage, History: 1}
		if b.replicas == 1 {
			kcfg.Placement = &jetstream.Placement{Tags: []string{"node:s1"}}
		}
		js, err := jetstream.New(w.conns[0])
		if err != nil {
			w.close()
			return nil, err
		}
		var kv jetstream.KeyValue
		err = harness.WaitFor(hctx, 100*time.Millisecond, func() error {
			var err error
			kv, err = js.CreateOrUpdateKeyValue(hctx, kcfg)
			return err
		})
		if err != nil {
			w.close()
			return nil, fmt.Errorf("kv: JetStream bucket %s: %w", b.name, err)
		}
		if _, err := kv.Put(hctx, "bench-read", []byte(w.value)); err != nil {
			w.close()
			return nil, fmt.Errorf("kv: JetStream bucket %s: %w", b.name, err)
		}
		for _, nc := range w.conns {
			js, err := jetstream.New(nc)
			if err != nil {
				w.close()
				return nil, err
			}
			h, err := js.KeyValue(hctx, b.name)
			if err != nil {
				w.close()
				return nil, err
			}
			*b.dst = append(*b.dst, h)
		}
	}
	return w, nil
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
		return func(ctx context.Context) error { _, err := c.Put(ctx, key, w.value); return err }
	case OpWriteFollower:
		return func(ctx context.Context) error {
			_, err := c.Put(ctx, key, w.value, client.Via(w.follower))
			return err
		}
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
		c := w.emb.toLeader[i]
		return func(ctx context.Context) error { _, err := c.Put(ctx, key, w.value); return err }
	case OpEmbWriteFollower:
		c := w.emb.toFollow[i]
		return func(ctx context.Context) error {
			_, err := c.Put(ctx, key, w.value, client.Via(w.emb.follower))
			return err
		}
	case OpJSR1Put, OpJSR3Put:
		kv := w.bucket(op, i)
		return func(ctx context.Context) error { _, err := kv.Put(ctx, key, val); return err }
	case OpJSR1Get, OpJSR3Get:
		kv := w.bucket(op, i)
		return func(ctx context.Context) error { _, err := kv.Get(ctx, "bench-read"); return err }
	}
	panic("unknown op " + op)
}

func (w *kvWorld) bucket(op string, i int) jetstream.KeyValue {
	if op == OpJSR3Put || op == OpJSR3Get {
		if w.r3 == nil {
			return nil
		}
		return w.r3[i]
	}
	return w.r1[i]
}

// measure runs op with c concurrent clients for d and returns the
// latencies of the successful calls, the errors and the elapsed time.
func (w *kvWorld) measure(ctx context.Context, op string, c int, d time.Duration) (*Hist, int64, time.Duration) {
	embedded := op == OpEmbRead || op == OpEmbWriteLeader || op == OpEmbWriteFollower
	if (op == OpJSR3Put || op == OpJSR3Get) && w.r3 == nil || op == OpEcho && w.echoProc == nil || embedded && w.emb == nil {
		return NewHist(), 0, 0
	}
	hists := make([]*Hist, c)
	var errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for i := range c {
		hists[i] = NewHist()
		f := w.opFunc(op, i)
		wg.Go(func() {
			for time.Now().Before(end) && ctx.Err() == nil {
				rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				t := time.Now()
				err := f(rctx)
				el := time.Since(t)
				cancel()
				if err != nil {
					errs.Add(1)
					continue
				}
				hists[i].Record(el)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	h := NewHist()
	for _, x := range hists {
		h.Merge(x)
	}
	return h, errs.Load(), elapsed
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
