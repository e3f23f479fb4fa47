package chaos

import (
	"fmt"
	"time"

	"github.com/zkvstore/zkv/bus"
)

// ForgedPrefix starts every value the attacker of hostile-client sends, so
// a read of one is told apart from a value nobody wrote.
const ForgedPrefix = "forged-"

// CheckAcksAllReplies checks the acks=all replies in ops (the acknowledged
// puts whose reply gave Members): each counts as many confirmations as
// members, and no more members than the cluster has servers; and no write
// sent after from and acknowledged before to, while one server was stopped
// during [from, to], claims confirmations from all servers (only a forged
// ack could stand in for the stopped one). With to <= from there was no
// stop.
func CheckAcksAllReplies(ops []Op, servers int, from, to time.Duration) []Violation {
	var out []Violation
	for _, op := range ops {
		if !op.Acked() || op.Members == 0 || op.noOp() {
			continue
		}
		switch {
		case op.Members > servers || op.Confirmed > op.Members:
			out = append(out, Violation{Check: CheckForgedConfirm, Key: op.Key, Node: op.Leader, Ops: []int{op.ID},
				Detail: fmt.Sprintf("op %d acknowledged as confirmed by %d of %d members; the cluster has %d servers", op.ID, op.Confirmed, op.Members, servers)})
		case op.Confirmed != op.Members:
			out = append(out, Violation{Check: CheckForgedConfirm, Key: op.Key, Node: op.Leader, Ops: []int{op.ID},
				Detail: fmt.Sprintf("op %d acknowledged under acks=all with %d of %d members confirming", op.ID, op.Confirmed, op.Members)})
		case to > from && op.Invoke > from && op.Return < to && op.Confirmed >= servers:
			out = append(out, Violation{Check: CheckForgedConfirm, Key: op.Key, Node: op.Leader, Ops: []int{op.ID},
				Detail: fmt.Sprintf("op %d, sent at %s and acknowledged at %s while a server was stopped (%s to %s), claims %d of %d confirmations",
					op.ID, fmtDur(op.Invoke), fmtDur(op.Return), fmtDur(from), fmtDur(to), op.Confirmed, op.Members)})
		}
	}
	return out
}

// CheckRevisionsForward checks that every write (but a delete that found
// nothing, answered with the leader's revision) acknowledged after being
// sent past split has a revision above every revision acknowledged before
// split: revisions never go backwards, even across a restart of every
// server. It returns the highest revision acknowledged before split, the
// first acknowledgement (by return time) of a write sent after it (ok
// false if none), and one violation naming the first offender and how
// many there are.
func CheckRevisionsForward(ops []Op, split time.Duration) (uint64, Op, bool, []Violation) {
	var highest uint64
	var top Op
	for _, op := range ops {
		if op.Acked() && !op.noOp() && op.Return < split && op.Revision > highest {
			highest, top = op.Revision, op
		}
	}
	var first, bad Op
	found, n := false, 0
	for _, op := range ops {
		if !op.Acked() || op.noOp() || op.Invoke <= split {
			continue
		}
		if !found || op.Return < first.Return {
			first, found = op, true
		}
		if op.Revision <= highest {
			if n == 0 || op.Return < bad.Return {
				bad = op
			}
			n++
		}
	}
	if n == 0 {
		return highest, first, found, nil
	}
	return highest, first, found, []Violation{{Check: CheckRevisionBack, Key: bad.Key, Node: bad.Leader, Ops: []int{top.ID, bad.ID},
		Detail: fmt.Sprintf("%d write(s) acknowledged at or below revision %d, which op %d had been acknowledged at (epoch %d); the first: op %d at revision %d (epoch %d, %s)",
			n, highest, top.ID, top.Epoch, bad.ID, bad.Revision, bad.Epoch, bad.Leader)}}
}

// CheckSteadyLeader checks that every status answered at or after from
// names leader at epoch, and that no other server says it leads.
func CheckSteadyLeader(events []statusEvent, from time.Duration, leader string, epoch uint64) []Violation {
	var out []Violation
	for _, ev := range events {
		if ev.At < from || ev.Err != "" {
			continue
		}
		st := ev.St
		if st.Epoch != epoch || st.Leader != leader || (st.Role == bus.RoleLeader) != (ev.Node == leader) {
			out = append(out, Violation{Check: CheckLeaderChanged, Node: ev.Node,
				Detail: fmt.Sprintf("at %s %s was %s of epoch %d under leader %q; %s led epoch %d", fmtDur(ev.At), ev.Node, st.Role, st.Epoch, st.Leader, leader, epoch)})
		}
	}
	return out
}

// CheckBehindRecord checks the statuses answered during [from, until): a
// server whose copy holds less than the cluster record must not lead, and
// must not say it is current (stale=false) or ready.
func CheckBehindRecord(events []statusEvent, from, until time.Duration) []Violation {
	var out []Violation
	seen := map[string]bool{}
	for _, ev := range events {
		if ev.At < from || ev.At >= until || ev.Err != "" || seen[ev.Node] {
			continue
		}
		st := ev.St
		var bad string
		switch {
		case st.Role == bus.RoleLeader:
			bad = fmt.Sprintf("led epoch %d with %d revision(s), the record is at %d", st.Epoch, st.AppliedSeq, st.RecordRevision)
		case st.BehindRecord > 0 && st.Ready:
			bad = fmt.Sprintf("said ready while %d revision(s) behind the record", st.BehindRecord)
		case st.BehindRecord > 0 && !st.Stale:
			bad = fmt.Sprintf("said stale=false while %d revision(s) behind the record", st.BehindRecord)
		}
		if bad != "" {
			seen[ev.Node] = true // one violation per server is enough
			out = append(out, Violation{Check: CheckLedBehind, Node: ev.Node, Detail: fmt.Sprintf("at %s %s %s", fmtDur(ev.At), ev.Node, bad)})
		}
	}
	return out
}
