package chaos

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/testdriver/cluster"
)

// The steps of the cases that depose a leader which keeps running, the
// false positives of fast failover: nats-cut-leader (the leader cut off
// from NATS only: the next in line sees "no responders" and deposes it)
// and znode-removed (the leader's election znode deleted from outside).

func cutLeaderNATS(_ context.Context, f *fault) error {
	f.at = f.now()
	if err := f.cl.Cut(f.leader, cluster.PartNATS); err != nil {
		return err
	}
	f.note("cut %s (leader of epoch %d) off from NATS; ZooKeeper stays up", f.leader, f.epoch)
	return nil
}

func healLeaderNATS(ctx context.Context, f *fault) error {
	if err := harness.Sleep(ctx, f.s.settle()); err != nil {
		return err
	}
	f.healed = f.now()
	if err := f.cl.Heal(f.leader, cluster.PartNATS); err != nil {
		return err
	}
	f.note("restored %s's NATS connection", f.leader)
	f.awaitRejoin(ctx, true, "the old leader did not follow after its NATS connection came back")
	return nil
}

func removeLeaderZnode(ctx context.Context, f *fault) error {
	st, err := f.status(f.leader, time.Second)
	if err != nil {
		return err
	}
	if st.Znode == "" {
		return fmt.Errorf("the leader %s reports no election znode", f.leader)
	}
	p := f.paths[0] + "/" + st.Znode
	f.at = f.now()
	if err := harness.DeleteZnode(ctx, strings.Join(f.cl.ZooKeeperDirect(), ","), p, ""); err != nil {
		return err
	}
	f.note("deleted %s, the election znode of %s (leader of epoch %d), which keeps running", p, f.leader, f.epoch)
	return nil
}

func awaitDeposedRejoin(ctx context.Context, f *fault) error {
	f.healed = f.now()
	f.awaitRejoin(ctx, true, "the deposed leader did not follow the new epoch")
	return nil
}

// expectDeposedAlive checks a leader deposed while it ran: no
// acknowledged acks=all write lost, nothing of the old epoch applied after
// the new one (the shared checks), and the old leader acknowledged no
// write sent after the bound nor returned after it: one lease interval
// (a tenth of the session timeout) plus the margin.
func expectDeposedAlive(ctx context.Context, f *fault) error {
	f.finish(ctx, finishOptions{survivors: nodeIDs, lin: true})
	f.measureFailover()
	bound := f.opts.session/10 + f.s.cfg.Margin
	if d, ok := f.res.Times[TimeStopAck]; ok && d > bound {
		f.violate(Violation{Check: CheckBound, Node: f.leader,
			Detail: fmt.Sprintf("the deposed leader acknowledged writes for %s after the fault, over the bound of %s", fmtDur(d), bound)})
	}
	for _, v := range CheckDeposedAcks(f.hist.Ops(), f.leader, f.epoch, f.at+bound, f.at+bound) {
		f.violate(v)
	}
	return nil
}
