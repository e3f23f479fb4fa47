package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/client"
	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/testdriver/cluster"
)

// nodeIDs are the servers of every run's cluster.
var nodeIDs = []string{"n1", "n2", "n3"}

// clusterOptions configures one run's cluster.
type clusterOptions struct {
	// zk is the connect string of the suite's shared ZooKeeper; ensemble
	// starts the run's own ensemble instead.
	zk       string
	ensemble bool
	// proxied gives every server its own proxy to ZooKeeper, which
	// cluster.Local.Cut cuts.
	proxied bool
	// proxiedNATS gives every server its own proxy to NATS, which
	// cluster.Local.Cut cuts.
	proxiedNATS bool
	// session is the servers' ZooKeeper session timeout.
	session time.Duration
	// acks is the servers' --acks ("": the kvserver default); catchUp adds
	// --catch-up.
	acks    string
	catchUp bool
	// durable gives every server a data directory (kept across restarts)
	// in the run's directory; snapshotBytes, if set, is their
	// --snapshot-bytes, small enough that a run writes snapshots.
	durable       bool
	snapshotBytes int64
}

// args are the kvserver flags the options add.
func (o clusterOptions) args() []string {
	var args []string
	if o.acks != "" {
		args = append(args, "--acks", o.acks)
	}
	if o.catchUp {
		args = append(args, "--catch-up")
	}
	if o.snapshotBytes > 0 {
		args = append(args, "--snapshot-bytes", fmt.Sprint(o.snapshotBytes))
	}
	return args
}

// runEnv is one run of one case: its cluster, its clients and what they
// recorded.
type runEnv struct {
	s *suite
	// ctx is the run's: the load, the monitor, the attacker and every
	// request of the suite's clients stop when it ends.
	ctx     context.Context
	res     *RunResult
	dir     string // artifacts of the run
	tag     string // random, unique per run
	opts    clusterOptions
	hist    *History
	cl      *cluster.Local
	prefix  string
	paths   [2]string // election path, leader path
	ctlNC   *nats.Conn
	ctl     *client.Client
	own     *loader     // the suite's own operations (client -1)
	signer  *bus.Signer // the cluster's key, from its record in ZooKeeper
	wire    *wireWatch
	mon     *monitor
	loads   []*load
	clients int // load clients started, for unique client IDs
	notes   []string
	// watch is the run's watch (nil: none); killed are the servers a
	// fault sent SIGKILL, which may end it.
	watch  *watchRun
	killed []string
}

// newRun starts the run's cluster (NATS, the three servers and their
// proxies, and its own ZooKeeper ensemble if asked), the control client,
// the replication watcher and the status monitor. On error everything
// started is stopped.
func (s *suite) newRun(ctx context.Context, res *RunResult, opts clusterOptions) (_ *runEnv, err error) {
	var tb [6]byte
	_, _ = rand.Read(tb[:])
	e := &runEnv{
		s: s, ctx: ctx, res: res, opts: opts, tag: hex.EncodeToString(tb[:]),
		dir:  filepath.Join(s.logDir, res.Case, res.runName()),
		hist: NewHistory(time.Now()),
	}
	res.Dir = e.dir
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	safe := fileSafe(res.Case + "-" + res.Variant + "-" + fmt.Sprint(res.Run) + "-" + e.tag)
	e.prefix = "c" + e.tag
	e.paths = [2]string{"/chaos/" + safe + "/election", "/chaos/" + safe + "/leader"}
	var dataDir string
	if opts.durable {
		dataDir = filepath.Join(e.dir, "data")
	}
	e.cl, err = cluster.StartLocal(ctx, cluster.LocalOptions{
		DataDir:           dataDir,
		KVServer:          s.kvserver,
		ZooKeeper:         opts.zk,
		ZooKeeperEnsemble: opts.ensemble,
		ProxyZooKeeper:    opts.proxied,
		ProxyNATS:         opts.proxiedNATS,
		SessionTimeout:    opts.session,
		SubjectPrefix:     e.prefix,
		ElectionPath:      e.paths[0],
		LeaderPath:        e.paths[1],
		NodeArgs:          append([]string{"--write-timeout", s.cfg.WriteTimeout.String()}, opts.args()...),
		ServerLogLevel:    "info",
		LogDir:            e.dir,
		Parallel:          true,
	})
	if err != nil {
		return nil, err
	}
	e.ctlNC, err = e.connect("control")
	if err != nil {
		return nil, err
	}
	e.ctl, err = client.New(e.ctlNC, client.WithPrefix(e.prefix), client.WithRequestTimeout(400*time.Millisecond))
	if err != nil {
		return nil, err
	}
	e.own, err = e.newClient(-1)
	if err != nil {
		return nil, err
	}
	e.signer, err = e.clusterSigner(ctx)
	if err != nil {
		return nil, err
	}
	e.wire, err = e.watchWire()
	if err != nil {
		return nil, err
	}
	e.mon = e.startMonitor(ctx)
	return e, nil
}

// clusterSigner reads the cluster record the servers created next to the
// run's election path and returns a signer with its key.
func (e *runEnv) clusterSigner(ctx context.Context) (*bus.Signer, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rec, err := harness.ReadClusterRecord(ctx, strings.Join(e.cl.ZooKeeperDirect(), ","), harness.RecordPath(e.paths[0]), "")
	if err != nil {
		return nil, err
	}
	sg, err := bus.NewSigner(rec.ClusterID, rec.Key)
	if err != nil {
		return nil, fmt.Errorf("cluster record %s: %w", harness.RecordPath(e.paths[0]), err)
	}
	return sg, nil
}

// connect opens a NATS connection that reconnects for ever.
func (e *runEnv) connect(name string) (*nats.Conn, error) {
	return nats.Connect(e.cl.NATSURL(),
		nats.Name("chaos "+name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(100*time.Millisecond),
		nats.ReconnectBufSize(8<<20),
	)
}

// now is the current offset of the run's history.
func (e *runEnv) now() time.Duration { return e.hist.Now() }

// note adds a line to the run's notes in the report and log.
func (e *runEnv) note(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	e.notes = append(e.notes, msg)
	e.s.logf("    %s %s", fmtDur(e.now()), msg)
}

// violate records a violation of the run.
func (e *runEnv) violate(v Violation) {
	e.res.Violations = append(e.res.Violations, v)
	e.s.logf("    %s VIOLATION %s", fmtDur(e.now()), v)
}

// killAll sends SIGKILL to every server at once and waits until they are
// gone.
func (e *runEnv) killAll() {
	e.killed = append(e.killed, nodeIDs...)
	var wg sync.WaitGroup
	for _, id := range nodeIDs {
		wg.Go(func() { _ = e.cl.Process(id).Kill() })
	}
	wg.Wait()
}

// running returns the ids of the servers whose process runs.
func (e *runEnv) running() []string {
	var ids []string
	for _, id := range nodeIDs {
		if n := e.cl.Process(id); n != nil && n.Running() {
			ids = append(ids, id)
		}
	}
	return ids
}

// others returns the ids of nodeIDs other than ex.
func others(ex ...string) []string {
	var ids []string
	for _, id := range nodeIDs {
		if !slices.Contains(ex, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// status asks one node for its status, once, within d.
func (e *runEnv) status(id string, d time.Duration) (bus.Status, error) {
	ctx, cancel := context.WithTimeout(e.ctx, d)
	defer cancel()
	return e.ctl.Status(ctx, id)
}

// waitLeader waits up to timeout until the nodes ids agree on a leader
// that want accepts (cluster.WaitLeader); it returns the leader and the
// offset of the run when the agreement was seen.
func (e *runEnv) waitLeader(ctx context.Context, ids []string, want cluster.LeaderWant, timeout time.Duration) (cluster.Agreement, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	got, _, err := cluster.WaitLeader(ctx, e.ctl, ids, want)
	if err != nil {
		return cluster.Agreement{}, 0, fmt.Errorf("waiting %v for a leader among %v: %w", timeout, ids, err)
	}
	return got, e.now(), nil
}

// waitMembers writes with acks=all until the leader counts want servers
// and every one confirmed, so later acks=all writes wait for all of them.
func (e *runEnv) waitMembers(ctx context.Context, want int, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return harness.WaitFor(ctx, 100*time.Millisecond, func() error {
		op := e.own.putWithin("warmup", e.own.nextValue(), bus.AcksAll, e.writeDeadline())
		if op.Outcome != OK {
			return fmt.Errorf("acks=all probe: %s %s", op.Code, op.Err)
		}
		if op.Members != want || op.Confirmed != want {
			return fmt.Errorf("acks=all probe confirmed by %d of %d, want %d", op.Confirmed, op.Members, want)
		}
		return nil
	})
}

// close stops everything the run started and writes its artifacts.
func (e *runEnv) close() {
	for _, l := range e.loads {
		l.Stop()
	}
	if e.watch != nil {
		e.watch.stop()
	}
	if e.mon != nil {
		e.mon.Stop()
	}
	if e.cl != nil {
		// SIGKILL first: the servers need not resign at the end of a run.
		e.killAll()
	}
	if e.wire != nil {
		e.wire.Stop()
	}
	if e.own != nil {
		e.own.close()
	}
	if e.ctlNC != nil {
		e.ctlNC.Close()
	}
	if e.cl != nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(e.ctx), cluster.TeardownTimeout)
		if err := e.cl.Close(ctx); err != nil {
			e.note("stopping the cluster: %v", err)
		}
		cancel()
	}
	e.writeArtifacts()
}

// writeArtifacts saves the history, the wire, the status timeline and the
// violations of the run in its directory.
func (e *runEnv) writeArtifacts() {
	if e.dir == "" {
		return
	}
	save := func(name string, write func(*os.File) error) {
		f, err := os.Create(filepath.Join(e.dir, name))
		if err != nil {
			return
		}
		defer f.Close()
		_ = write(f)
	}
	save("history.jsonl", func(f *os.File) error { return WriteJSONLines(f, e.hist.Ops()) })
	if e.wire != nil {
		save("wire.jsonl", func(f *os.File) error {
			enc := json.NewEncoder(f)
			for _, u := range e.wire.Updates() {
				if err := enc.Encode(u); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if e.mon != nil {
		save("timeline.txt", func(f *os.File) error {
			for _, ev := range e.mon.Events() {
				fmt.Fprintln(f, ev)
			}
			return nil
		})
	}
	save("result.json", func(f *os.File) error {
		enc := json.NewEncoder(f)
		enc.SetIndent("", "  ")
		return enc.Encode(e.res)
	})
}

// ----------------------------------------------------------------------------
// The replication watcher

// wireWatch records every message on the replication subject that a
// server of the run's cluster signed; it counts and drops the others (an
// attacker's), which would otherwise pose as updates of huge epochs.
type wireWatch struct {
	nc       *nats.Conn
	mu       sync.Mutex
	ups      []WireUpdate
	rejected int
}

func (e *runEnv) watchWire() (*wireWatch, error) {
	nc, err := e.connect("wire")
	if err != nil {
		return nil, err
	}
	w := &wireWatch{nc: nc}
	sub, err := nc.Subscribe(bus.Subjects{Prefix: e.prefix}.Replication(), func(m *nats.Msg) {
		if e.signer.VerifyMsg(bus.DomainBus, m) != nil {
			w.mu.Lock()
			w.rejected++
			w.mu.Unlock()
			return
		}
		ups, err := bus.DecodeReplication(m.Data)
		if err != nil {
			return
		}
		at := e.now()
		w.mu.Lock()
		for _, u := range ups {
			w.ups = append(w.ups, WireUpdate{At: at, Update: u})
		}
		w.mu.Unlock()
	})
	if err == nil {
		err = sub.SetPendingLimits(-1, -1)
	}
	if err == nil {
		err = nc.Flush()
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	return w, nil
}

// Updates returns what was seen so far, in order.
func (w *wireWatch) Updates() []WireUpdate {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.ups)
}

// Rejected returns how many messages did not verify with the cluster key.
func (w *wireWatch) Rejected() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.rejected
}

// Stop closes the watcher's connection.
func (w *wireWatch) Stop() { w.nc.Close() }

// ----------------------------------------------------------------------------
// The status monitor

// statusEvent is a change in one node's status as the monitor saw it.
type statusEvent struct {
	At   time.Duration
	Node string
	St   bus.Status
	Err  string // the node did not answer
}

func (ev statusEvent) String() string {
	if ev.Err != "" {
		return fmt.Sprintf("%s %s unreachable: %s", fmtDur(ev.At), ev.Node, ev.Err)
	}
	s := ev.St
	return fmt.Sprintf("%s %s role=%s epoch=%d leader=%s applied=%d keys=%d stale=%v gaps=%d dropped_old_epoch=%d catching_up=%v zookeeper=%s nats=%s",
		fmtDur(ev.At), ev.Node, s.Role, s.Epoch, s.Leader, s.AppliedSeq, s.Keys, s.Stale, s.Gaps, s.DroppedOldEpoch, s.CatchingUp, s.ZooKeeper, s.NATS)
}

// monitor polls every node's status and keeps the changes.
type monitor struct {
	e      *runEnv
	stop   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	events []statusEvent
	last   map[string]statusEvent
}

// statusKey is what counts as a change.
func statusKey(ev statusEvent) string {
	s := ev.St
	return fmt.Sprintf("%v|%s|%d|%s|%v|%v|%s|%s|%d", ev.Err != "", s.Role, s.Epoch, s.Leader, s.Stale, s.CatchingUp, s.ZooKeeper, s.NATS, s.DroppedOldEpoch)
}

// startMonitor polls until Stop or until ctx ends.
func (e *runEnv) startMonitor(ctx context.Context) *monitor {
	m := &monitor{e: e, stop: make(chan struct{}), last: map[string]statusEvent{}}
	for _, id := range nodeIDs {
		m.wg.Go(func() {
			t := time.NewTicker(150 * time.Millisecond)
			defer t.Stop()
			for {
				st, err := e.status(id, 400*time.Millisecond)
				ev := statusEvent{At: e.now(), Node: id, St: st}
				if err != nil {
					ev.Err = "no answer"
				}
				m.mu.Lock()
				prev, seen := m.last[id]
				if !seen || statusKey(prev) != statusKey(ev) {
					m.events = append(m.events, ev)
				}
				m.last[id] = ev
				m.mu.Unlock()
				select {
				case <-m.stop:
					return
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		})
	}
	return m
}

// Stop ends the polling.
func (m *monitor) Stop() {
	select {
	case <-m.stop:
	default:
		close(m.stop)
	}
	m.wg.Wait()
}

// Events returns the changes seen, in order.
func (m *monitor) Events() []statusEvent {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := slices.Clone(m.events)
	slices.SortStableFunc(out, func(a, b statusEvent) int { return int(a.At - b.At) })
	return out
}

// firstLeader returns the first time at or after from that a node other
// than not reported itself leader at an epoch above minEpoch.
func (m *monitor) firstLeader(from time.Duration, not string, minEpoch uint64) (statusEvent, bool) {
	for _, ev := range m.Events() {
		if ev.At >= from && ev.Err == "" && ev.St.Role == bus.RoleLeader && ev.Node != not && ev.St.Epoch > minEpoch {
			return ev, true
		}
	}
	return statusEvent{}, false
}

// leaders returns every (node, epoch) that reported role leader at or
// after from.
func (m *monitor) leaders(from time.Duration) []statusEvent {
	var out []statusEvent
	for _, ev := range m.Events() {
		if ev.At >= from && ev.Err == "" && ev.St.Role == bus.RoleLeader {
			out = append(out, ev)
		}
	}
	return out
}
