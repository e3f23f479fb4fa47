package chaos

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/zkvstore/zkv/internal/harness"
)

// The steps of the cases that depose a leader which keeps running, the
// false positives of fast failover: nats-cut-leader (the leader cut off
// from NATS only: the next in line sees "no responders" and deposes it)
// and znode-removed (the leader's election znode deleted from outside).

// The names of the cases of this file.
const (
	CaseNATSCutLeader = "nats-cut-leader"
	CaseZnodeRemoved  = "znode-removed"
)

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

// leaseBound is how long a leader deposed in ZooKeeper may still
// acknowledge: one lease interval (a tenth of the session timeout), by
// when a lease round trip finds its znode gone, plus the margin.
func leaseBound(f *fault) time.Duration { return f.opts.session/10 + f.s.cfg.Margin }
