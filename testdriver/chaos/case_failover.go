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

func cutLeader(_ context.Context, f *fault) error {
	f.at = f.now()
	if err := f.cl.Cut(f.leader, cluster.PartZooKeeper); err != nil {
		return err
	}
	f.note("cut %s (leader of epoch %d) off from ZooKeeper; NATS stays up", f.leader, f.epoch)
	return nil
}

func healLeader(ctx context.Context, f *fault) error {
	if err := harness.Sleep(ctx, max(f.s.settle(), f.at+f.opts.session+f.s.cfg.Margin-f.now())); err != nil {
		return err
	}
	f.healed = f.now()
	if err := f.cl.Heal(f.leader, cluster.PartZooKeeper); err != nil {
		return err
	}
	f.note("restored %s's ZooKeeper connection", f.leader)
	f.awaitRejoin(ctx, true, "the old leader did not follow after the partition healed")
	return nil
}

func expectZKPartition(ctx context.Context, f *fault) error {
	f.finish(ctx, finishOptions{survivors: nodeIDs, lin: true})
	f.measureFailover()
	bound := f.opts.session + f.s.cfg.Margin
	if d, ok := f.res.Times[TimeStopAck]; ok && d > bound {
		f.violate(Violation{Check: CheckBound, Node: f.leader,
			Detail: fmt.Sprintf("the partitioned leader acknowledged writes for %s after the cut, over the bound of %s", fmtDur(d), bound)})
	}
	for _, v := range CheckDeposedAcks(f.hist.Ops(), f.leader, f.epoch, f.at+bound, f.at+bound) {
		f.violate(v)
	}
	return nil
}
