package testdriver

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/testdriver/cluster"
)

// The keys and values the scenarios write.
const (
	keyColor = "color"
	keyShape = "shape"
)

// outcome is what a passed scenario reports.
type outcome struct {
	reason string // a sentence or two: why it passed
	note   string // a few words for the summary table
}

// scenarioDef defines one scenario.
type scenarioDef struct {
	name  string
	shows string
	// skip returns why the scenario cannot run now, or "".
	skip func(r *runner, sum Summary) string
	run  func(ctx context.Context, r *runner) (outcome, error)
}

var scenarioDefs = []scenarioDef{
	{
		name:  ScenarioAddRead,
		shows: "a write is answered by the elected leader, and every server then returns it from its own copy",
		run:   addRead,
	},
	{
		name:  ScenarioLeaderElection,
		shows: "when the leader stops, the other servers elect a new one with a higher epoch, and writes go to it",
		skip:  needTwoServers,
		run:   leaderElection,
	},
	{
		name:  ScenarioStaleRead,
		shows: "a restarted server comes back empty: it answers found:false for a key the others hold, until the key is written again",
		skip:  staleReadSkip,
		run:   staleRead,
	},
	{
		name:  ScenarioZooKeeperLoss,
		shows: "with one ZooKeeper member killed the ensemble keeps a quorum: when the leader then crashes, the remaining servers elect a new one and take writes",
		skip:  zooKeeperLossSkip,
		run:   zooKeeperLoss,
	},
}

// scenarioByName returns the definition of a scenario Config.validate
// accepted.
func scenarioByName(name string) scenarioDef {
	for _, d := range scenarioDefs {
		if d.name == name {
			return d
		}
	}
	panic("testdriver: unknown scenario " + name)
}

func needTwoServers(r *runner, _ Summary) string {
	if n := len(r.running()); n < 2 {
		return fmt.Sprintf("needs at least 2 running servers, the cluster has %d", n)
	}
	return ""
}

func staleReadSkip(r *runner, sum Summary) string {
	if prev := sum.Scenario(ScenarioLeaderElection); prev != nil && prev.Result != Pass {
		return fmt.Sprintf("needs the server that %s stopped, and %s did not pass", ScenarioLeaderElection, ScenarioLeaderElection)
	}
	if r.stopped == "" {
		return needTwoServers(r, sum)
	}
	return ""
}

// addRead: the servers agree on a leader; a write on the leader subject is
// answered by it; every server then returns the value.
func addRead(ctx context.Context, r *runner) (outcome, error) {
	ag, st, err := r.waitAgreement(ctx, r.cfg.Timeout, leaderWant{})
	r.record(st)
	if err != nil {
		return outcome{}, err
	}
	r.leader, r.epoch = ag.Leader, ag.Epoch

	const value = "blue"
	w, st, err := r.put(ctx, r.cfg.Timeout, keyColor, value, writeWant{leader: ag.Leader, epoch: ag.Epoch})
	r.record(st)
	if err != nil {
		return outcome{}, err
	}
	r.values[keyColor] = value

	nodes := r.running()
	slowest, err := r.readAll(ctx, nodes, keyColor, value)
	if err != nil {
		return outcome{}, err
	}
	return outcome{
		reason: fmt.Sprintf("%s was elected leader (epoch %d) and acknowledged the write (revision %d); then %s returned %q from %s own copy (the slowest read took %s).",
			ag.Leader, ag.Epoch, w.Revision, eachOf(nodes), value, possessive(len(nodes)), FormatDuration(slowest)),
		note: fmt.Sprintf("leader %s (epoch %d); %d/%d servers returned %q", ag.Leader, ag.Epoch, len(nodes), len(nodes), value),
	}, nil
}

// leaderElection: stop the leader; measure until every running node
// reports a new leader, and until the new leader acknowledges a write;
// later writes carry the new leader and its higher epoch.
func leaderElection(ctx context.Context, r *runner) (outcome, error) {
	old, st, err := r.waitAgreement(ctx, r.cfg.Timeout, leaderWant{})
	r.record(st)
	if err != nil {
		return outcome{}, err
	}
	r.leader, r.epoch = old.Leader, old.Epoch

	stopAt := time.Now()
	st, err = r.stop(ctx, old.Leader, r.cfg.Kill, "the leader", "")
	r.record(st)
	if err != nil {
		return outcome{}, err
	}
	r.stopped = old.Leader
	fo := &Failover{Stop: r.cfg.Kill, OldLeader: old.Leader, OldEpoch: old.Epoch}
	r.sc.Failover = fo

	const first = "green"
	ag, _, err := r.failover(ctx, old, stopAt, keyColor, first, fo)
	if err != nil {
		return outcome{}, err
	}
	r.leader, r.epoch = ag.Leader, ag.Epoch
	r.values[keyColor] = first

	const later = "circle"
	w2, st, err := r.put(ctx, r.cfg.Timeout, keyShape, later, writeWant{leader: ag.Leader, epoch: ag.Epoch})
	r.record(st)
	if err != nil {
		return outcome{}, err
	}
	r.values[keyShape] = later

	nodes := r.running()
	if _, err := r.readAll(ctx, nodes, keyColor, first); err != nil {
		return outcome{}, err
	}

	why := "ZooKeeper must first expire a crashed leader's session"
	if r.cfg.Kill == cluster.StopTerm {
		why = "a leader stopped cleanly resigns, so nobody waits for its session to expire"
	}
	session := ""
	if r.cfg.SessionTimeout > 0 {
		session = fmt.Sprintf(" (session timeout %s: %s)", r.cfg.SessionTimeout, why)
	}
	return outcome{
		reason: fmt.Sprintf("after %s of the leader %s, %s agreed on %s as the new leader in %s, and %s acknowledged the first write %s after the stop%s. Epoch %d -> %d: later writes went to %s, and %s returned the new value.",
			r.cfg.Kill.Signal(), old.Leader, cluster.JoinIDs(nodes), ag.Leader, FormatDuration(fo.Leader), ag.Leader, FormatDuration(fo.Write), session,
			old.Epoch, ag.Epoch, w2.Leader, eachOf(nodes)),
		note: fmt.Sprintf("%s %s -> %s, epoch %d -> %d; all agreed after %s", r.cfg.Kill.Signal(), old.Leader, ag.Leader, old.Epoch, ag.Epoch, FormatDuration(fo.Leader)),
	}, nil
}

// failover waits, after the leader old was stopped at stopAt, for the
// running nodes to agree on a new leader with a higher epoch and for the
// first write of key=value to be acknowledged by it. Both run at once and
// are timed from the stop, bounded by FailoverTimeout; both steps are
// recorded afterwards, in that order, and what they measured is filled
// into fo.
func (r *runner) failover(ctx context.Context, old cluster.Agreement, stopAt time.Time, key, value string, fo *Failover) (cluster.Agreement, bus.WriteReply, error) {
	fctx, cancel := context.WithDeadline(ctx, stopAt.Add(r.cfg.FailoverTimeout))
	defer cancel()
	var (
		wg            sync.WaitGroup
		once          sync.Once
		firstFailed   string // "agreement" or "write": the one that failed first
		ag            cluster.Agreement
		agStep, wStep Step
		agErr, wErr   error
		w             bus.WriteReply
		remaining     = time.Until(stopAt.Add(r.cfg.FailoverTimeout))
	)
	failFirst := func(which string) {
		once.Do(func() { firstFailed = which })
		cancel()
	}
	wg.Go(func() {
		ag, agStep, agErr = r.waitAgreement(fctx, remaining,
			leaderWant{LeaderWant: cluster.LeaderWant{Not: old.Leader, Above: old.Epoch}, since: stopAt, what: "after the stop"})
		if agErr != nil {
			failFirst("agreement")
		}
	})
	wg.Go(func() {
		w, wStep, wErr = r.put(fctx, remaining, key, value,
			writeWant{not: old.Leader, above: old.Epoch, since: stopAt, what: "after the stop; the first write the new leader acknowledged"})
		if wErr != nil {
			failFirst("write")
		}
	})
	wg.Wait()
	if agErr == nil {
		fo.NewLeader, fo.NewEpoch, fo.Leader = ag.Leader, ag.Epoch, agStep.Duration
	}
	if wErr == nil {
		fo.Write = wStep.Duration
	}
	// A step cut short because the other one failed first says nothing.
	if agErr == nil || firstFailed != "write" {
		r.record(agStep)
	}
	if wErr == nil || firstFailed != "agreement" {
		r.record(wStep)
	}
	if agErr != nil && firstFailed == "agreement" {
		return ag, w, agErr
	}
	if wErr != nil {
		return ag, w, wErr
	}
	if agErr != nil {
		return ag, w, agErr
	}
	if w.Leader != ag.Leader || w.Epoch != ag.Epoch {
		return ag, w, fmt.Errorf("the first write after the stop was acknowledged by %s epoch %d, but the servers agreed on %s epoch %d",
			w.Leader, w.Epoch, ag.Leader, ag.Epoch)
	}
	return ag, w, nil
}

// staleRead: start the stopped server again; it follows with an empty
// store and answers found:false for a key the others hold; once the key is
// written again it returns the new value. Without a server stopped by
// leader-election it writes a key and stops the leader itself first.
func staleRead(ctx context.Context, r *runner) (outcome, error) {
	if r.stopped == "" {
		if err := stopLeaderForStaleRead(ctx, r); err != nil {
			return outcome{}, err
		}
	}
	target := r.stopped
	old, ok := r.values[keyColor]
	if !ok {
		return outcome{}, fmt.Errorf("no value of %s is known to every server", keyColor)
	}

	st, err := r.start(ctx, target)
	r.record(st)
	if err != nil {
		return outcome{}, err
	}
	r.stopped = ""
	status, st, err := r.waitFollower(ctx, target, r.leader)
	r.record(st)
	if err != nil {
		return outcome{}, err
	}

	_, st, err = r.read(ctx, target, keyColor, readWant{found: false})
	r.record(st)
	if err != nil {
		return outcome{}, err
	}
	others := r.others(target)
	if _, err := r.readAll(ctx, others, keyColor, old); err != nil {
		return outcome{}, err
	}

	value := "yellow"
	if value == old {
		value = "purple"
	}
	_, st, err = r.put(ctx, r.cfg.Timeout, keyColor, value, writeWant{leader: r.leader, epoch: r.epoch})
	r.record(st)
	if err != nil {
		return outcome{}, err
	}
	r.values[keyColor] = value
	_, st, err = r.read(ctx, target, keyColor, readWant{found: true, value: value, poll: true})
	r.record(st)
	if err != nil {
		return outcome{}, err
	}
	stale := ""
	if status.Stale {
		stale = fmt.Sprintf(", reporting itself stale (missed %s)", plural(int(status.Gaps), "update"))
	}
	return outcome{
		reason: fmt.Sprintf("the restarted %s followed %s%s, but its copy was empty: it answered found:false for %s while %s still returned %q (zkv does not copy missed writes to a restarted server). Once %s was written again, %s returned %q.",
			target, r.leader, stale, keyColor, cluster.JoinIDs(others), old, keyColor, target, value),
		note: fmt.Sprintf("restarted %s: found:false, then %q after the rewrite", target, value),
	}, nil
}

// stopLeaderForStaleRead prepares stale-read when leader-election did not
// run: it makes sure every server holds a key, stops the leader and waits
// for a new one.
func stopLeaderForStaleRead(ctx context.Context, r *runner) error {
	ag, st, err := r.waitAgreement(ctx, r.cfg.Timeout, leaderWant{})
	r.record(st)
	if err != nil {
		return err
	}
	r.leader, r.epoch = ag.Leader, ag.Epoch
	if _, ok := r.values[keyColor]; !ok {
		const value = "blue"
		_, st, err := r.put(ctx, r.cfg.Timeout, keyColor, value, writeWant{leader: ag.Leader, epoch: ag.Epoch})
		r.record(st)
		if err != nil {
			return err
		}
		if _, err := r.readAll(ctx, r.running(), keyColor, value); err != nil {
			return err
		}
		r.values[keyColor] = value
	}
	stopAt := time.Now()
	st, err = r.stop(ctx, ag.Leader, r.cfg.Kill, "the leader", "to start it again later")
	r.record(st)
	if err != nil {
		return err
	}
	r.stopped = ag.Leader
	next, st, err := r.waitAgreement(ctx, time.Until(stopAt.Add(r.cfg.FailoverTimeout)),
		leaderWant{LeaderWant: cluster.LeaderWant{Not: ag.Leader, Above: ag.Epoch}, since: stopAt, what: "after the stop"})
	r.record(st)
	if err != nil {
		return err
	}
	r.leader, r.epoch = next.Leader, next.Epoch
	return nil
}

// eachOf names a set of servers in a sentence: "n2", "both n2 and n3",
// "each of n1, n2 and n3".
func eachOf(ids []string) string {
	switch len(ids) {
	case 0:
		return "no server"
	case 1:
		return ids[0]
	case 2:
		return "both " + cluster.JoinIDs(ids)
	}
	return "each of " + cluster.JoinIDs(ids)
}

// possessive is "its" for one server, "their" for more.
func possessive(n int) string {
	if n == 1 {
		return "its"
	}
	return "their"
}
