package chaos

import (
	"context"
	"fmt"
	"time"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/testdriver/cluster"
)

// The steps of the cases that depose the leader: kill-leader (SIGKILL),
// pause-leader (SIGSTOP past its session timeout, then SIGCONT) and
// zk-partition (the leader cut off from ZooKeeper only).

func killLeader(_ context.Context, f *fault) error {
	f.at = f.now()
	f.killed = append(f.killed, f.leader)
	if err := f.cl.Process(f.leader).Kill(); err != nil {
		return err
	}
	f.note("SIGKILL %s, the leader of epoch %d", f.leader, f.epoch)
	return nil
}

func expectKillLeader(ctx context.Context, f *fault) error {
	// Only acks=all promises that an acknowledged write outlives the
	// leader; with the weaker levels a loss is the documented risk.
	f.finish(ctx, finishOptions{survivors: others(f.leader), lin: true, lossAllowed: f.opts.acks != bus.AcksAll})
	f.measureFailover()
	return nil
}

func pauseLeader(_ context.Context, f *fault) error {
	f.before = f.statuses(nodeIDs)
	f.at = f.now()
	if err := f.pause(f.leader); err != nil {
		return err
	}
	// Until Pause returns the process may still answer: the fencing check
	// counts from when it is known to be stopped.
	f.from = f.now()
	f.note("SIGSTOP %s, the leader of epoch %d", f.leader, f.epoch)
	return nil
}

func resumeLeader(ctx context.Context, f *fault) error {
	if f.newEpoch != 0 {
		// Writes to the new leader while the old one is still stopped, and
		// at least twice the session timeout of pause.
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_ = harness.WaitFor(wctx, 50*time.Millisecond, func() error {
			n := 0
			for _, a := range f.acks() {
				if a.Epoch == f.newEpoch {
					n++
				}
			}
			if n < 5 || f.now()-f.at < 2*f.opts.session {
				return fmt.Errorf("%d acks in epoch %d", n, f.newEpoch)
			}
			return nil
		})
		cancel()
	}
	f.healed = f.now()
	f.to = f.healed
	_ = f.resume(f.leader)
	f.res.time(TimePause, f.healed-f.at)
	f.note("SIGCONT %s after %s", f.leader, fmtDur(f.healed-f.at))
	// The old leader comes back as a follower of the new epoch.
	f.awaitRejoin(ctx, false, "the resumed leader did not follow the new epoch")
	return nil
}

func expectPauseLeader(ctx context.Context, f *fault) error {
	f.finish(ctx, finishOptions{survivors: nodeIDs, lin: true})
	for _, v := range CheckDeposedAcks(f.hist.Ops(), f.leader, f.epoch, f.from, f.to) {
		f.violate(v)
	}
	var sentAfter, byOld int
	for _, a := range f.acks() {
		if a.Invoke > f.at {
			sentAfter++
			if a.Leader == f.leader {
				byOld++
			}
		}
	}
	f.res.fact("acknowledged writes sent after the pause", "%d, %d of them by %s (the old leader)", sentAfter, byOld, f.leader)
	after := f.statuses(nodeIDs)
	var dropped uint64
	for _, id := range nodeIDs {
		if b, ok := f.before[id]; ok {
			if a, ok := after[id]; ok && a.DroppedOldEpoch >= b.DroppedOldEpoch {
				dropped += a.DroppedOldEpoch - b.DroppedOldEpoch
			}
		}
	}
	f.res.fact("dropped_old_epoch", "%d", dropped)
	f.measureFailover()
	return nil
}

// partNames name the parts a leader is cut off from, and the part that
// stays up, in notes.
var partNames = map[string][2]string{
	cluster.PartZooKeeper: {"ZooKeeper", "NATS"},
	cluster.PartNATS:      {"NATS", "ZooKeeper"},
}

// cutLeaderFrom cuts the leader off from part only.
func cutLeaderFrom(part string) func(context.Context, *fault) error {
	return func(_ context.Context, f *fault) error {
		f.at = f.now()
		if err := f.cl.Cut(f.leader, part); err != nil {
			return err
		}
		f.note("cut %s (leader of epoch %d) off from %s; %s stays up", f.leader, f.epoch, partNames[part][0], partNames[part][1])
		return nil
	}
}

// healLeaderFrom heals the leader's cut from part once wait has passed
// since the cut (and the settle time in any case), and waits for it to
// follow the new epoch.
func healLeaderFrom(part string, wait func(f *fault) time.Duration) func(context.Context, *fault) error {
	return func(ctx context.Context, f *fault) error {
		if err := harness.Sleep(ctx, max(f.s.settle(), f.at+wait(f)-f.now())); err != nil {
			return err
		}
		f.healed = f.now()
		if err := f.cl.Heal(f.leader, part); err != nil {
			return err
		}
		name := partNames[part][0]
		f.note("restored %s's %s connection", f.leader, name)
		f.awaitRejoin(ctx, true, "the old leader did not follow after its "+name+" connection came back")
		return nil
	}
}

// pastSession is the wait of a ZooKeeper cut: the session timeout and the
// margin, so that the session surely expired.
func pastSession(f *fault) time.Duration { return f.opts.session + f.s.cfg.Margin }

// noWait heals as soon as the load settled.
func noWait(*fault) time.Duration { return 0 }

// expectDeposedWithin checks a leader deposed while it kept running,
// besides the shared checks: it acknowledged no write sent, nor answered,
// later than bound(f) after the fault.
func expectDeposedWithin(bound func(f *fault) time.Duration) func(context.Context, *fault) error {
	return func(ctx context.Context, f *fault) error {
		f.finish(ctx, finishOptions{survivors: nodeIDs, lin: true})
		f.measureFailover()
		b := bound(f)
		if d, ok := f.res.Times[TimeStopAck]; ok && d > b {
			f.violate(Violation{Check: CheckBound, Node: f.leader,
				Detail: fmt.Sprintf("the deposed leader acknowledged writes for %s after the fault, over the bound of %s", fmtDur(d), b)})
		}
		for _, v := range CheckDeposedAcks(f.hist.Ops(), f.leader, f.epoch, f.at+b, f.at+b) {
			f.violate(v)
		}
		return nil
	}
}
