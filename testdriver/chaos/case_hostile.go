package chaos

import (
	"context"
	"fmt"
	"time"

	"zkv/bus"
	"zkv/internal/harness"
)

// attackRate is how many forgeries a second the attacker of hostile-client
// sends, besides six forged acks of every put.
const attackRate = 300

// ----------------------------------------------------------------------------
// 7. A hostile NATS client without the cluster key, under acks=all load

func runHostileClient(ctx context.Context, s *suite, r *RunResult) error {
	// The stopped replica must keep its ZooKeeper session, so that acks=all
	// still waits for it: the stop outlasts the write timeout, the session
	// outlasts the stop by far.
	stop := s.cfg.WriteTimeout + 1500*time.Millisecond
	session := max(s.longSession(), 2*stop)
	e, leader, epoch, err := s.startLoaded(ctx, r, clusterOptions{session: session, acks: bus.AcksAll})
	if err != nil {
		return err
	}
	defer e.close()
	before := e.statuses(nodeIDs)
	tAttack := e.now()
	a, err := e.startAttack(ctx, attackRate)
	if err != nil {
		return err
	}
	defer a.Stop()
	e.note("an attacker without the key floods the server subjects (%d forgeries/s and 6 forged acks of every put) while %s leads epoch %d", attackRate, leader, epoch)
	if err := sleep(ctx, s.warmup()); err != nil {
		return err
	}
	var from, to time.Duration
	if r.Variant == "pause-replica" {
		replica := others(leader)[0]
		if err := e.node(replica).Pause(); err != nil {
			return err
		}
		from = e.now()
		err := sleep(ctx, stop)
		to = e.now()
		if rerr := e.node(replica).Resume(); rerr != nil {
			return rerr
		}
		if err != nil {
			return err
		}
		r.time(TimePause, to-from)
		e.note("SIGSTOP %s for %s during the attack; the attacker acks every put in its name", replica, fmtDur(to-from))
	}
	if err := sleep(ctx, s.settle()); err != nil {
		return err
	}
	a.Stop()
	r.time(TimeAttack, e.now()-tAttack)
	r.fact("attacker messages", "%d (%.0f/s)", a.Sent(), float64(a.Sent())/(e.now()-tAttack).Seconds())
	e.finish(ctx, finishOptions{survivors: nodeIDs, lin: true})
	ops := e.hist.Ops()
	for _, v := range CheckAcksAllReplies(ops, len(nodeIDs), from, to) {
		e.violate(v)
	}
	if to > from {
		sent, acked := 0, 0
		for _, op := range ops {
			if op.Kind == OpPut && op.Invoke > from && op.Invoke < to {
				sent++
				if op.Acked() && op.Return < to {
					acked++
				}
			}
		}
		r.fact("writes sent while the replica was stopped", "%d, %d of them acknowledged before SIGCONT", sent, acked)
	}
	for _, v := range CheckSteadyLeader(e.mon.Events(), tAttack, leader, epoch) {
		e.violate(v)
	}
	e.checkRejected(ctx, before)
	r.fact("wire messages the watcher dropped (not signed by the cluster)", "%d", e.wire.Rejected())
	return nil
}

// checkRejected checks that every server counted the attacker's messages
// (unsigned and forged both grew since before), that none of them changed
// its copy (no divergence, gap or stale), and that every server is ready.
func (e *runEnv) checkRejected(ctx context.Context, before map[string]bus.Status) {
	for _, id := range nodeIDs {
		var st bus.Status
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := waitStatus(wctx, e, id, func(s bus.Status) error {
			if !s.Ready {
				return fmt.Errorf("not ready: %s", s.NotReady)
			}
			return nil
		}, &st)
		cancel()
		if err != nil {
			e.violate(Violation{Check: CheckAvailability, Node: id, Detail: "not ready after the attack: " + err.Error()})
			continue
		}
		b := before[id]
		unsigned, forged := st.RejectedUnsigned-b.RejectedUnsigned, st.RejectedForged-b.RejectedForged
		e.res.fact("rejected by "+id, "unsigned %d, forged %d, foreign %d", unsigned, forged, st.ForeignMessages-b.ForeignMessages)
		if unsigned == 0 || forged == 0 {
			e.violate(Violation{Check: CheckForgedAccepted, Node: id,
				Detail: fmt.Sprintf("counted %d unsigned and %d forged messages during the attack; both must grow", unsigned, forged)})
		}
		if st.Diverged > 0 || st.Gaps > 0 || st.Stale {
			e.violate(Violation{Check: CheckForgedAccepted, Node: id,
				Detail: fmt.Sprintf("after the attack: diverged=%d gaps=%d stale=%v", st.Diverged, st.Gaps, st.Stale)})
		}
	}
}

// waitStatus polls id's status until ok accepts it or ctx ends, leaving
// the last status answered in st.
func waitStatus(ctx context.Context, e *runEnv, id string, ok func(bus.Status) error, st *bus.Status) error {
	return harness.WaitFor(ctx, 50*time.Millisecond, func() error {
		s, err := e.status(id, time.Second)
		if err != nil {
			return err
		}
		*st = s
		return ok(s)
	})
}
