package chaos

import (
	"context"
	"fmt"
	"sync"
	"time"

	"zkv/bus"
	"zkv/internal/harness"
	"zkv/testdriver/cluster"
)

// ----------------------------------------------------------------------------
// 8. SIGKILL of every server under acks=all load, all restarted empty

func runFullRestart(ctx context.Context, s *suite, r *RunResult) error {
	catchUp := r.Variant == "catch-up"
	e, leader, epoch, err := s.startLoaded(ctx, r, clusterOptions{session: s.cfg.SessionTimeout, acks: bus.AcksAll, catchUp: catchUp})
	if err != nil {
		return err
	}
	defer e.close()
	tKill := e.now()
	var wg sync.WaitGroup
	for _, id := range nodeIDs {
		wg.Go(func() { _ = e.node(id).Kill() })
	}
	wg.Wait()
	tKilled := e.now()
	highest, _, _, _ := CheckRevisionsForward(e.hist.Ops(), tKilled)
	errs := make([]error, len(nodeIDs))
	for i, id := range nodeIDs {
		wg.Go(func() { errs[i] = e.node(id).Restart(ctx) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	tRestarted := e.now()
	r.time(TimeRestartGap, tRestarted-tKill)
	e.note("SIGKILL all three (leader %s, epoch %d, highest acknowledged revision %d); all restarted, empty, %s later", leader, epoch, highest, fmtDur(tRestarted-tKill))
	forced, tLeadFrom := "", tRestarted
	if catchUp {
		// Past the old sessions' expiry nobody may lead, and every server
		// must say it is behind; then the operator accepts the loss.
		if err := sleep(ctx, e.opts.session+s.cfg.Margin+s.warmup()); err != nil {
			return err
		}
		tForce := e.now()
		for _, v := range CheckBehindRecord(e.mon.Events(), tRestarted, tForce) {
			e.violate(v)
		}
		for _, a := range e.acks() {
			if a.Return > tKilled {
				e.violate(Violation{Check: CheckLedBehind, Key: a.Key, Node: a.Leader, Ops: []int{a.ID},
					Detail: fmt.Sprintf("op %d acknowledged at %s by %s before any server was started with --force-lead", a.ID, fmtDur(a.Return), a.Leader)})
			}
		}
		forced = nodeIDs[0]
		if err := e.replaceNode(ctx, forced, "--force-lead"); err != nil {
			return err
		}
		r.time(TimeForceLead, tForce-tKill)
		e.note("operator: restarted %s with --force-lead at %s", forced, fmtDur(tForce))
		tLeadFrom = tForce
	}
	ag, tLed, err := e.waitLeader(ctx, nodeIDs, cluster.LeaderWant{Above: epoch}, s.leaderTimeout(e.opts.session))
	newLeader, newEpoch := ag.Leader, ag.Epoch
	if err != nil {
		e.violate(Violation{Check: CheckAvailability, Detail: "no leader after the restart: " + err.Error()})
	} else {
		r.time(TimeNewLeader, tLed-tLeadFrom)
		e.note("%s leads epoch %d", newLeader, newEpoch)
		if catchUp && newLeader != forced {
			e.violate(Violation{Check: CheckLedBehind, Node: newLeader, Detail: fmt.Sprintf("%s leads, not the server started with --force-lead (%s)", newLeader, forced)})
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err = harness.WaitFor(wctx, 20*time.Millisecond, func() error {
		if firstAckAfter(e.acks(), tLeadFrom) < 0 {
			return fmt.Errorf("no write acknowledged since %s", fmtDur(tLeadFrom))
		}
		return nil
	})
	cancel()
	if err != nil {
		e.violate(Violation{Check: CheckAvailability, Detail: "writes did not resume after the restart: " + err.Error()})
	} else {
		r.time(TimeResume, firstAckAfter(e.acks(), tLeadFrom)-tLeadFrom)
	}
	if newLeader != "" {
		e.checkLostReported(newLeader, highest)
	}
	if catchUp {
		e.waitCurrent(ctx, 20*time.Second)
	}
	if err := sleep(ctx, s.settle()); err != nil {
		return err
	}
	// Every write acknowledged before the kill is lost by design: the
	// checks count them, and the history cannot be linearizable.
	e.finish(ctx, finishOptions{survivors: nodeIDs, lin: true, lossAllowed: true})
	_, first, ok, back := CheckRevisionsForward(e.hist.Ops(), tKilled)
	for _, v := range back {
		e.violate(v)
	}
	if ok {
		r.fact("revisions", "highest acknowledged before the kill %d; first acknowledged after the restart %d (op %d, epoch %d)",
			highest, first.Revision, first.ID, first.Epoch)
	}
	return nil
}

// checkLostReported checks that leader, the first after a restart of every
// server, reports at least highest revisions lost.
func (e *runEnv) checkLostReported(leader string, highest uint64) {
	st, err := e.status(leader, 2*time.Second)
	if err != nil {
		e.violate(Violation{Check: CheckAvailability, Node: leader, Detail: "the new leader does not answer status: " + err.Error()})
		return
	}
	e.res.fact("new leader's status", "%s: lost_revisions=%d record_revision=%d (highest acknowledged before: %d)", leader, st.LostRevisions, st.RecordRevision, highest)
	if st.LostRevisions < highest {
		e.violate(Violation{Check: CheckExpectedLoss, Node: leader,
			Detail: fmt.Sprintf("the new leader reports lost_revisions=%d (record %d), below the highest revision acknowledged before the restart, %d", st.LostRevisions, st.RecordRevision, highest)})
	}
}

// waitCurrent waits until every server is ready and current (not stale,
// not behind the record), and reports those that are not as a failed
// catch-up.
func (e *runEnv) waitCurrent(ctx context.Context, within time.Duration) {
	for _, id := range nodeIDs {
		var st bus.Status
		wctx, cancel := context.WithTimeout(ctx, within)
		err := waitStatus(wctx, e, id, func(s bus.Status) error {
			if s.Stale || !s.Ready || s.BehindRecord > 0 {
				return fmt.Errorf("stale=%v ready=%v behind_record=%d (%s)", s.Stale, s.Ready, s.BehindRecord, s.NotReady)
			}
			return nil
		}, &st)
		cancel()
		if err != nil {
			e.violate(Violation{Check: CheckCatchUp, Node: id, Detail: "not current after the forced leader took over: " + err.Error()})
		}
	}
}
