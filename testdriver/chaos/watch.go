package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/client"
	"github.com/zkvstore/zkv/internal/harness"
)

// watchRun is the watch a run keeps from the start of its load to its
// end: a client.Watcher of every key on one server, and, if that server was
// killed by the fault and the watch failed, the watch resumed on another
// one from the last revision seen, as a user would.
type watchRun struct {
	e     *runEnv
	nc    *nats.Conn
	bc    *client.Client
	from  uint64
	first string // the server the watch started on

	mu      sync.Mutex
	ups     []bus.Update
	node    string
	w       *client.Watcher
	done    chan struct{}
	err     error
	endedAt time.Duration // when the last watch ended by itself (0: it did not)
	resumes []string
	// skipped are the revisions [from, to) a resume jumped over because
	// every running server answered compacted for them.
	skipped [][2]uint64
}

// startWatch starts the run's watch from the revision of the first write
// the load got acknowledged (or the leader's next revision), on a
// running server chosen at random among those not in avoid (any running
// one if none is left).
func (e *runEnv) startWatch(ctx context.Context, avoid []string) error {
	from, err := e.watchStart(ctx)
	if err != nil {
		return err
	}
	ids := slices.DeleteFunc(e.running(), func(id string) bool { return slices.Contains(avoid, id) })
	if len(ids) == 0 {
		ids = e.running()
	}
	if len(ids) == 0 {
		return errors.New("watch: no server runs")
	}
	nc, err := e.connect("watch")
	if err != nil {
		return err
	}
	bc, err := client.New(nc, client.WithPrefix(e.prefix))
	if err != nil {
		nc.Close()
		return err
	}
	wr := &watchRun{e: e, nc: nc, bc: bc, from: from}
	if err := wr.follow(ctx, ids[rand.IntN(len(ids))], from); err != nil {
		nc.Close()
		return err
	}
	wr.first = wr.node
	e.watch = wr
	e.note("watching every key on %s from revision %d", wr.node, from)
	return nil
}

// watchStart is the revision of the first acknowledged write of the load
// (waiting up to 5 s for one), or the leader's revision plus one.
func (e *runEnv) watchStart(ctx context.Context) (uint64, error) {
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var from uint64
	_ = harness.WaitFor(wctx, 10*time.Millisecond, func() error {
		for _, op := range e.hist.Ops() {
			if op.Client >= 0 && op.Acked() && !op.noOp() && op.Revision > 0 && (from == 0 || op.Revision < from) {
				from = op.Revision
			}
		}
		if from == 0 {
			return errors.New("no write of the load acknowledged yet")
		}
		return nil
	})
	if from > 0 {
		return from, nil
	}
	st, err := e.status(e.leaderOrFirst(), 2*time.Second)
	if err != nil {
		return 0, fmt.Errorf("watch: no acknowledged write and no status: %w", err)
	}
	return st.AppliedSeq + 1, nil
}

// leaderOrFirst names a running server, the leader if the monitor saw one.
func (e *runEnv) leaderOrFirst() string {
	ids := e.running()
	for _, ev := range e.mon.leaders(0) {
		if slices.Contains(ids, ev.Node) {
			return ev.Node
		}
	}
	if len(ids) > 0 {
		return ids[0]
	}
	return nodeIDs[0]
}

// follow starts a watcher on node from revision from, and a goroutine that
// keeps every update it delivers.
func (wr *watchRun) follow(ctx context.Context, node string, from uint64) error {
	w, err := wr.bc.Watch(ctx, "", client.FromRevision(from), client.FromNode(node))
	if err != nil {
		return fmt.Errorf("watch on %s from %d: %w", node, from, err)
	}
	done := make(chan struct{})
	wr.mu.Lock()
	wr.node, wr.w, wr.done, wr.err = node, w, done, nil
	wr.mu.Unlock()
	go func() {
		defer close(done)
		for u := range w.Updates() {
			wr.mu.Lock()
			wr.ups = append(wr.ups, u)
			wr.mu.Unlock()
		}
		err := w.Err()
		at := wr.e.now()
		wr.mu.Lock()
		wr.err, wr.endedAt = err, at
		wr.mu.Unlock()
	}()
	return nil
}

// last is the revision of the last update delivered (0: none).
func (wr *watchRun) last() uint64 {
	wr.mu.Lock()
	defer wr.mu.Unlock()
	if len(wr.ups) == 0 {
		return 0
	}
	return wr.ups[len(wr.ups)-1].Seq
}

// ended returns the watcher's error once it has ended.
func (wr *watchRun) ended() (bool, error) {
	wr.mu.Lock()
	done := wr.done
	wr.mu.Unlock()
	select {
	case <-done:
		wr.mu.Lock()
		defer wr.mu.Unlock()
		return true, wr.err
	default:
		return false, nil
	}
}

// stop ends the watch and closes its connection.
func (wr *watchRun) stop() {
	wr.mu.Lock()
	w := wr.w
	wr.mu.Unlock()
	if w != nil {
		w.Stop()
	}
	wr.nc.Close()
}

// finishWatch drains the run's watch until it has delivered the highest
// acknowledged revision (within a bounded wait), resuming it on another
// server if its own was killed, stops it and checks what it delivered.
// With lossAllowed, a gap or mismatch (an acknowledged write the setting
// lets a failover lose) is a note.
func (e *runEnv) finishWatch(ctx context.Context, lossAllowed bool) {
	wr := e.watch
	if wr == nil {
		return
	}
	defer wr.stop()
	ops := e.hist.Ops()
	var highest uint64
	for _, op := range ops {
		if op.Acked() && !op.noOp() {
			highest = max(highest, op.Revision)
		}
	}
	through := highest
	deadline := time.Now().Add(10 * time.Second)
	for wr.last() < highest && ctx.Err() == nil {
		ended, err := wr.ended()
		if ended {
			if !e.resumeWatch(ctx, wr, err) {
				through = min(through, wr.last())
				break
			}
			continue
		}
		if time.Now().After(deadline) {
			e.violate(Violation{Check: CheckWatchEnd, Node: wr.node,
				Detail: fmt.Sprintf("the watch from %d on %s delivered revision %d of the %d acknowledged within 10s", wr.from, wr.node, wr.last(), highest)})
			through = min(through, wr.last())
			break
		}
		_ = harness.Sleep(ctx, 20*time.Millisecond)
	}
	wr.stop()
	stopped := e.now()
	wr.mu.Lock()
	ups := slices.Clone(wr.ups)
	if through < highest && wr.endedAt > 0 {
		// The watch ended early: it owes the expiries due before then.
		stopped = wr.endedAt
	}
	wr.mu.Unlock()
	expiries := 0
	for _, u := range ups {
		if u.Kind == bus.KindDelete && u.Expired {
			expiries++
		}
	}
	e.res.fact("watch", "from revision %d on %s%s: %d updates through revision %d (%d expiries); checked through %d",
		wr.from, wr.first, wr.resumedOn(), len(ups), wr.last(), expiries, through)
	vs := CheckWatch(ops, wr.from, through, ups)
	vs = append(vs, CheckWatchExpiries(ops, wr.from, ups, stopped, e.opts.session+2*time.Second)...)
	allowed, unreplayed := 0, 0
	for _, v := range vs {
		if e.opts.durable && len(wr.skipped) > 0 && v.Check == CheckWatchGap && wr.inSkipped(ops, v) {
			// Acknowledged writes in the skipped range are checked by the
			// final reads; that no server replays them is a limit.
			unreplayed++
			continue
		}
		if lossAllowed && v.Check != CheckWatchOrder {
			if allowed == 0 {
				e.note("allowed with losses: %s", v)
			}
			allowed++
			continue
		}
		e.violate(v)
	}
	if unreplayed > 0 {
		e.note("LIMITATION: after a restart of every server no server replays the revisions from before it: a server restarted from its data directory starts its replay window empty, so a watch from an older revision ends compacted; here %d acknowledged update(s) or expiries in %v were not delivered (the final reads found every acknowledged write)", unreplayed, wr.skipped)
	}
	if allowed > 1 {
		e.note("allowed with losses: %d watch gaps and mismatches in all (writes and keys with a time to live the fault lost)", allowed)
	}
}

// resumeWatch handles a watch that ended with err: it reports whether it
// was resumed. A watch whose server the fault killed is resumed on
// the running servers in turn, as a user would, from the revision after
// the last one seen; if every one answers compacted (each came back
// empty, nothing being kept on disk), from the oldest revision one of
// them holds, which the error carries; the checks then ask for every acknowledged
// revision in between all the same. A compacted end of a watch whose
// server was not killed is noted (the window is far larger than a run);
// any other end is a violation.
func (e *runEnv) resumeWatch(ctx context.Context, wr *watchRun, err error) bool {
	killed := slices.Contains(e.killed, wr.node) && len(wr.resumes) < 3
	compacted := errors.Is(err, bus.ErrCompacted)
	switch {
	case err == nil:
		e.violate(Violation{Check: CheckWatchEnd, Node: wr.node, Detail: fmt.Sprintf("the watch on %s ended without an error before the end of the run", wr.node)})
		return false
	case compacted && !killed:
		e.note("the watch on %s ended compacted at revision %d: %v", wr.node, wr.last(), err)
		return false
	case !killed:
		e.violate(Violation{Check: CheckWatchEnd, Node: wr.node, Detail: fmt.Sprintf("the watch on %s failed after revision %d: %v", wr.node, wr.last(), err)})
		return false
	}
	ids := e.running()
	if len(ids) == 0 {
		e.note("the watch on %s, which the fault killed, failed and no server runs to resume it: %v", wr.node, err)
		return false
	}
	from := wr.from
	if l := wr.last(); l > 0 {
		from = l + 1
	}
	var be *bus.Error
	// Every running server in turn, as a user would: a server that
	// restarted from its data directory may not serve revisions another
	// one still holds.
	old := wr.node
	rand.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	var ferr error
	node, oldest, holder := "", uint64(0), ""
	for _, id := range ids {
		node = id
		ferr = wr.follow(ctx, id, from)
		if ferr == nil {
			break
		}
		if !errors.Is(ferr, bus.ErrCompacted) || !errors.As(ferr, &be) || be.Revision == nil || *be.Revision <= from {
			break
		}
		if holder == "" || *be.Revision < oldest {
			oldest, holder = *be.Revision, id
		}
	}
	if ferr != nil && holder != "" && errors.Is(ferr, bus.ErrCompacted) {
		// Every server came back empty too: go on from the oldest
		// revision one of them holds.
		e.note("revisions %d to %d are held by no server that came back", from, oldest-1)
		wr.skipped = append(wr.skipped, [2]uint64{from, oldest})
		from, node = oldest, holder
		ferr = wr.follow(ctx, node, from)
	}
	if ferr != nil {
		e.violate(Violation{Check: CheckWatchEnd, Node: node, Detail: "resuming the watch: " + ferr.Error()})
		return false
	}
	wr.resumes = append(wr.resumes, fmt.Sprintf("%s from %d", node, from))
	e.note("the watch on %s, which the fault killed, ended (%v); resumed on %s from revision %d", old, err, node, from)
	return true
}

// inSkipped reports whether the watch gap v is of a revision the watch
// skipped: an acknowledged write at a skipped revision, or an expiry
// (whose revision the check does not know) once any range was skipped.
func (wr *watchRun) inSkipped(ops []Op, v Violation) bool {
	if len(v.Ops) == 0 {
		return false
	}
	i := slices.IndexFunc(ops, func(op Op) bool { return op.ID == v.Ops[0] })
	if i < 0 {
		return false
	}
	if ops[i].TTL > 0 && !strings.Contains(v.Detail, "is missing from the watch") {
		return true
	}
	return slices.ContainsFunc(wr.skipped, func(r [2]uint64) bool { return ops[i].Revision >= r[0] && ops[i].Revision < r[1] })
}

func (wr *watchRun) resumedOn() string {
	if len(wr.resumes) == 0 {
		return ""
	}
	return fmt.Sprintf(", resumed on %v", wr.resumes)
}
