package chaos

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/testdriver/cluster"
)

// The steps of nats-restart: the NATS server restarted under load, with
// one follower stopped across the restart.

func restartNATS(ctx context.Context, f *fault) error {
	// One follower is stopped across the restart, so that it reconnects
	// last and surely misses updates; the others reconnect on their own.
	f.victim = others(f.leader)[1]
	f.from = f.now()
	if err := f.pause(f.victim); err != nil {
		return err
	}
	f.at = f.now()
	if err := f.cl.NATS()[0].Restart(); err != nil {
		return err
	}
	f.note("restarted NATS on the same port in %s, with %s stopped (it reconnects last)", fmtDur(f.now()-f.at), f.victim)
	// Writes resume once the leader and a client are back.
	f.awaitAckAfter(ctx, f.at, 30*time.Second, "the restart", false, "writes did not resume after the NATS restart")
	// A key written only now, which the stopped follower cannot receive.
	f.missed = f.own.put("missed", f.own.nextValue(), "")
	if f.missed.Outcome != OK {
		f.note("the write %s should miss was not acknowledged: %s %s", f.victim, f.missed.Code, f.missed.Err)
	}
	return nil
}

func resumeLagger(ctx context.Context, f *fault) error {
	lagger, missed, catchUp := f.victim, f.missed, f.opts.catchUp
	// Keep the lagger stopped a little longer, below its session timeout.
	_ = harness.Sleep(ctx, min(300*time.Millisecond, max(0, f.opts.session/2-(f.now()-f.from))))
	f.healed = f.now()
	f.to = f.healed
	_ = f.resume(lagger)
	f.res.time(TimePause, f.healed-f.from)
	// Every server reconnects.
	var reconnected time.Duration
	for _, id := range nodeIDs {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := harness.WaitFor(wctx, 20*time.Millisecond, func() error {
			st, err := f.status(id, 500*time.Millisecond)
			if err == nil && st.NATS != "connected" {
				err = fmt.Errorf("nats %s", st.NATS)
			}
			return err
		})
		cancel()
		if err != nil {
			f.violate(Violation{Check: CheckAvailability, Node: id, Detail: "did not reconnect to NATS: " + err.Error()})
			continue
		}
		reconnected = f.now() - f.at
	}
	f.res.time(TimeReconnect, reconnected)
	// The lagger learns it missed updates from the next one it receives:
	// with --catch-up it then fetches the leader's copy (the missed key
	// appears), without it it says stale.
	if missed.Outcome != OK {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := harness.WaitFor(wctx, 20*time.Millisecond, func() error {
		if catchUp {
			if op := f.own.localGet(lagger, "missed"); op.Outcome != OK || op.Value != missed.Value {
				return fmt.Errorf("%s does not have the missed write", lagger)
			}
			if st, err := f.status(lagger, time.Second); err != nil || st.Stale || st.CatchingUp {
				return fmt.Errorf("%s: stale=%v catching_up=%v %v", lagger, st.Stale, st.CatchingUp, err)
			}
			return nil
		}
		if st, err := f.status(lagger, time.Second); err != nil || !st.Stale {
			return fmt.Errorf("%s does not report stale yet", lagger)
		}
		return nil
	})
	cancel()
	switch {
	case err != nil && catchUp:
		f.violate(Violation{Check: CheckCatchUp, Node: lagger, Detail: "did not catch up: " + err.Error()})
	case err != nil:
		f.violate(Violation{Check: CheckStaleReport, Node: lagger, Detail: "missed an acknowledged write but does not report stale: " + err.Error()})
	case catchUp:
		f.res.time(TimeCatchUp, f.now()-f.healed)
	default:
		f.res.time(TimeStaleSeen, f.now()-f.healed)
	}
	return nil
}

func expectNATSRestart(ctx context.Context, f *fault) error {
	r, catchUp, tRestart := f.res, f.opts.catchUp, f.at
	for _, l := range f.loads {
		l.Stop()
	}
	r.time(TimeResume, firstAckAfter(f.acks(), tRestart)-tRestart)
	r.time(TimeUnavailable, ackGap(f.acks(), tRestart, f.now()))
	if catchUp {
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := harness.WaitFor(wctx, 100*time.Millisecond, func() error {
			for id, st := range f.statuses(nodeIDs) {
				if st.Stale || st.CatchingUp {
					return fmt.Errorf("%s stale=%v catching_up=%v", id, st.Stale, st.CatchingUp)
				}
			}
			return nil
		})
		cancel()
		if err != nil {
			f.violate(Violation{Check: CheckCatchUp, Detail: "copies still stale: " + err.Error()})
		}
	} else {
		_ = harness.Sleep(ctx, time.Second)
	}
	// Compare every copy with the leader.
	ag, _, err := f.waitLeader(ctx, nodeIDs, cluster.LeaderWant{}, 30*time.Second)
	if err != nil {
		return err
	}
	leaderNow := ag.Leader
	if leaderNow != f.leader || ag.Epoch != f.epoch {
		// Every server keeps its ZooKeeper session across the restart, so
		// only fast failover taking the restart for a crash could depose
		// the leader.
		f.violate(Violation{Check: CheckLeaderChanged, Node: leaderNow,
			Detail: fmt.Sprintf("the NATS restart changed the leader from %s (epoch %d) to %s (epoch %d)", f.leader, f.epoch, leaderNow, ag.Epoch)})
	}
	diffs := f.compareCopies(leaderNow)
	sts := f.statuses(nodeIDs)
	missedCopies := 0
	for _, id := range others(leaderNow) {
		st := sts[id]
		d := diffs[id]
		gaps, caught := logFacts(f.cl.Process(id).LogPath())
		if gaps > 0 || d > 0 {
			missedCopies++
		}
		r.fact("copy "+id, "stale=%v keys differing=%d; its log: %d update(s) missed, %s", st.Stale, d, gaps, caught)
		switch {
		case catchUp && d > 0:
			f.violate(Violation{Check: CheckCatchUp, Node: id, Detail: fmt.Sprintf("%d key(s) differ from the leader after the catch-up", d)})
		case !catchUp && d > 0 && !st.Stale:
			f.violate(Violation{Check: CheckStaleReport, Node: id, Detail: fmt.Sprintf("%d key(s) differ from the leader, yet it reports stale=false", d)})
		}
	}
	r.fact("copies that missed updates", "%d", missedCopies)
	// Read-your-writes on the copy that missed the write: a min_revision
	// read at its revision must find it, or answer stale.
	if f.missed.Outcome == OK {
		op := f.own.minRevGet(f.victim, "missed", f.missed.Revision)
		r.fact("min_revision read of the missed write on "+f.victim, "%s found=%v revision=%d (wanted %d)%s", op.Outcome, op.Found, op.Revision, f.missed.Revision, errSuffix(op))
	}
	survivors := nodeIDs
	if !catchUp {
		survivors = []string{leaderNow}
		for _, id := range others(leaderNow) {
			if !sts[id].Stale {
				survivors = append(survivors, id)
			}
		}
	}
	f.finish(ctx, finishOptions{survivors: survivors, lin: true, converge: 3 * time.Second})
	return nil
}

func errSuffix(op Op) string {
	if op.Code == "" {
		return ""
	}
	return " " + op.Code
}

// logFacts reads a server's log for what it says about missed updates and
// catch-ups: the updates it reported missed, and the catch-ups it
// finished with their durations.
func logFacts(path string) (int, string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, "log unreadable"
	}
	missed := 0
	var took []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, `msg="replication gap`) {
			if m := missedRe.FindStringSubmatch(line); m != nil {
				n, _ := strconv.Atoi(m[1])
				missed += n
			}
		}
		if strings.Contains(line, `msg="caught up"`) {
			if m := tookRe.FindStringSubmatch(line); m != nil {
				took = append(took, m[1])
			}
		}
	}
	if len(took) == 0 {
		return missed, "no catch-up"
	}
	return missed, fmt.Sprintf("caught up %d time(s), in %s", len(took), strings.Join(took, ", "))
}

var (
	missedRe = regexp.MustCompile(` missed=(\d+)`)
	tookRe   = regexp.MustCompile(` took=(\S+)`)
)

// compareCopies reads every key from the leader and from every other node
// and returns, per node, how many keys differ.
func (e *runEnv) compareCopies(leader string) map[string]int {
	out := map[string]int{}
	keys := e.allKeys()
	want := map[string]Op{}
	for _, k := range keys {
		want[k] = e.own.localGet(leader, k)
	}
	for _, id := range others(leader) {
		for _, k := range keys {
			op := e.own.localGet(id, k)
			if op.Outcome != OK || op.Found != want[k].Found || op.Value != want[k].Value {
				out[id]++
			}
		}
	}
	return out
}
