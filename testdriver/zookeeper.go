package testdriver

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/testdriver/cluster"
)

// MinEnsemble is the smallest ZooKeeper ensemble zookeeper-loss runs on:
// with one member down, the others must still form a quorum.
const MinEnsemble = 3

// The key and value zookeeper-loss writes.
const (
	keyEnsemble   = "ensemble"
	valueEnsemble = "two-of-three"
)

// ZooKeeper member modes, as srvr reports them.
const (
	modeLeader   = "leader"
	modeFollower = "follower"
)

// zooKeeperLossSkip says why zookeeper-loss cannot run on the cluster.
func zooKeeperLossSkip(r *runner, sum Summary) string {
	zf, ok := r.cluster.(cluster.ZooKeeperFaults)
	if !ok {
		return "needs a cluster that can kill and start ZooKeeper members, and this one cannot"
	}
	switch n := len(zf.ZooKeeperMembers()); {
	case n == 0:
		return "needs a ZooKeeper ensemble whose members the cluster can kill, and it has none (local: --zookeeper-ensemble)"
	case n < MinEnsemble:
		return fmt.Sprintf("needs a ZooKeeper ensemble of at least %d members, and the cluster has %d", MinEnsemble, n)
	}
	return needTwoServers(r, sum)
}

// zooKeeperLoss: the ensemble serves; its leader is killed; the other
// members serve again; the kvservers agree on a leader, connected to
// ZooKeeper; that leader is killed (SIGKILL: its session must expire on
// the reduced ensemble); the remaining servers agree on a new leader with
// a higher epoch, which acknowledges a write that each of them returns.
// Then the ZooKeeper member and the server are started again, and the
// server follows the new leader.
func zooKeeperLoss(ctx context.Context, r *runner) (outcome, error) {
	zf := r.cluster.(cluster.ZooKeeperFaults)
	members := zf.ZooKeeperMembers()

	modes, st, err := r.zkServing(ctx, zf, members, time.Time{}, "")
	r.record(st)
	if err != nil {
		return outcome{}, err
	}
	victim := members[0]
	for _, m := range members {
		if modes[m] == modeLeader {
			victim = m
		}
	}
	rest := slices.DeleteFunc(slices.Clone(members), func(m string) bool { return m == victim })

	killedZK := time.Now()
	st, err = r.zkKill(ctx, zf, victim, modes[victim], rest)
	r.record(st)
	if err != nil {
		return outcome{}, err
	}
	// Whatever fails from here on, the member is not left down.
	zkDown := true
	defer func() {
		if zkDown {
			r.restoreZooKeeper(ctx, zf, victim)
		}
	}()
	after := "after the kill of " + victim
	restModes, st, err := r.zkServing(ctx, zf, rest, killedZK, after)
	r.record(st)
	if err != nil {
		return outcome{}, err
	}
	served := st.Duration

	old, st, err := r.waitAgreement(ctx, r.cfg.FailoverTimeout,
		leaderWant{LeaderWant: cluster.LeaderWant{Connected: true}, what: "with ZooKeeper " + victim + " down"})
	r.record(st)
	if err != nil {
		return outcome{}, err
	}
	r.leader, r.epoch = old.Leader, old.Epoch

	stopAt := time.Now()
	st, err = r.stop(ctx, old.Leader, cluster.StopKill, "the leader", "with ZooKeeper "+victim+" down")
	r.record(st)
	if err != nil {
		return outcome{}, err
	}
	fo := &Failover{Stop: cluster.StopKill, OldLeader: old.Leader, OldEpoch: old.Epoch}
	r.sc.Failover = fo
	ag, _, err := r.failover(ctx, old, stopAt, keyEnsemble, valueEnsemble, fo)
	if err != nil {
		return outcome{}, err
	}
	r.leader, r.epoch = ag.Leader, ag.Epoch
	r.values[keyEnsemble] = valueEnsemble
	nodes := r.running()
	if _, err := r.readAll(ctx, nodes, keyEnsemble, valueEnsemble); err != nil {
		return outcome{}, err
	}

	// Everything back: the member first, then the server.
	mode, st, err := r.zkStart(ctx, zf, victim)
	r.record(st)
	if err != nil {
		return outcome{}, err
	}
	zkDown = false
	st, err = r.start(ctx, old.Leader)
	r.record(st)
	if err != nil {
		return outcome{}, err
	}
	// The restarted server's copy is empty: no key is known to every
	// running server any more.
	clear(r.values)
	_, st, err = r.waitFollower(ctx, old.Leader, ag.Leader)
	r.record(st)
	if err != nil {
		return outcome{}, err
	}

	return outcome{
		reason: fmt.Sprintf("with ZooKeeper %s (the ensemble's %s) killed, %s served again after %s (%s). Then SIGKILL of the leader %s: %s agreed on %s as the new leader in %s (ZooKeeper expired %s's session on the remaining quorum), and %s acknowledged the first write %s after the stop. Epoch %d -> %d; %s returned the value. %s came back as %s, and %s as a follower of %s.",
			victim, modes[victim], cluster.JoinIDs(rest), FormatDuration(served), describeModes(rest, restModes),
			old.Leader, cluster.JoinIDs(nodes), ag.Leader, FormatDuration(fo.Leader), old.Leader, ag.Leader, FormatDuration(fo.Write),
			old.Epoch, ag.Epoch, eachOf(nodes), victim, mode, old.Leader, ag.Leader),
		note: fmt.Sprintf("ZooKeeper %s down; SIGKILL %s -> %s, epoch %d -> %d; all agreed after %s", victim, old.Leader, ag.Leader, old.Epoch, ag.Epoch, FormatDuration(fo.Leader)),
	}, nil
}

// zkServing polls the modes of members until every one serves as leader
// or follower and exactly one leads, or Timeout ends. since, if set, is
// when the step's clock started; what then ends the line.
func (r *runner) zkServing(ctx context.Context, zf cluster.ZooKeeperFaults, members []string, since time.Time, what string) (map[string]string, Step, error) {
	begin := time.Now()
	if !since.IsZero() {
		begin = since
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	var (
		modes map[string]string
		view  string
		polls int
	)
	err := harness.WaitFor(ctx, pollInterval, func() error {
		polls++
		var err error
		modes, view, err = zkModesOnce(ctx, zf, members, r.cfg.RequestTimeout)
		return err
	})
	st := Step{Action: "SRVR", OK: true, Duration: time.Since(begin), Polls: polls}
	timing := FormatDuration(st.Duration)
	if what != "" {
		timing += " " + what
	}
	if polls > 1 {
		timing += ", " + plural(polls, "poll")
	}
	asked := "SRVR to ZooKeeper " + strings.Join(members, ", ")
	if err != nil {
		r.log.Debug("ZooKeeper not serving", "members", members, "err", err)
		st.Text = fmt.Sprintf("%s -> not serving (%s)", asked, timing)
		return modes, st, failed(&st, "every member serving as leader or follower, one of them leader", view,
			"ZooKeeper %s did not serve within %s: %s", cluster.JoinIDs(members), FormatDuration(r.cfg.Timeout), view)
	}
	for _, m := range members {
		if modes[m] == modeLeader {
			st.Node = m
		}
	}
	st.Text = fmt.Sprintf("%s -> %s (%s)", asked, describeModes(members, modes), timing)
	return modes, st, nil
}

// zkModesOnce asks each member for its mode once. It fails unless every
// one serves as leader or follower and exactly one leads; view describes
// every answer.
func zkModesOnce(ctx context.Context, zf cluster.ZooKeeperFaults, members []string, timeout time.Duration) (map[string]string, string, error) {
	modes := map[string]string{}
	var (
		parts   []string
		errs    []error
		leaders int
	)
	for _, m := range members {
		mctx, cancel := context.WithTimeout(ctx, timeout)
		mode, err := zf.ZooKeeperMode(mctx, m)
		cancel()
		switch {
		case err != nil:
			parts = append(parts, m+": "+oneLine(err.Error()))
			errs = append(errs, fmt.Errorf("%s: %w", m, err))
			continue
		case mode == modeLeader:
			leaders++
		case mode != modeFollower:
			errs = append(errs, fmt.Errorf("%s serves as %s, not as a member of an ensemble", m, mode))
		}
		modes[m] = mode
		parts = append(parts, m+": "+mode)
	}
	view := strings.Join(parts, "; ")
	if len(errs) == 0 && leaders != 1 {
		errs = append(errs, fmt.Errorf("%d members report Mode: leader", leaders))
	}
	return modes, view, errors.Join(errs...)
}

// describeModes is "zoo1 follower, zoo2 leader".
func describeModes(members []string, modes map[string]string) string {
	parts := make([]string, len(members))
	for i, m := range members {
		parts[i] = m + " " + modes[m]
	}
	return strings.Join(parts, ", ")
}

// zkKill kills ZooKeeper member, whose mode was mode, with SIGKILL; rest
// are the members left.
func (r *runner) zkKill(ctx context.Context, zf cluster.ZooKeeperFaults, member, mode string, rest []string) (Step, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	begin := time.Now()
	err := zf.KillZooKeeper(ctx, member)
	st := Step{Action: "STOP", OK: true, Duration: time.Since(begin), Node: member}
	sent := fmt.Sprintf("STOP ZooKeeper %s (the ensemble's %s) with SIGKILL", member, mode)
	if err != nil {
		st.Text = fmt.Sprintf("%s -> error (%s)", sent, FormatDuration(st.Duration))
		return st, failed(&st, member+" stopped", err.Error(), "killing ZooKeeper %s failed: %v", member, err)
	}
	st.Text = fmt.Sprintf("%s -> stopped; %d of %d members remain, still a quorum (%s)", sent, len(rest), len(rest)+1, FormatDuration(st.Duration))
	return st, nil
}

// zkStart starts ZooKeeper member again and returns the mode it serves
// in.
func (r *runner) zkStart(ctx context.Context, zf cluster.ZooKeeperFaults, member string) (string, Step, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	begin := time.Now()
	err := zf.StartZooKeeper(ctx, member)
	var mode string
	if err == nil {
		mctx, mcancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
		mode, err = zf.ZooKeeperMode(mctx, member)
		mcancel()
	}
	st := Step{Action: "START", OK: true, Duration: time.Since(begin), Node: member}
	if err != nil {
		st.Text = fmt.Sprintf("START ZooKeeper %s again -> error (%s)", member, FormatDuration(st.Duration))
		return "", st, failed(&st, member+" serving", oneLine(err.Error()), "starting ZooKeeper %s again failed: %v", member, err)
	}
	st.Text = fmt.Sprintf("START ZooKeeper %s again -> serving as %s (%s)", member, mode, FormatDuration(st.Duration))
	return mode, st, nil
}

// restoreZooKeeper starts member again after zookeeper-loss failed with
// it down, so that the ensemble is whole again; the outcome goes to the
// log only. After an interrupt it does nothing: the teardown follows.
func (r *runner) restoreZooKeeper(ctx context.Context, zf cluster.ZooKeeperFaults, member string) {
	if ctx.Err() != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	err := zf.StartZooKeeper(ctx, member)
	r.log.Info("ZooKeeper member started again after a failure", "member", member, "err", err)
}
