package chaos

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/internal/harness"
)

// attackRate is how many forgeries a second the attacker of hostile-client
// sends, besides six forged acks of every put.
const attackRate = 300

// The steps of hostile-client: a NATS client without the cluster key
// floods the server subjects under acks=all load.

// replicaStop is how long the pause-replica variant stops a replica: it
// outlasts the write timeout, so acks=all writes must wait for it.
func (s *suite) replicaStop() time.Duration { return s.cfg.WriteTimeout + 1500*time.Millisecond }

// hostileSession is hostile-client's session timeout: the stopped replica
// must keep its ZooKeeper session, so that acks=all still waits for it;
// the session outlasts the stop by far.
func (s *suite) hostileSession() time.Duration { return max(s.longSession(), 2*s.replicaStop()) }

func attack(ctx context.Context, f *fault) error {
	f.before = f.statuses(nodeIDs)
	f.at = f.now()
	a, err := f.startAttack(ctx, attackRate)
	if err != nil {
		return err
	}
	f.attacker = a
	f.cleanups = append(f.cleanups, a.Stop)
	f.note("an attacker without the key floods the server subjects (%d forgeries/s and 6 forged acks of every put and delete) while %s leads epoch %d", attackRate, f.leader, f.epoch)
	if err := harness.Sleep(ctx, f.s.warmup()); err != nil {
		return err
	}
	if f.res.Variant != "pause-replica" {
		return nil
	}
	f.victim = others(f.leader)[0]
	if err := f.pause(f.victim); err != nil {
		return err
	}
	f.from = f.now()
	err = harness.Sleep(ctx, f.s.replicaStop())
	f.to = f.now()
	if rerr := f.resume(f.victim); rerr != nil {
		return rerr
	}
	if err != nil {
		return err
	}
	f.res.time(TimePause, f.to-f.from)
	f.note("SIGSTOP %s for %s during the attack; the attacker acks every put in its name", f.victim, fmtDur(f.to-f.from))
	return nil
}

func expectHostileClient(ctx context.Context, f *fault) error {
	r, a := f.res, f.attacker
	a.Stop()
	r.time(TimeAttack, f.now()-f.at)
	r.fact("attacker messages", "%d (%.0f/s)", a.Sent(), float64(a.Sent())/(f.now()-f.at).Seconds())
	answers, accepted := a.WriteAnswers()
	r.fact("answers to writes with a malformed condition", "%s", fmtCounts(answers))
	for _, body := range accepted {
		f.violate(Violation{Check: CheckForgedAccepted, Detail: "a write with a malformed condition was accepted: " + body})
	}
	f.finish(ctx, finishOptions{survivors: nodeIDs, lin: true})
	ops := f.hist.Ops()
	for _, v := range CheckAcksAllReplies(ops, len(nodeIDs), f.from, f.to) {
		f.violate(v)
	}
	if f.to > f.from {
		sent, acked := 0, 0
		for _, op := range ops {
			if op.isWriteKind() && op.Invoke > f.from && op.Invoke < f.to {
				sent++
				if op.Acked() && op.Return < f.to {
					acked++
				}
			}
		}
		r.fact("writes sent while the replica was stopped", "%d, %d of them acknowledged before SIGCONT", sent, acked)
	}
	for _, v := range CheckSteadyLeader(f.mon.Events(), f.at, f.leader, f.epoch) {
		f.violate(v)
	}
	f.checkRejected(ctx, f.before)
	r.fact("wire messages the watcher dropped (not signed by the cluster)", "%d", f.wire.Rejected())
	return nil
}

// fmtCounts prints counts by name, names sorted: "a=1 b=2" ("none" if
// empty).
func fmtCounts(m map[string]int) string {
	if len(m) == 0 {
		return "none"
	}
	parts := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
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
