package chaos

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/testdriver/cluster"
)

// The steps of the cases that kill every server: empty-survivor (only one
// comes back, empty, before the others' sessions expire) and full-restart
// (all come back, empty).

func killAllAfterWrites(ctx context.Context, f *fault) error {
	handover := f.res.Variant != "catch-up-first-epoch"
	writeKeys := func(prefix string, n int) error {
		for i := range n {
			op := f.own.put(fmt.Sprintf("%s%02d", prefix, i), f.own.nextValue(), "")
			if op.Outcome != OK {
				return fmt.Errorf("setup write %s: %s %s", op.Key, op.Code, op.Err)
			}
			f.written = append(f.written, op)
		}
		return nil
	}
	if err := writeKeys("a", 10); err != nil {
		return err
	}
	if handover {
		// A clean handover first, so the leader znode records a non-zero
		// takeover revision: what lets a restarted server know it is behind.
		leader, epoch := f.leader, f.epoch
		if err := f.cl.Process(leader).Stop(ctx); err != nil {
			return fmt.Errorf("SIGTERM %s: %w", leader, err)
		}
		ag, _, err := f.waitLeader(ctx, others(leader), cluster.LeaderWant{Not: leader, Above: epoch}, 30*time.Second)
		if err != nil {
			return err
		}
		f.note("SIGTERM %s: %s took over epoch %d", leader, ag.Leader, ag.Epoch)
		if err := f.cl.Process(leader).Restart(ctx); err != nil {
			return err
		}
		if _, _, err := f.waitLeader(ctx, nodeIDs, cluster.LeaderWant{Above: ag.Epoch - 1}, 30*time.Second); err != nil {
			return err
		}
		if err := f.waitMembers(ctx, 3, 30*time.Second); err != nil {
			return err
		}
		f.leader, f.epoch = ag.Leader, ag.Epoch
		if err := writeKeys("b", 10); err != nil {
			return err
		}
	}
	// Everything down at once; then the lone server comes back, empty,
	// while the others' sessions have not expired yet.
	f.victim = others(f.leader)[1]
	f.at = f.now()
	f.killAll()
	return nil
}

func restartLone(ctx context.Context, f *fault) error {
	if err := f.cl.Process(f.victim).Restart(ctx); err != nil {
		return err
	}
	f.healed = f.now()
	f.res.time(TimeRestartGap, f.healed-f.at)
	f.note("SIGKILL all three (leader %s, epoch %d); restarted %s alone, empty, %s later", f.leader, f.epoch, f.victim, fmtDur(f.healed-f.at))
	return nil
}

func expectEmptySurvivor(ctx context.Context, f *fault) error {
	r, lone, tKill, written := f.res, f.victim, f.at, f.written
	catchUp, handover := f.opts.catchUp, r.Variant != "catch-up-first-epoch"
	var first bus.Status
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	_ = harness.WaitFor(wctx, 20*time.Millisecond, func() error {
		st, err := f.status(lone, time.Second)
		if err == nil && st.Epoch == 0 {
			err = errors.New("no epoch learned yet")
		}
		first = st
		return err
	})
	cancel()
	r.fact("lone server after restart", "role=%s epoch=%d stale=%v gaps=%d", first.Role, first.Epoch, first.Stale, first.Gaps)
	// Watch until well after the dead servers' sessions expired, probing
	// with writes.
	end := tKill + f.opts.session + f.s.cfg.Margin + 3*f.opts.session
	var acked []Op
	probes := 0
	for f.now() < end && ctx.Err() == nil {
		probes++
		op := f.own.putWithin(fmt.Sprintf("probe%03d", probes), f.own.nextValue(), "", 1500*time.Millisecond)
		if op.Outcome == OK {
			acked = append(acked, op)
		}
		_ = harness.Sleep(ctx, 200*time.Millisecond)
	}
	led, ledAt := false, time.Duration(0)
	for _, ev := range f.mon.leaders(tKill) {
		if ev.Node == lone {
			led, ledAt = true, ev.At
			break
		}
	}
	st, _ := f.status(lone, 2*time.Second)
	r.fact("lone server at the end", "role=%s epoch=%d stale=%v gaps=%d keys=%d", st.Role, st.Epoch, st.Stale, st.Gaps, st.Keys)
	r.fact("probe writes acknowledged", "%d of %d", len(acked), probes)
	if led {
		r.time(TimeLeadAlone, ledAt-tKill)
	}
	// What the old keys read now, from the lone server's own copy and as
	// leader reads.
	empty := 0
	for _, w := range written {
		loc := f.own.localGet(lone, w.Key)
		if loc.Outcome == OK && !loc.Found {
			empty++
		}
		if led {
			f.own.leaderGet(w.Key)
		}
	}
	r.fact("acknowledged keys reading empty", "%d of %d", empty, len(written))
	switch {
	case !catchUp:
		// The specification's behaviour: it leads with an empty store.
		r.ExpectedLost = empty
		if st.Role == bus.RoleLeader && st.Gaps > 0 && !st.Stale {
			f.note("LIMITATION: a leader never reports stale: the lone server leads with an empty copy and says stale=false although it counts %d missed update(s)", st.Gaps)
		}
		if !led || len(acked) == 0 {
			f.violate(Violation{Check: CheckExpectedLoss, Node: lone, Detail: fmt.Sprintf("without --catch-up the lone server should lead with its empty store (led=%v, probe writes acknowledged %d)", led, len(acked))})
		}
		if empty != len(written) {
			f.violate(Violation{Check: CheckExpectedLoss, Node: lone, Detail: fmt.Sprintf("%d of %d acknowledged keys read empty on the restarted server; all were expected to", empty, len(written))})
		}
	case handover:
		// --catch-up with a leader znode that shows the copy is behind: it
		// must not take writes.
		if !first.Stale && !st.Stale {
			f.violate(Violation{Check: CheckLeadStale, Node: lone, Detail: "the restarted server did not report stale although the leader znode showed a non-zero revision"})
		}
		if led || len(acked) > 0 {
			f.violate(Violation{Check: CheckLeadStale, Node: lone, Detail: fmt.Sprintf("with --catch-up the stale lone server led (%v) and acknowledged %d write(s)", led, len(acked))})
		}
		if empty != len(written) {
			f.note("%d of %d old keys read empty on the lone server", empty, len(written))
		}
	default:
		// --catch-up, first epoch: the leader znode's revision is 0, so the
		// restarted server cannot tell it is behind. Record what happens.
		r.ExpectedLost = empty
		if led {
			f.note("LIMITATION: with --catch-up, a server restarted after a first-epoch leader (takeover revision 0) died does not know it is behind: it led with an empty store and %d acknowledged key(s) read empty", empty)
		} else {
			f.note("with --catch-up and a first-epoch leader the lone server did not lead (stale=%v)", st.Stale)
		}
	}
	// Only the catch-up variant with a handover keeps the history
	// linearizable; the others lose acknowledged writes by design.
	f.checkLin(!(catchUp && handover))
	ops := f.hist.Ops()
	r.Counts = Count(ops)
	r.Unconfirmable = unconfirmable(ops)
	for _, v := range CheckReadValues(ops) {
		f.violate(v)
	}
	st2, ev := CheckEpochs(ops, f.wire.Updates())
	r.Epochs, r.StaleEpoch = st2, len(ev)
	for _, v := range ev {
		f.violate(v)
	}
	r.Notes = append(r.Notes, f.notes...)
	return nil
}

func killAll(_ context.Context, f *fault) error {
	f.at = f.now()
	f.killAll()
	f.down = f.now()
	f.highest, _, _, _ = CheckRevisionsForward(f.hist.Ops(), f.down)
	return nil
}

func restartAll(ctx context.Context, f *fault) error {
	s, r, catchUp := f.s, f.res, f.opts.catchUp
	var wg sync.WaitGroup
	errs := make([]error, len(nodeIDs))
	for i, id := range nodeIDs {
		wg.Go(func() { errs[i] = f.cl.Process(id).Restart(ctx) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	f.healed = f.now()
	r.time(TimeRestartGap, f.healed-f.at)
	f.note("SIGKILL all three (leader %s, epoch %d, highest acknowledged revision %d); all restarted, empty, %s later", f.leader, f.epoch, f.highest, fmtDur(f.healed-f.at))
	tLeadFrom := f.healed
	if catchUp {
		// Past the old sessions' expiry nobody may lead, and every server
		// must say it is behind; then the operator accepts the loss.
		if err := harness.Sleep(ctx, f.opts.session+s.cfg.Margin+s.warmup()); err != nil {
			return err
		}
		tForce := f.now()
		for _, v := range CheckBehindRecord(f.mon.Events(), f.healed, tForce) {
			f.violate(v)
		}
		for _, a := range f.acks() {
			if a.Return > f.down {
				f.violate(Violation{Check: CheckLedBehind, Key: a.Key, Node: a.Leader, Ops: []int{a.ID},
					Detail: fmt.Sprintf("op %d acknowledged at %s by %s before any server was started with --force-lead", a.ID, fmtDur(a.Return), a.Leader)})
			}
		}
		f.victim = nodeIDs[0]
		unclean, err := f.cl.Replace(ctx, f.victim, "--force-lead")
		if unclean != nil {
			f.note("%s exited uncleanly on SIGTERM: %v", f.victim, unclean)
		}
		if err != nil {
			return err
		}
		r.time(TimeForceLead, tForce-f.at)
		f.note("operator: restarted %s with --force-lead at %s", f.victim, fmtDur(tForce))
		tLeadFrom = tForce
	}
	ag, tLed, err := f.waitLeader(ctx, nodeIDs, cluster.LeaderWant{Above: f.epoch}, s.leaderTimeout(f.opts.session))
	if err != nil {
		f.violate(Violation{Check: CheckAvailability, Detail: "no leader after the restart: " + err.Error()})
	} else {
		f.newLeader, f.newEpoch = ag.Leader, ag.Epoch
		r.time(TimeNewLeader, tLed-tLeadFrom)
		f.note("%s leads epoch %d", f.newLeader, f.newEpoch)
		if catchUp && f.newLeader != f.victim {
			f.violate(Violation{Check: CheckLedBehind, Node: f.newLeader, Detail: fmt.Sprintf("%s leads, not the server started with --force-lead (%s)", f.newLeader, f.victim)})
		}
	}
	f.awaitAckAfter(ctx, tLeadFrom, 30*time.Second, fmtDur(tLeadFrom), true, "writes did not resume after the restart")
	if f.newLeader != "" {
		f.checkLostReported(f.newLeader, f.highest)
	}
	if catchUp {
		f.waitCurrent(ctx, 20*time.Second)
	}
	return nil
}

func expectFullRestart(ctx context.Context, f *fault) error {
	// Every write acknowledged before the kill is lost by design: the
	// checks count them, and the history cannot be linearizable.
	f.finish(ctx, finishOptions{survivors: nodeIDs, lin: true, lossAllowed: true})
	f.checkRevisionsForward()
	return nil
}

// checkRevisionsForward checks that every write acknowledged after the
// kill has a revision above every one acknowledged before, and reports
// whether any was acknowledged after it.
func (f *fault) checkRevisionsForward() bool {
	_, first, ok, back := CheckRevisionsForward(f.hist.Ops(), f.down)
	for _, v := range back {
		f.violate(v)
	}
	if ok {
		f.res.fact("revisions", "highest acknowledged before the kill %d; first acknowledged after it %d (op %d, epoch %d)",
			f.highest, first.Revision, first.ID, first.Epoch)
	}
	return ok
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
			e.violate(Violation{Check: CheckCatchUp, Node: id, Detail: "not current after the restart: " + err.Error()})
		}
	}
}
