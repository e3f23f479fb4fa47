package chaos

import (
	"testing"

	"github.com/zkvstore/zkv/bus"
)

// acked is an acknowledged acks=all put with its reply's counts.
func acked(key, value string, inv, ret int, rev uint64, confirmed, members int) Op {
	op := put(0, key, value, inv, ret, OK)
	op.Revision, op.Confirmed, op.Members = rev, confirmed, members
	return op
}

func checks(vs []Violation) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Check)
	}
	return out
}

func TestCheckReadValuesForged(t *testing.T) {
	ops := numbered(put(0, "k", "a", 0, 10, OK), local("n2", "k", ForgedPrefix+"7", 20, 30), local("n2", "k", "zz", 40, 50))
	got := checks(CheckReadValues(ops))
	if len(got) != 2 || got[0] != CheckForgedValue || got[1] != CheckUnknownValue {
		t.Fatalf("violations %v, want a forged value read and an unknown value", got)
	}
}

func TestCheckAcksAllReplies(t *testing.T) {
	tests := []struct {
		name     string
		op       Op
		from, to int
		bad      bool
	}{
		{"all three confirmed", acked("k", "a", 0, 10, 1, 3, 3), 0, 0, false},
		{"acks=leader reply has no counts", acked("k", "a", 0, 10, 1, 0, 0), 0, 0, false},
		{"fewer confirmations than members", acked("k", "a", 0, 10, 1, 2, 3), 0, 0, true},
		{"more confirmations than members", acked("k", "a", 0, 10, 1, 4, 3), 0, 0, true},
		{"more members than servers", acked("k", "a", 0, 10, 1, 4, 4), 0, 0, true},
		{"all three while one was stopped", acked("k", "a", 150, 300, 1, 3, 3), 100, 500, true},
		{"sent before the stop", acked("k", "a", 50, 300, 1, 3, 3), 100, 500, false},
		{"answered after the resume", acked("k", "a", 150, 600, 1, 3, 3), 100, 500, false},
		{"two of two after the stopped one left", acked("k", "a", 150, 300, 1, 2, 2), 100, 500, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vs := CheckAcksAllReplies(numbered(tt.op), 3, ms(tt.from), ms(tt.to))
			if (len(vs) > 0) != tt.bad {
				t.Fatalf("violations %v, want bad=%v", vs, tt.bad)
			}
		})
	}
}

func TestCheckRevisionsForward(t *testing.T) {
	before := []Op{acked("k", "a", 0, 10, 5, 3, 3), acked("k", "b", 20, 30, 9, 3, 3)}
	t.Run("forward", func(t *testing.T) {
		ops := numbered(append(before, acked("k", "c", 200, 210, 10, 3, 3))...)
		high, first, ok, vs := CheckRevisionsForward(ops, ms(100))
		if high != 9 || !ok || first.Revision != 10 || len(vs) != 0 {
			t.Fatalf("highest %d first %+v ok %v violations %v", high, first, ok, vs)
		}
	})
	t.Run("backwards", func(t *testing.T) {
		ops := numbered(append(before, acked("k", "c", 200, 210, 7, 3, 3), acked("k", "d", 220, 230, 9, 3, 3), acked("k", "e", 240, 250, 12, 3, 3))...)
		_, first, _, vs := CheckRevisionsForward(ops, ms(100))
		if first.Revision != 7 || len(vs) != 1 || vs[0].Check != CheckRevisionBack || vs[0].Ops[1] != 2 {
			t.Fatalf("first %+v violations %v, want one naming op 2", first, vs)
		}
	})
	t.Run("nothing after", func(t *testing.T) {
		if _, _, ok, vs := CheckRevisionsForward(numbered(before...), ms(100)); ok || len(vs) != 0 {
			t.Fatalf("ok %v violations %v", ok, vs)
		}
	})
}

func TestCheckSteadyLeader(t *testing.T) {
	st := func(role, leader string, epoch uint64) bus.Status {
		return bus.Status{Role: role, Leader: leader, Epoch: epoch}
	}
	evs := []statusEvent{
		{At: ms(0), Node: "n2", St: st(bus.RoleCandidate, "", 0)}, // before from: ignored
		{At: ms(100), Node: "n1", St: st(bus.RoleLeader, "n1", 1)},
		{At: ms(100), Node: "n2", St: st(bus.RoleFollower, "n1", 1)},
		{At: ms(150), Node: "n3", Err: "no answer"},
	}
	if vs := CheckSteadyLeader(evs, ms(50), "n1", 1); len(vs) != 0 {
		t.Fatalf("steady leader: %v", vs)
	}
	evs = append(evs, statusEvent{At: ms(200), Node: "n2", St: st(bus.RoleFollower, "ghost", 1<<40)})
	if vs := CheckSteadyLeader(evs, ms(50), "n1", 1); len(vs) != 1 || vs[0].Check != CheckLeaderChanged {
		t.Fatalf("epoch change: %v", vs)
	}
}

func TestCheckBehindRecord(t *testing.T) {
	behind := bus.Status{Role: bus.RoleCandidate, BehindRecord: 10, Stale: true}
	ready, current, leads := behind, behind, behind
	ready.Ready = true
	current.Stale = false
	leads.Role = bus.RoleLeader
	tests := []struct {
		name string
		st   bus.Status
		bad  bool
	}{
		{"behind, stale, not ready", behind, false},
		{"caught up", bus.Status{Role: bus.RoleFollower, Ready: true}, false},
		{"ready while behind", ready, true},
		{"stale=false while behind", current, true},
		{"leads", leads, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs := []statusEvent{{At: ms(100), Node: "n1", St: tt.st}, {At: ms(120), Node: "n1", St: tt.st}}
			vs := CheckBehindRecord(evs, ms(50), ms(500))
			if (len(vs) > 0) != tt.bad || len(vs) > 1 {
				t.Fatalf("violations %v, want bad=%v (one per server at most)", vs, tt.bad)
			}
		})
	}
}
