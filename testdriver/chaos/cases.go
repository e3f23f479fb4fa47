package chaos

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/testdriver/cluster"
)

// caseDef is one fault case, a row of the table cases. Every run of a
// case goes through the same skeleton (run): start a cluster with the
// row's options and bring it to the row's start state; inject the fault;
// if the row expects a failover, wait for the other servers to agree on a
// new leader; heal; let the load settle; check what the row expects.
type caseDef struct {
	name     string
	variants []string
	// slow lists the variants quick mode skips.
	slow []string
	// runs, if above the configured runs, is how many times the full
	// suite runs each variant of the case (quick mode: the configured
	// runs).
	runs int
	// session is the servers' ZooKeeper session timeout; nil means the
	// configured one.
	session func(*suite) time.Duration
	// cluster are the row's cluster options (acks, proxies, an ensemble);
	// variant, if set, adjusts them for a variant.
	cluster clusterOptions
	variant func(v string, o *clusterOptions)
	// start is how far the cluster is brought before the fault.
	start startState
	// inject injects the fault and sets f.at.
	inject func(ctx context.Context, f *fault) error
	// failover, if set, says that the fault deposes the leader: the
	// skeleton waits for the other servers to agree on a new one, and a
	// missing one is an availability violation with this detail.
	failover string
	// heal undoes the fault; nil when there is nothing to undo.
	heal func(ctx context.Context, f *fault) error
	// noSettle skips the settle phase between heal and expect.
	noSettle bool
	// expect runs the checks; nil runs the shared final checks with every
	// server a survivor.
	expect func(ctx context.Context, f *fault) error
	// watchAvoid are the servers the run's watch is not started on (the
	// ones the fault is aimed at, as far as known before it); nil: the
	// leader.
	watchAvoid func(f *fault) []string
}

// startState is how far the skeleton brings a run's cluster before the
// fault.
type startState int

const (
	// loaded: a leader, acks=all writes waiting for all three servers,
	// and the load running and warmed up.
	loaded startState = iota
	// loadedUnprobed: a leader and the load running and warmed up,
	// without the acks=all probe writes.
	loadedUnprobed
	// idle: a leader and acks=all writes waiting for all three servers;
	// no load.
	idle
)

// cases are run in this order. Each row is a name, its variants (and the
// slow ones quick mode skips); the cluster (session timeout, options,
// their variant, the start state); the steps (inject, the failover the
// skeleton awaits, heal, expect).
var cases = []caseDef{
	{
		name: CaseKillLeader, variants: []string{"acks-all", "acks-majority", "acks-leader"}, slow: []string{"acks-majority", "acks-leader"},
		variant: acksVariant,
		inject:  killLeader, failover: "no new leader", expect: expectKillLeader,
	},
	{
		name:    CasePauseLeader,
		cluster: clusterOptions{acks: bus.AcksAll},
		inject:  pauseLeader, failover: "no new leader while the old one is stopped", heal: resumeLeader, expect: expectPauseLeader,
	},
	{
		name:    CaseZKPartition,
		cluster: clusterOptions{acks: bus.AcksAll, proxied: true},
		inject:  cutLeaderFrom(cluster.PartZooKeeper), failover: "no new leader after the partition", heal: healLeaderFrom(cluster.PartZooKeeper, pastSession), expect: expectDeposedWithin(pastSession),
	},
	{
		name: CaseNATSCutLeader, variants: []string{"acks-all"}, slow: []string{"acks-all"},
		cluster: clusterOptions{acks: bus.AcksAll, proxiedNATS: true},
		inject:  cutLeaderFrom(cluster.PartNATS), failover: "no new leader after the leader was cut off from NATS", heal: healLeaderFrom(cluster.PartNATS, noWait), expect: expectDeposedWithin(leaseBound),
	},
	{
		name: CaseZnodeRemoved, variants: []string{"acks-all"}, slow: []string{"acks-all"},
		cluster: clusterOptions{acks: bus.AcksAll},
		inject:  removeLeaderZnode, failover: "no new leader after the leader's znode was removed", heal: awaitDeposedRejoin, expect: expectDeposedWithin(leaseBound),
	},
	{
		name: CaseNATSRestart, variants: []string{"no-catch-up", "catch-up"},
		session: (*suite).longSession, variant: catchUpVariant, start: loadedUnprobed,
		inject: restartNATS, heal: resumeLagger, expect: expectNATSRestart,
		watchAvoid: func(f *fault) []string { return []string{f.leader, others(f.leader)[1]} },
	},
	{
		name:    CaseZKEnsemble,
		session: (*suite).longSession, cluster: clusterOptions{acks: bus.AcksAll, ensemble: true},
		inject: killZooKeepers, heal: restartZooKeepers,
	},
	{
		name: CaseEmptySurvivor, variants: []string{"no-catch-up", "catch-up", "catch-up-first-epoch"}, slow: []string{"catch-up-first-epoch"},
		session: (*suite).longSession, cluster: clusterOptions{acks: bus.AcksAll}, variant: catchUpVariant, start: idle,
		inject: killAllAfterWrites, heal: restartLone, noSettle: true, expect: expectEmptySurvivor,
	},
	{
		name: CaseHostileClient, variants: []string{"steady", "pause-replica"}, slow: []string{"steady"},
		session: (*suite).hostileSession, cluster: clusterOptions{acks: bus.AcksAll},
		inject: attack, expect: expectHostileClient,
		watchAvoid: func(f *fault) []string { return []string{f.leader, others(f.leader)[0]} },
	},
	{
		name: CaseFullRestart, variants: []string{"no-catch-up", "catch-up"}, slow: []string{"no-catch-up"},
		cluster: clusterOptions{acks: bus.AcksAll}, variant: catchUpVariant,
		inject: killAll, heal: restartAll, expect: expectFullRestart,
	},
	{
		name: CaseDurableFull, runs: 20,
		cluster: clusterOptions{acks: bus.AcksAll, durable: true, snapshotBytes: durableSnapshotBytes},
		inject:  killAll, heal: restartShuffled, expect: expectDurable,
	},
	{
		name:    CaseDurableTorn,
		cluster: clusterOptions{acks: bus.AcksAll, durable: true},
		inject:  killAndTear, heal: restartTorn, expect: expectDurable,
		watchAvoid: func(f *fault) []string { return []string{f.leader, tornVictim(f)} },
	},
}

// acksVariant sets --acks from the variants named acks-<level>.
func acksVariant(v string, o *clusterOptions) { o.acks = strings.TrimPrefix(v, "acks-") }

// catchUpVariant turns --catch-up on in the variants named catch-up*.
func catchUpVariant(v string, o *clusterOptions) { o.catchUp = strings.HasPrefix(v, "catch-up") }

// Names of the measurements in RunResult.Times.
const (
	TimeNewLeader   = "new leader"         // fault → a new leader reports itself (status)
	TimeFirstAck    = "first ack after"    // fault → first write acknowledged after it
	TimeStopAck     = "stop acking"        // fault → the last acknowledgement under the old term
	TimeUnavailable = "no-ack gap"         // the longest time without an acknowledgement around the fault
	TimeRejoin      = "rejoin"             // resume/restore → the old leader follows the new epoch
	TimeReconnect   = "reconnect"          // NATS restart → every server answers again
	TimeCatchUp     = "catch-up"           // resume → the copy that missed a write has it and is current
	TimeStaleSeen   = "stale reported"     // resume → the copy that missed a write reports stale
	TimeResume      = "writes resume"      // recovery → first write acknowledged
	TimePause       = "pause"              // how long the process was stopped
	TimeLeadAlone   = "alone: led after"   // empty-survivor: kill → the lone server leads
	TimeRestartGap  = "restart after kill" // empty-survivor: kill → the lone server is back
	TimeAttack      = "attack"             // hostile-client: how long the attacker flooded
	TimeForceLead   = "operator step"      // full-restart/catch-up: kill → a server restarted with --force-lead
	TimeRestarted   = "all restarted"      // durable-full-restart: kill → the last server is back
	TimeLoaded      = "loaded"             // durable cases: the longest time a server took to load its data directory
)

// longSession is the session timeout of the cases that pause a server
// below it or must restart one before the others' sessions expire.
func (s *suite) longSession() time.Duration { return max(2*s.cfg.SessionTimeout, 4*time.Second) }

// leaderTimeout bounds the election after a fault.
func (s *suite) leaderTimeout(session time.Duration) time.Duration {
	return session + s.cfg.LeaderBound
}

// fault is one run of a case as its steps see it: the run, the leader
// before the fault, and what the steps found so far.
type fault struct {
	*runEnv
	// leader and epoch are the leader before the fault.
	leader string
	epoch  uint64
	// at is when the fault was injected, healed when it was undone.
	at, healed time.Duration
	// newLeader and newEpoch are the leader the failover wait saw (epoch
	// 0: none).
	newLeader string
	newEpoch  uint64
	// victim is the server a case singles out besides the leader: the
	// follower stopped across a NATS restart, the replica stopped during
	// an attack, the lone survivor, the server started with --force-lead.
	victim string
	// from and to are when a server was stopped with SIGSTOP and resumed.
	from, to time.Duration
	// before are the statuses of every server before the fault.
	before map[string]bus.Status
	// paused are the servers stopped with SIGSTOP and not yet resumed;
	// cleanups run when the run ends (resuming them first).
	paused   []string
	cleanups []func()

	// Found by one case each: the write the stopped follower misses
	// (nats-restart); the first and second ZooKeeper member killed and
	// when the quorum was lost (zk-ensemble); the setup writes
	// (empty-survivor); the attacker (hostile-client); when every server
	// was gone and the highest revision acknowledged before
	// (full-restart).
	missed     Op
	zk1, zk2   string
	quorumLost time.Duration
	written    []Op
	attacker   *attacker
	down       time.Duration
	highest    uint64
	// logFrom are the sizes of the servers' log files before their
	// restart (durable cases): what each logged since starts there.
	logFrom map[string]int64
	// tear is where durable-torn-record cut the victim's log.
	tear tornCut
}

// run is the skeleton every case shares.
func (c caseDef) run(ctx context.Context, s *suite, r *RunResult) error {
	opts := c.cluster
	opts.session = s.cfg.SessionTimeout
	if c.session != nil {
		opts.session = c.session(s)
	}
	if c.variant != nil {
		c.variant(r.Variant, &opts)
	}
	if !opts.ensemble {
		zk, err := s.standalone(ctx)
		if err != nil {
			return err
		}
		opts.zk = zk.Addr()
	}
	e, err := s.newRun(ctx, r, opts)
	if err != nil {
		return err
	}
	defer e.close()
	f := &fault{runEnv: e}
	defer f.end()
	avoid := func(f *fault) []string { return []string{f.leader} }
	if c.watchAvoid != nil {
		avoid = c.watchAvoid
	}
	if err := f.start(ctx, c.start, avoid); err != nil {
		return err
	}
	if err := c.inject(ctx, f); err != nil {
		return err
	}
	if c.failover != "" {
		f.awaitFailover(ctx, c.failover)
	}
	if c.heal != nil {
		if err := c.heal(ctx, f); err != nil {
			return err
		}
	}
	if !c.noSettle {
		if err := harness.Sleep(ctx, s.settle()); err != nil {
			return err
		}
	}
	if c.expect == nil {
		f.finish(ctx, finishOptions{survivors: nodeIDs, lin: true})
		return nil
	}
	return c.expect(ctx, f)
}

// start waits for a leader and, as st says, until acks=all writes wait
// for all three servers, then starts the concurrent clients, the watch
// (on a server avoid does not name) and lets them warm up.
func (f *fault) start(ctx context.Context, st startState, avoid func(*fault) []string) error {
	ag, _, err := f.waitLeader(ctx, nodeIDs, cluster.LeaderWant{}, 60*time.Second)
	if err != nil {
		return err
	}
	f.leader, f.epoch = ag.Leader, ag.Epoch
	if st != loadedUnprobed {
		if err := f.waitMembers(ctx, 3, 30*time.Second); err != nil {
			return err
		}
	}
	if st == idle {
		return nil
	}
	if _, err := f.startLoad(ctx, f.s.loadOptions("")); err != nil {
		return err
	}
	if err := f.startWatch(ctx, avoid(f)); err != nil {
		return err
	}
	return harness.Sleep(ctx, f.s.warmup())
}

// end resumes the servers still stopped and runs the cleanups.
func (f *fault) end() {
	for _, id := range slices.Clone(f.paused) {
		_ = f.resume(id)
	}
	for _, c := range f.cleanups {
		c()
	}
}

// pause stops server id with SIGSTOP; it is resumed when the run ends at
// the latest.
func (f *fault) pause(id string) error {
	if err := f.cl.Process(id).Pause(); err != nil {
		return err
	}
	f.paused = append(f.paused, id)
	return nil
}

// resume sends SIGCONT to server id, which pause stopped.
func (f *fault) resume(id string) error {
	i := slices.Index(f.paused, id)
	if i < 0 {
		return nil
	}
	f.paused = slices.Delete(f.paused, i, i+1)
	return f.cl.Process(id).Resume()
}

// awaitFailover waits for the servers other than the old leader to agree
// on a new leader of a newer epoch.
func (f *fault) awaitFailover(ctx context.Context, detail string) {
	ag, _, err := f.waitLeader(ctx, others(f.leader), cluster.LeaderWant{Not: f.leader, Above: f.epoch}, f.s.leaderTimeout(f.opts.session))
	if err != nil {
		f.violate(Violation{Check: CheckAvailability, Detail: detail + ": " + err.Error()})
		return
	}
	f.newLeader, f.newEpoch = ag.Leader, ag.Epoch
	f.note("%s leads epoch %d", f.newLeader, f.newEpoch)
}

// awaitRejoin waits, once a new leader was seen, until the old leader
// follows its epoch (as a follower when follower is set, else in any
// role but leader), and records the time since f.healed.
func (f *fault) awaitRejoin(ctx context.Context, follower bool, detail string) {
	if f.newEpoch == 0 {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := harness.WaitFor(wctx, 50*time.Millisecond, func() error {
		st, err := f.status(f.leader, time.Second)
		if err != nil {
			return err
		}
		if st.Role == bus.RoleLeader || (follower && st.Role != bus.RoleFollower) || st.Epoch < f.newEpoch {
			return fmt.Errorf("%s is %s of epoch %d", f.leader, st.Role, st.Epoch)
		}
		return nil
	})
	cancel()
	if err != nil {
		f.violate(Violation{Check: CheckAvailability, Node: f.leader, Detail: detail + ": " + err.Error()})
		return
	}
	f.res.time(TimeRejoin, f.now()-f.healed)
}

// awaitAckAfter waits up to within for a write sent after t to be
// acknowledged ("since" names t in the error); a timeout is an
// availability violation with detail, else, when resume is set, the time
// from t to that acknowledgement is recorded.
func (f *fault) awaitAckAfter(ctx context.Context, t, within time.Duration, since string, resume bool, detail string) {
	wctx, cancel := context.WithTimeout(ctx, within)
	err := harness.WaitFor(wctx, 20*time.Millisecond, func() error {
		if firstAckAfter(f.acks(), t) < 0 {
			return errors.New("no write acknowledged since " + since)
		}
		return nil
	})
	cancel()
	switch {
	case err != nil:
		f.violate(Violation{Check: CheckAvailability, Detail: detail + ": " + err.Error()})
	case resume:
		f.res.time(TimeResume, firstAckAfter(f.acks(), t)-t)
	}
}

// measureFailover records the times around the fault that deposed the
// leader, and checks the generous bound on the election.
func (f *fault) measureFailover() {
	acks := f.acks()
	var lastOld, firstNew time.Duration = -1, -1
	for _, a := range acks {
		if a.Leader == f.leader && a.Epoch == f.epoch {
			lastOld = max(lastOld, a.Return)
		}
		if a.Epoch > f.epoch && firstNew < 0 {
			firstNew = a.Return
		}
	}
	if lastOld >= 0 {
		f.res.time(TimeStopAck, max(0, lastOld-f.at))
	}
	if firstNew >= 0 {
		f.res.time(TimeFirstAck, firstNew-f.at)
		f.res.time(TimeUnavailable, ackGap(acks, f.at, firstNew))
	}
	if ev, ok := f.mon.firstLeader(f.at, f.leader, f.epoch); ok {
		f.res.time(TimeNewLeader, ev.At-f.at)
		f.res.fact("new leader", "%s epoch %d", ev.Node, ev.St.Epoch)
		if bound := f.s.leaderTimeout(f.opts.session); ev.At-f.at > bound {
			f.violate(Violation{Check: CheckBound, Node: ev.Node,
				Detail: fmt.Sprintf("the new leader took %s, over the bound of %s", fmtDur(ev.At-f.at), bound)})
		}
	}
}

// firstAckAfter returns the return time of the first acknowledgement of a
// write sent after t, or -1.
func firstAckAfter(acks []Op, t time.Duration) time.Duration {
	first := time.Duration(-1)
	for _, a := range acks {
		if a.Invoke > t && (first < 0 || a.Return < first) {
			first = a.Return
		}
	}
	return first
}
