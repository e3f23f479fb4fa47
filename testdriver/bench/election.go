package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/nats-io/nats.go"

	"github.com/zkvstore/zkv/client"
	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/testdriver/cluster"
)

// Ways the election benchmark stops the leader: package cluster's two,
// and pause.
const (
	StopKill  = string(cluster.StopKill) // crash: the session must expire
	StopTerm  = string(cluster.StopTerm) // clean resignation
	StopPause = "pause"                  // SIGSTOP past the session timeout, then SIGCONT
)

// ParseStop checks a --stop value: pause, or a stop cluster.ParseStop
// accepts.
func ParseStop(s string) (string, error) {
	if strings.EqualFold(strings.TrimSpace(s), StopPause) {
		return StopPause, nil
	}
	st, err := cluster.ParseStop(s)
	if err != nil {
		return "", fmt.Errorf("%w, or pause", err)
	}
	return string(st), nil
}

// Paths kvserver uses by default.
const (
	electionPath = "/election"
	leaderPath   = "/leader"
)

// ElectionConfig configures RunElection. Every combination of ZK, Stops
// and SessionTimeouts is a setting, measured Runs times.
type ElectionConfig struct {
	Runs            int
	ZK              []string
	Stops           []string
	SessionTimeouts []time.Duration
	// FastFailover lists the kvserver --fast-failover values to compare
	// (default: on only). Each is a cluster of its own.
	FastFailover []bool
	// TickTime of the local ZooKeeper servers (0: harness default, 200 ms).
	TickTime time.Duration
	// Latency and Jitter of the remote proxy, one way.
	Latency, Jitter time.Duration
	// ExternalZK is a real ZooKeeper (host:port[,...]) used instead of a
	// local one; ZK is then only a label.
	ExternalZK string
	// KVServer is the kvserver binary.
	KVServer string
	// WriteInterval paces the background writer (default 20 ms).
	WriteInterval time.Duration
	// Log receives progress lines and the servers' output (nil: discard).
	Log io.Writer
	// OnRun is called after every run (for progress and incremental CSV).
	OnRun func(ElectionRun)
	// OnSetting is called before the first run of each setting.
	OnSetting func(zkMode, stop string, timeout time.Duration, fast string)
	// OnZK is called once each ZooKeeper deployment is up (with NATS, and
	// no kvservers yet).
	OnZK func(*cluster.Local)
}

// ElectionRun is one measured failover. Durations are from the moment the
// driver sent the signal, on the driver's monotonic clock; a negative
// duration means the event was not seen.
type ElectionRun struct {
	ZK             string
	Stop           string
	SessionTimeout time.Duration
	// Fast is "on" or "off": the kvservers' --fast-failover.
	Fast string
	Run  int
	// Negotiated is the session timeout ZooKeeper granted a client asking
	// for SessionTimeout.
	Negotiated time.Duration
	TickTime   time.Duration
	// ZKRTT and NATSRTT are the medians of 20 round trips measured before
	// the setting's first run: a read (Exists) and a request to an echo
	// responder. ZKWriteRTT is the median of 20 SetData calls: a write,
	// which ZooKeeper logs to disk (fsync) before it answers.
	ZKRTT, ZKWriteRTT, NATSRTT time.Duration
	OldLeader                  string
	NewLeader                  string
	OldEpoch                   uint64
	NewEpoch                   uint64
	// ZnodeGone is (a): the old leader's election znode deleted.
	ZnodeGone time.Duration
	// LeaderSeen is (b): the new leader's /leader znode created.
	LeaderSeen time.Duration
	// FirstWrite is (c): the first write acknowledged by the new leader.
	FirstWrite time.Duration
	Err        string
}

// leaderZnode is the JSON of /leader.
type leaderZnode struct {
	ID       string `json:"id"`
	Addr     string `json:"addr"`
	Epoch    uint64 `json:"epoch"`
	Revision uint64 `json:"revision"`
	Znode    string `json:"znode"`
}

// RunElection measures every setting of cfg and returns the runs in order.
// A failed run is recorded with Err and the setting goes on; an error
// is returned only when a deployment cannot be started.
func RunElection(ctx context.Context, cfg ElectionConfig) ([]ElectionRun, error) {
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	if cfg.WriteInterval <= 0 {
		cfg.WriteInterval = 20 * time.Millisecond
	}
	if cfg.Runs < 1 {
		return nil, errors.New("election: need at least one run")
	}
	if slices.Contains(cfg.ZK, ZKRemote) && cfg.ExternalZK == "" && cfg.Latency <= 0 {
		return nil, errors.New("election: a remote ZooKeeper needs a positive latency")
	}
	var out []ElectionRun
	for _, mode := range cfg.ZK {
		runs, err := runZKMode(ctx, cfg, mode)
		out = append(out, runs...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

func runZKMode(ctx context.Context, cfg ElectionConfig, mode string) ([]ElectionRun, error) {
	fmt.Fprintf(cfg.Log, "starting ZooKeeper (%s)\n", mode)
	opts, tick := deployment(cfg, mode)
	env, err := startLocal(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("election %s: %w", mode, err)
	}
	defer closeLocal(ctx, env)
	if cfg.OnZK != nil {
		cfg.OnZK(env)
	}
	fast := cfg.FastFailover
	if len(fast) == 0 {
		fast = []bool{true}
	}
	var out []ElectionRun
	for _, st := range cfg.SessionTimeouts {
		for _, on := range fast {
			runs, err := runCluster(ctx, cfg, env, ElectionRun{ZK: mode, SessionTimeout: st, TickTime: tick, Fast: OnOff(on)})
			out = append(out, runs...)
			if err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// OnOff names a --fast-failover value as the report does.
func OnOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// deployment returns the options of the ZooKeeper deployment mode names,
// with a NATS server and without kvservers (each setting starts its own
// cluster against them), and the ZooKeeper servers' tick (0 when unknown:
// an external ZooKeeper).
func deployment(cfg ElectionConfig, mode string) (cluster.LocalOptions, time.Duration) {
	opts := cluster.LocalOptions{KVServer: cfg.KVServer, NoServers: true, ZooKeeperTick: cfg.TickTime}
	tick := cfg.TickTime
	if tick <= 0 {
		tick = harness.DefaultTickTime
	}
	switch {
	case cfg.ExternalZK != "":
		opts.ZooKeeper, tick = cfg.ExternalZK, 0
	case mode == ZKEnsemble:
		opts.ZooKeeperEnsemble = true
	case mode == ZKRemote:
		opts.ZooKeeperLatency, opts.ZooKeeperJitter = cfg.Latency, cfg.Jitter
	}
	return opts, tick
}

// writeAttempt bounds one attempt of the background writer: a write in
// flight to a leader that dies gets no answer and is sent again after it.
const writeAttempt = 100 * time.Millisecond

// election is the state of one cluster under test.
type election struct {
	cfg    ElectionConfig
	st     time.Duration
	local  *cluster.Local
	zc     *zk.Conn
	client *client.Client
	writer *writer
	base   ElectionRun
}

// runCluster starts three kvservers with the setting's session timeout
// against env's ZooKeeper and NATS and measures every stop of cfg on them.
func runCluster(ctx context.Context, cfg ElectionConfig, env *cluster.Local, base ElectionRun) ([]ElectionRun, error) {
	st := base.SessionTimeout
	// kvserver asks for its timeout less ZooKeeper's tick (it learns the
	// tick; here it is known), so that expiry rounded up to a tick comes
	// within the timeout: ask the same to learn what it is granted.
	ask := st
	if base.TickTime > 0 {
		adjust := base.TickTime
		if base.ZK == ZKEnsemble {
			adjust += base.TickTime / 2
		}
		ask -= min(adjust, st/4)
	}
	neg, err := NegotiatedTimeout(ctx, env.ZooKeeper(), ask)
	if err != nil {
		return nil, err
	}
	base.Negotiated = neg
	// ZooKeeper keeps ephemeral znodes of a previous cluster until its
	// sessions expire: wait until the election is empty.
	zc, _, err := DialZK(ctx, env.ZooKeeper(), 10*time.Second)
	if err != nil {
		return nil, err
	}
	defer zc.Close()
	wctx, cancel := context.WithTimeout(ctx, 4*st+30*time.Second)
	err = harness.WaitFor(wctx, 50*time.Millisecond, func() error {
		kids, _, err := zc.Children(electionPath)
		if errors.Is(err, zk.ErrNoNode) || (err == nil && len(kids) == 0) {
			return nil
		}
		return fmt.Errorf("%d election znodes left (%v)", len(kids), err)
	})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("election: %w", err)
	}
	if base.ZKRTT, err = ZKRoundTrip(zc, 20); err != nil {
		return nil, err
	}
	if base.ZKWriteRTT, err = ZKWriteRoundTrip(zc, 20); err != nil {
		return nil, err
	}
	nc, err := dial(env)
	if err != nil {
		return nil, fmt.Errorf("election: nats: %w", err)
	}
	defer nc.Close()
	if base.NATSRTT, err = NATSRoundTrip(ctx, nc, 20); err != nil {
		return nil, err
	}
	fmt.Fprintf(cfg.Log, "cluster: zk=%s fast_failover=%s session=%v negotiated=%v zk_rtt=%v zk_write_rtt=%v nats_rtt=%v\n", base.ZK, base.Fast, st, neg, base.ZKRTT, base.ZKWriteRTT, base.NATSRTT)

	local, err := startLocal(ctx, cluster.LocalOptions{
		KVServer:       cfg.KVServer,
		ZooKeeper:      env.ZooKeeper(),
		NATSURL:        env.NATSURL(),
		SessionTimeout: st,
		ServerLogLevel: "warn",
		NodeArgs:       []string{"--fast-failover=" + strconv.FormatBool(base.Fast != "off")},
	})
	if err != nil {
		return nil, err
	}
	defer closeLocal(ctx, local)
	kv, err := client.New(nc, client.WithRequestTimeout(writeAttempt), client.WithRetryBackoff(time.Millisecond, 5*time.Millisecond))
	if err != nil {
		return nil, err
	}
	e := &election{cfg: cfg, st: st, local: local, zc: zc, client: kv, base: base}
	e.writer = startWriter(ctx, kv, cfg.WriteInterval)
	defer e.writer.stop()

	var out []ElectionRun
	for _, stop := range cfg.Stops {
		if cfg.OnSetting != nil {
			cfg.OnSetting(base.ZK, stop, st, base.Fast)
		}
		for i := 1; i <= cfg.Runs; i++ {
			if err := ctx.Err(); err != nil {
				return out, err
			}
			r := e.run(ctx, stop, i)
			if r.Err != "" {
				fmt.Fprintf(cfg.Log, "run %s/%s/%v/fast-%s #%d: %s\n", base.ZK, stop, st, base.Fast, i, r.Err)
			}
			out = append(out, r)
			if cfg.OnRun != nil {
				cfg.OnRun(r)
			}
		}
	}
	return out, nil
}

// NATSRoundTrip is the median of n requests to an echo responder on a
// second connection to the same server.
func NATSRoundTrip(ctx context.Context, nc *nats.Conn, n int) (time.Duration, error) {
	echo, err := nats.Connect(nc.ConnectedUrl())
	if err != nil {
		return 0, fmt.Errorf("nats round trip: %w", err)
	}
	defer echo.Close()
	subj := "bench.echo." + nats.NewInbox()[len(nats.InboxPrefix):]
	if _, err := echo.Subscribe(subj, func(m *nats.Msg) { _ = m.Respond(m.Data) }); err != nil {
		return 0, fmt.Errorf("nats round trip: %w", err)
	}
	if err := echo.Flush(); err != nil {
		return 0, fmt.Errorf("nats round trip: %w", err)
	}
	body := []byte(`{"key":"bench","value":"x"}`)
	ds := make([]time.Duration, 0, n)
	for range n {
		rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		t := time.Now()
		_, err := nc.RequestWithContext(rctx, subj, body)
		cancel()
		if err != nil {
			return 0, fmt.Errorf("nats round trip: %w", err)
		}
		ds = append(ds, time.Since(t))
	}
	return Median(ds), nil
}

// ack is one acknowledged write of the background writer.
type ack struct {
	at    time.Time
	epoch uint64
	node  string
}

// writer writes one key every interval through the leader subject and
// reports each acknowledgement.
type writer struct {
	mu     sync.Mutex
	last   ack
	notify chan struct{}
	cancel context.CancelFunc
	done   chan struct{}
	// waiters are told of each ack.
	waiters []chan ack
}

func startWriter(ctx context.Context, c *client.Client, every time.Duration) *writer {
	ctx, cancel := context.WithCancel(ctx)
	w := &writer{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for i := 0; ctx.Err() == nil; i++ {
			pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
			rep, err := c.Put(pctx, "bench-load", fmt.Sprint(i))
			pcancel()
			if err == nil {
				a := ack{at: time.Now(), epoch: rep.Epoch, node: rep.Leader}
				w.mu.Lock()
				w.last = a
				for _, ch := range w.waiters {
					select {
					case ch <- a:
					default:
					}
				}
				w.mu.Unlock()
			}
			_ = harness.Sleep(ctx, every)
		}
	}()
	return w
}

// subscribe returns a channel that receives every later ack.
func (w *writer) subscribe() (<-chan ack, func()) {
	ch := make(chan ack, 4096)
	w.mu.Lock()
	w.waiters = append(w.waiters, ch)
	w.mu.Unlock()
	return ch, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		for i, c := range w.waiters {
			if c == ch {
				w.waiters = append(w.waiters[:i], w.waiters[i+1:]...)
				break
			}
		}
	}
}

func (w *writer) lastAck() ack {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.last
}

func (w *writer) stop() {
	w.cancel()
	<-w.done
}

// healthy waits until the cluster has one leader that every node follows,
// the /leader znode names it, and the writer got an ack from it. It
// returns the /leader content.
func (e *election) healthy(ctx context.Context) (leaderZnode, error) {
	var lz leaderZnode
	err := harness.WaitFor(ctx, 20*time.Millisecond, func() error {
		data, _, err := e.zc.Get(leaderPath)
		if err != nil {
			return fmt.Errorf("get %s: %w", leaderPath, err)
		}
		lz = leaderZnode{}
		if err := json.Unmarshal(data, &lz); err != nil {
			return fmt.Errorf("decode %s: %w", leaderPath, err)
		}
		got, view, err := cluster.AgreeOnce(ctx, e.client, e.local.Nodes(), cluster.LeaderWant{Connected: true, RequestTimeout: 500 * time.Millisecond})
		if err != nil {
			return fmt.Errorf("%w: %s", err, view)
		}
		if got.Leader != lz.ID || got.Epoch != lz.Epoch {
			return fmt.Errorf("the servers follow %s of epoch %d, %s names %s of epoch %d", got.Leader, got.Epoch, leaderPath, lz.ID, lz.Epoch)
		}
		if a := e.writer.lastAck(); a.epoch != lz.Epoch || time.Since(a.at) > time.Second {
			return fmt.Errorf("no recent write acknowledged in epoch %d", lz.Epoch)
		}
		return nil
	})
	return lz, err
}

// run measures one failover.
func (e *election) run(ctx context.Context, stop string, i int) ElectionRun {
	r := e.base
	r.Stop, r.Run = stop, i
	r.ZnodeGone, r.LeaderSeen, r.FirstWrite = -1, -1, -1
	fail := func(format string, args ...any) ElectionRun {
		r.Err = fmt.Sprintf(format, args...)
		return r
	}
	hctx, cancel := context.WithTimeout(ctx, 3*e.st+30*time.Second)
	old, err := e.healthy(hctx)
	cancel()
	if err != nil {
		return fail("cluster not healthy: %v", err)
	}
	r.OldLeader, r.OldEpoch = old.ID, old.Epoch
	node := e.local.Process(old.ID)
	if node == nil {
		return fail("leader %q is not one of ours", old.ID)
	}
	// (a) the leader's election znode.
	zpath := path.Join(electionPath, old.Znode)
	ok, _, gone, err := e.zc.ExistsW(zpath)
	if err != nil || !ok {
		return fail("watch %s: exists=%v err=%v", zpath, ok, err)
	}
	// (b) the new leader's /leader znode.
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	seen := make(chan leaderZnode, 1)
	seenAt := make(chan time.Time, 1)
	armed := make(chan error, 1)
	go e.watchLeader(wctx, old.Epoch, armed, seen, seenAt)
	if err := <-armed; err != nil {
		return fail("watch %s: %v", leaderPath, err)
	}
	// (c) the first write acknowledged by someone else.
	acks, unsub := e.writer.subscribe()
	defer unsub()

	t0 := time.Now()
	switch stop {
	case StopKill:
		err = node.Signal(syscall.SIGKILL)
	case StopTerm:
		err = node.Signal(syscall.SIGTERM)
	case StopPause:
		err = node.Pause()
	}
	if err != nil {
		return fail("stop %s: %v", old.ID, err)
	}
	deadline := time.NewTimer(3*e.st + 20*time.Second)
	defer deadline.Stop()
	for r.ZnodeGone < 0 || r.LeaderSeen < 0 || r.FirstWrite < 0 {
		select {
		case ev := <-gone:
			if ev.Type == zk.EventNodeDeleted {
				r.ZnodeGone = time.Since(t0)
			} else {
				r.Err = fmt.Sprintf("unexpected event on %s: %v %v", zpath, ev.Type, ev.Err)
			}
			gone = nil
		case at := <-seenAt:
			r.LeaderSeen = at.Sub(t0)
			lz := <-seen
			r.NewLeader, r.NewEpoch = lz.ID, lz.Epoch
		case a := <-acks:
			if a.epoch > old.Epoch && a.node != old.ID && a.at.After(t0) {
				r.FirstWrite = a.at.Sub(t0)
				acks = nil
			}
		case <-deadline.C:
			r.Err = "timed out waiting for the failover"
			goto recover
		case <-ctx.Done():
			r.Err = ctx.Err().Error()
			return r
		}
	}
recover:
	if err := e.recover(ctx, old.ID, stop, t0); err != nil && r.Err == "" {
		r.Err = err.Error()
	}
	return r
}

// recover brings the stopped node id back as a follower.
func (e *election) recover(ctx context.Context, id, stop string, t0 time.Time) error {
	node := e.local.Process(id)
	if stop == StopPause {
		// Past the session timeout, so the paused leader finds its
		// session expired and its lease stale when it resumes.
		_ = harness.Sleep(ctx, time.Until(t0.Add(e.st+e.st/2)))
		return node.Resume()
	}
	select {
	case <-node.Exited():
	case <-time.After(10 * time.Second):
		_ = e.local.Stop(ctx, id, cluster.StopKill)
	case <-ctx.Done():
		return ctx.Err()
	}
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return e.local.Start(rctx, id)
}

// watchLeader reports on armed once its first watch is set, then sends
// the first /leader of an epoch above old on seen, and when the watch
// event that revealed it fired on seenAt.
func (e *election) watchLeader(ctx context.Context, old uint64, armed chan<- error, seen chan<- leaderZnode, seenAt chan<- time.Time) {
	first := true
	var evAt time.Time
	for ctx.Err() == nil {
		data, _, ch, err := e.zc.GetW(leaderPath)
		if errors.Is(err, zk.ErrNoNode) {
			var ok bool
			ok, _, ch, err = e.zc.ExistsW(leaderPath)
			if err == nil && ok {
				continue // created in between: read it
			}
		}
		if err != nil {
			if first {
				armed <- err
				return
			}
			_ = harness.Sleep(ctx, time.Millisecond)
			continue
		}
		if data != nil {
			var lz leaderZnode
			if json.Unmarshal(data, &lz) == nil && lz.Epoch > old {
				at := evAt
				if at.IsZero() || first {
					at = time.Now()
				}
				if first {
					armed <- nil
				}
				seen <- lz
				seenAt <- at
				return
			}
		}
		if first {
			armed <- nil
			first = false
		}
		select {
		case ev := <-ch:
			if ev.Type == zk.EventNodeCreated || ev.Type == zk.EventNodeDataChanged {
				evAt = time.Now()
			} else {
				evAt = time.Time{}
			}
		case <-ctx.Done():
			return
		}
	}
}
