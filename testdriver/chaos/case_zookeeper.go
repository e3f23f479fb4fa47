package chaos

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/zkvstore/zkv/internal/harness"
)

// The steps of zk-ensemble: the run's ZooKeeper ensemble loses one member,
// then two, and gets both back.

func killZooKeepers(ctx context.Context, f *fault) error {
	// One of three: the ZooKeeper leader, the most disruptive one.
	first, err := f.zkLeader(ctx)
	if err != nil {
		return err
	}
	f.zk1 = first
	f.at = f.now()
	if err := f.cl.KillZooKeeper(ctx, first); err != nil {
		return err
	}
	f.note("killed ZooKeeper %s (its leader); 2 of 3 remain", first)
	wctx, cancel := context.WithTimeout(ctx, f.opts.session+f.s.cfg.LeaderBound)
	err = harness.WaitFor(wctx, 20*time.Millisecond, func() error {
		n := 0
		for _, a := range f.acks() {
			if a.Invoke > f.at {
				n++
			}
		}
		if n < 5 {
			return fmt.Errorf("%d writes acknowledged since", n)
		}
		return nil
	})
	cancel()
	if err != nil {
		f.violate(Violation{Check: CheckAvailability, Detail: "writes did not go on with 2 of 3 ZooKeeper members: " + err.Error()})
	}
	if err := harness.Sleep(ctx, f.s.warmup()); err != nil {
		return err
	}
	f.quorumLost = f.now()
	f.res.time("1 lost: "+TimeUnavailable, ackGap(f.acks(), f.at, f.quorumLost))
	for _, m := range f.cl.ZooKeeperMembers() {
		if m != first {
			f.zk2 = m
			break
		}
	}
	if err := f.cl.KillZooKeeper(ctx, f.zk2); err != nil {
		return err
	}
	f.note("killed ZooKeeper %s; 1 of 3 remains, no quorum", f.zk2)
	// Watch past the bound for a whole session timeout more.
	if err := harness.Sleep(ctx, f.quorumBound()+f.opts.session); err != nil {
		return err
	}
	// Local reads are still served, by every server, and hold every
	// acknowledged write (acks=all: each of them confirmed it).
	var reads []Op
	failed := 0
	for _, id := range nodeIDs {
		for _, k := range f.allKeys() {
			op := f.own.localGet(id, k)
			if op.Outcome != OK {
				failed++
				continue
			}
			reads = append(reads, op)
		}
	}
	f.res.fact("local reads without quorum", "%d answered, %d not", len(reads), failed)
	if failed > 0 {
		f.violate(Violation{Check: CheckAvailability, Detail: fmt.Sprintf("%d local read(s) not answered without a ZooKeeper quorum", failed)})
	}
	n, lost := CheckFresh(f.hist.Ops(), reads)
	f.res.Fresh += n
	f.res.Lost += len(lost)
	for _, v := range lost {
		f.violate(v)
	}
	return nil
}

// quorumBound is how long after the quorum is lost a write may still be
// acknowledged.
func (f *fault) quorumBound() time.Duration { return f.opts.session + f.s.cfg.Margin }

func restartZooKeepers(ctx context.Context, f *fault) error {
	f.healed = f.now()
	t2, bound := f.quorumLost, f.quorumBound()
	var lastAck time.Duration = -1
	for _, a := range f.acks() {
		if a.Return > t2 && a.Return < f.healed {
			lastAck = max(lastAck, a.Return)
		}
		if a.Return > t2+bound && a.Return < f.healed {
			f.violate(Violation{Check: CheckBound, Key: a.Key, Ops: []int{a.ID},
				Detail: fmt.Sprintf("op %d acknowledged at %s by %s without a ZooKeeper quorum (since %s)", a.ID, fmtDur(a.Return), a.Leader, fmtDur(t2))})
		}
	}
	f.res.time("2 lost: "+TimeStopAck, max(0, lastAck-t2))
	// Bring both back; writes resume.
	var wg sync.WaitGroup
	members := []string{f.zk1, f.zk2}
	errs := make([]error, len(members))
	for i, m := range members {
		wg.Go(func() { errs[i] = f.cl.StartZooKeeper(ctx, m) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	f.note("restarted %s and %s", f.zk1, f.zk2)
	f.awaitAckAfter(ctx, f.healed, f.opts.session+f.s.cfg.LeaderBound, "the restore", true, "writes did not resume with the quorum back")
	return nil
}

// zkLeader returns the member of the run's ZooKeeper ensemble that reports
// itself leader, asking until one does or ctx ends.
func (e *runEnv) zkLeader(ctx context.Context) (string, error) {
	var leader string
	err := harness.WaitFor(ctx, harness.DefaultPollInterval, func() error {
		var errs []error
		for _, m := range e.cl.ZooKeeperMembers() {
			mctx, cancel := context.WithTimeout(ctx, time.Second)
			mode, err := e.cl.ZooKeeperMode(mctx, m)
			cancel()
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("%s: %w", m, err))
			case mode == "leader":
				leader = m
				return nil
			}
		}
		return errors.Join(append(errs, errors.New("no member reports Mode: leader"))...)
	})
	if err != nil {
		return "", fmt.Errorf("ensemble leader: %w", err)
	}
	return leader, nil
}
