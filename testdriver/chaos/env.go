package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"zkv/bus"
	"zkv/internal/harness"
)

// nodeIDs are the servers of every run's cluster.
var nodeIDs = []string{"n1", "n2", "n3"}

// clusterOptions configures one run's cluster.
type clusterOptions struct {
	// zk is the ZooKeeper connect string.
	zk string
	// proxied gives every server its own Forwarder to zk.
	proxied bool
	// session is the servers' ZooKeeper session timeout.
	session time.Duration
	// args are extra kvserver flags, e.g. --acks all, --catch-up.
	args []string
}

// runEnv is one run of one case: its cluster, its clients and what they
// recorded.
type runEnv struct {
	s       *suite
	res     *RunResult
	dir     string // artifacts of the run
	tag     string // random, unique per run
	opts    clusterOptions
	hist    *History
	nats    *harness.NATS
	natsLog *os.File
	prefix  string
	paths   [2]string    // election path, leader path
	nodesMu sync.RWMutex // guards nodes: the load reads it while a case replaces a server
	nodes   map[string]*harness.Node
	proxies map[string]*Forwarder
	ctlNC   *nats.Conn
	ctl     *bus.Client
	own     *client     // the suite's own operations (client -1)
	signer  *bus.Signer // the cluster's key, from its record in ZooKeeper
	wire    *wireWatch
	mon     *monitor
	loads   []*load
	clients int // load clients started, for unique client IDs
	notes   []string
}

// newRun starts NATS, the three servers (and their proxies), the control
// client, the replication watcher and the status monitor. On error
// everything started is stopped.
func (s *suite) newRun(ctx context.Context, res *RunResult, opts clusterOptions) (_ *runEnv, err error) {
	var tb [6]byte
	_, _ = rand.Read(tb[:])
	e := &runEnv{
		s: s, res: res, opts: opts, tag: hex.EncodeToString(tb[:]),
		dir:     filepath.Join(s.logDir, res.Case, res.runName()),
		hist:    NewHistory(time.Now()),
		nodes:   map[string]*harness.Node{},
		proxies: map[string]*Forwarder{},
	}
	res.Dir = e.dir
	defer func() {
		if err != nil {
			e.close()
		}
	}()
	if err := os.MkdirAll(e.dir, 0o755); err != nil {
		return nil, err
	}
	safe := fileSafe(res.Case + "-" + res.Variant + "-" + fmt.Sprint(res.Run) + "-" + e.tag)
	e.prefix = "c" + e.tag
	e.paths = [2]string{"/chaos/" + safe + "/election", "/chaos/" + safe + "/leader"}

	e.natsLog, err = os.Create(filepath.Join(e.dir, "nats.log"))
	if err != nil {
		return nil, err
	}
	e.nats, err = harness.StartNATS(harness.NATSOptions{Log: e.natsLog})
	if err != nil {
		return nil, err
	}
	args := append([]string{"--leader-path", e.paths[1], "--write-timeout", s.cfg.WriteTimeout.String()}, opts.args...)
	type started struct {
		node *harness.Node
		err  error
	}
	results := make([]started, len(nodeIDs))
	var wg sync.WaitGroup
	for i, id := range nodeIDs {
		zk := opts.zk
		if opts.proxied {
			f, err := NewForwarder(opts.zk)
			if err != nil {
				return nil, err
			}
			e.proxies[id] = f
			zk = f.Addr()
		}
		wg.Go(func() {
			n, err := harness.StartNode(ctx, s.kvserver, harness.NodeOptions{
				ID: id, ZooKeeper: zk, NATSURL: e.nats.URL(), SessionTimeout: opts.session,
				ElectionPath: e.paths[0], SubjectPrefix: e.prefix, LogLevel: "info", LogDir: e.dir, Args: args,
			})
			results[i] = started{n, err}
		})
	}
	wg.Wait()
	var errs []error
	for i, r := range results {
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		e.nodes[nodeIDs[i]] = r.node
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for _, id := range nodeIDs {
		if err := e.nodes[id].WaitReady(ctx); err != nil {
			return nil, err
		}
	}
	e.ctlNC, err = e.connect("control")
	if err != nil {
		return nil, err
	}
	e.ctl, err = bus.NewClient(e.ctlNC, bus.WithPrefix(e.prefix), bus.WithRequestTimeout(400*time.Millisecond))
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
	e.mon = e.startMonitor()
	return e, nil
}

// clusterSigner reads the cluster record the servers created next to the
// run's election path and returns a signer with its key.
func (e *runEnv) clusterSigner(ctx context.Context) (*bus.Signer, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	rec, err := harness.ReadClusterRecord(ctx, e.opts.zk, harness.RecordPath(e.paths[0]), "")
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
	return nats.Connect(e.nats.URL(),
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

// node returns the server id.
func (e *runEnv) node(id string) *harness.Node {
	e.nodesMu.RLock()
	defer e.nodesMu.RUnlock()
	return e.nodes[id]
}

// replaceNode stops server id with SIGTERM and starts it again with its
// options and extra arguments added, e.g. an operator's --force-lead.
func (e *runEnv) replaceNode(ctx context.Context, id string, extra ...string) error {
	old := e.node(id)
	if err := old.Stop(ctx); err != nil {
		e.note("%s exited uncleanly on SIGTERM: %v", id, err)
	}
	opts := old.Options()
	opts.Args = append(slices.Clone(opts.Args), extra...)
	n, err := harness.StartNode(ctx, e.s.kvserver, opts)
	if err != nil {
		return fmt.Errorf("start %s with %v: %w", id, extra, err)
	}
	e.nodesMu.Lock()
	e.nodes[id] = n
	e.nodesMu.Unlock()
	return nil
}

// running returns the ids of the servers whose process runs.
func (e *runEnv) running() []string {
	var ids []string
	for _, id := range nodeIDs {
		if n := e.node(id); n != nil && n.Running() {
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
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return e.ctl.Status(ctx, id)
}

// waitLeader polls the nodes ids until one of them leads at an epoch above
// minEpoch, is not "not", and every other node of ids names it at that
// epoch; it returns the leader, its epoch and the offset when agreement
// was seen.
func (e *runEnv) waitLeader(ctx context.Context, ids []string, not string, minEpoch uint64, timeout time.Duration) (string, uint64, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var leader string
	var epoch uint64
	err := harness.WaitFor(ctx, 50*time.Millisecond, func() error {
		leader, epoch = "", 0
		sts := map[string]bus.Status{}
		for _, id := range ids {
			st, err := e.status(id, time.Second)
			if err != nil {
				return fmt.Errorf("%s: %w", id, err)
			}
			sts[id] = st
			if st.Role == bus.RoleLeader {
				if leader != "" {
					return fmt.Errorf("two leaders: %s and %s", leader, id)
				}
				leader, epoch = id, st.Epoch
			}
		}
		if leader == "" || leader == not || epoch <= minEpoch {
			return fmt.Errorf("no new leader yet (not %q, epoch above %d): %s", not, minEpoch, describe(sts))
		}
		for id, st := range sts {
			if st.Leader != leader || st.Epoch != epoch {
				return fmt.Errorf("%s sees leader %q epoch %d, want %s epoch %d", id, st.Leader, st.Epoch, leader, epoch)
			}
		}
		return nil
	})
	if err != nil {
		return "", 0, 0, fmt.Errorf("waiting %v for a leader among %v: %w", timeout, ids, err)
	}
	return leader, epoch, e.now(), nil
}

func describe(sts map[string]bus.Status) string {
	var parts []string
	for _, id := range nodeIDs {
		if st, ok := sts[id]; ok {
			parts = append(parts, fmt.Sprintf("%s=%s/e%d/l%s", id, st.Role, st.Epoch, st.Leader))
		}
	}
	return strings.Join(parts, " ")
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
	if e.mon != nil {
		e.mon.Stop()
	}
	var wg sync.WaitGroup
	for _, n := range e.nodes {
		wg.Go(func() { _ = n.Kill() })
	}
	wg.Wait()
	if e.wire != nil {
		e.wire.Stop()
	}
	if e.own != nil {
		e.own.close()
	}
	if e.ctlNC != nil {
		e.ctlNC.Close()
	}
	if e.nats != nil {
		e.nats.Shutdown()
	}
	if e.natsLog != nil {
		e.natsLog.Close()
	}
	for _, f := range e.proxies {
		f.Close()
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
		var u bus.Update
		if e.signer.VerifyMsg(bus.DomainBus, m) != nil {
			w.mu.Lock()
			w.rejected++
			w.mu.Unlock()
			return
		}
		if bus.Decode(m.Data, &u) != nil {
			return
		}
		at := e.now()
		w.mu.Lock()
		w.ups = append(w.ups, WireUpdate{At: at, Update: u})
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

func (e *runEnv) startMonitor() *monitor {
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
