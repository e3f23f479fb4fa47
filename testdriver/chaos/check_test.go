package chaos

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zkvstore/zkv/bus"
)

// ms is a time offset in milliseconds, to keep the tables short.
func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func put(client int, key, value string, inv, ret int, out Outcome) Op {
	return Op{Client: client, Kind: OpPut, Key: key, Value: value, Invoke: ms(inv), Return: ms(ret), Outcome: out, Epoch: 1, Leader: "n1"}
}

func get(client int, key, value string, inv, ret int) Op {
	return Op{Client: client, Kind: OpGet, Key: key, Value: value, Found: value != "", Invoke: ms(inv), Return: ms(ret), Outcome: OK, Node: "n1"}
}

func local(node, key, value string, inv, ret int) Op {
	return Op{Client: 9, Kind: OpLocalGet, Key: key, Value: value, Found: value != "", Invoke: ms(inv), Return: ms(ret), Outcome: OK, Node: node}
}

// numbered gives ops their IDs as a History would.
func numbered(ops ...Op) []Op {
	h := NewHistory(time.Now())
	for _, op := range ops {
		h.Add(op)
	}
	return h.Ops()
}

func TestCheckLinearizable(t *testing.T) {
	tests := []struct {
		name string
		ops  []Op
		want string
	}{
		{"empty", nil, VerdictOK},
		{"sequential put then get", []Op{
			put(0, "k", "a", 0, 10, OK),
			get(1, "k", "a", 20, 30),
		}, VerdictOK},
		{"read of a missing key before any write", []Op{
			get(1, "k", "", 0, 5),
			put(0, "k", "a", 10, 20, OK),
		}, VerdictOK},
		{"concurrent put may come before or after a read", []Op{
			put(0, "k", "a", 0, 100, OK),
			get(1, "k", "", 10, 20),
			get(2, "k", "a", 30, 40),
		}, VerdictOK},
		{"read of a value never written", []Op{
			put(0, "k", "a", 0, 10, OK),
			get(1, "k", "zz", 20, 30),
		}, VerdictIllegal},
		{"stale read after an acknowledged later write", []Op{
			put(0, "k", "a", 0, 10, OK),
			put(0, "k", "b", 20, 30, OK),
			get(1, "k", "a", 40, 50),
		}, VerdictIllegal},
		{"acknowledged write missing", []Op{
			put(0, "k", "a", 0, 10, OK),
			get(1, "k", "", 20, 30),
		}, VerdictIllegal},
		{"reads go back in time", []Op{
			put(0, "k", "a", 0, 10, OK),
			put(0, "k", "b", 20, 100, OK),
			get(1, "k", "b", 30, 40),
			get(2, "k", "a", 50, 60),
		}, VerdictIllegal},
		{"ambiguous write seen", []Op{
			put(0, "k", "a", 0, 10, OK),
			put(0, "k", "b", 20, 30, Ambiguous),
			get(1, "k", "b", 40, 50),
		}, VerdictOK},
		{"ambiguous write never applied", []Op{
			put(0, "k", "a", 0, 10, OK),
			put(0, "k", "b", 20, 30, Ambiguous),
			get(1, "k", "a", 40, 50),
		}, VerdictOK},
		{"ambiguous write applied late, after its client gave up", []Op{
			put(0, "k", "a", 0, 10, OK),
			put(0, "k", "b", 20, 30, Ambiguous),
			get(1, "k", "a", 40, 50),
			get(1, "k", "b", 60, 70),
		}, VerdictOK},
		{"ambiguous write seen, then gone", []Op{
			put(0, "k", "a", 0, 10, OK),
			put(0, "k", "b", 20, 30, Ambiguous),
			get(1, "k", "b", 40, 50),
			get(1, "k", "a", 60, 70),
		}, VerdictIllegal},
		{"failed write is left out", []Op{
			put(0, "k", "a", 0, 10, OK),
			put(0, "k", "b", 20, 30, Failed),
			get(1, "k", "a", 40, 50),
		}, VerdictOK},
		{"local reads are not part of it", []Op{
			put(0, "k", "a", 0, 10, OK),
			put(0, "k", "b", 20, 30, OK),
			local("n2", "k", "a", 40, 50),
		}, VerdictOK},
		{"keys are independent", []Op{
			put(0, "k", "a", 0, 10, OK),
			put(1, "j", "x", 0, 10, OK),
			get(2, "k", "a", 20, 30),
			get(2, "j", "x", 20, 30),
		}, VerdictOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := CheckLinearizable(numbered(tt.ops...), 10*time.Second)
			if res.Verdict != tt.want {
				t.Fatalf("verdict %s, want %s (bad keys %v)", res.Verdict, tt.want, res.BadKeys)
			}
			if tt.want == VerdictIllegal {
				if len(res.Violations()) == 0 {
					t.Fatal("illegal without violations")
				}
				dir := t.TempDir()
				if err := res.WriteVisualizations(dir); err != nil {
					t.Fatal(err)
				}
				if _, err := os.Stat(filepath.Join(dir, "lin-k.html")); err != nil {
					t.Fatalf("no visualization: %v", err)
				}
			}
		})
	}
}

func TestCheckReadValues(t *testing.T) {
	tests := []struct {
		name string
		ops  []Op
		want []string
	}{
		{"values that were written", []Op{put(0, "k", "a", 0, 10, OK), get(1, "k", "a", 20, 30), local("n2", "k", "a", 20, 30)}, nil},
		{"ambiguous value", []Op{put(0, "k", "a", 0, 10, Ambiguous), local("n2", "k", "a", 20, 30)}, nil},
		{"never written", []Op{put(0, "k", "a", 0, 10, OK), local("n2", "k", "zz", 20, 30)}, []string{CheckUnknownValue}},
		{"written under another key", []Op{put(0, "j", "a", 0, 10, OK), get(1, "k", "a", 20, 30)}, []string{CheckUnknownValue}},
		{"failed write seen", []Op{put(0, "k", "a", 0, 10, Failed), local("n2", "k", "a", 20, 30)}, []string{CheckFailedSeen}},
		{"read before the write was sent", []Op{put(0, "k", "a", 50, 60, OK), get(1, "k", "a", 20, 30)}, []string{CheckReadEarly}},
		{"absent is fine", []Op{put(0, "k", "a", 0, 10, OK), local("n2", "k", "", 20, 30)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertChecks(t, CheckReadValues(numbered(tt.ops...)), tt.want)
		})
	}
}

func TestCheckFresh(t *testing.T) {
	tests := []struct {
		name    string
		ops     []Op
		checked int
		want    []string
	}{
		{"last acknowledged value", []Op{put(0, "k", "a", 0, 10, OK), put(0, "k", "b", 20, 30, OK), local("n2", "k", "b", 40, 50)}, 1, nil},
		{"a later ambiguous value", []Op{put(0, "k", "a", 0, 10, OK), put(0, "k", "b", 20, 30, Ambiguous), local("n2", "k", "b", 40, 50)}, 1, nil},
		{"an earlier ambiguous value", []Op{put(0, "k", "b", 0, 5, Ambiguous), put(0, "k", "a", 10, 20, OK), local("n2", "k", "b", 40, 50)}, 1, nil},
		{"concurrent acknowledged writes, either wins", []Op{put(0, "k", "a", 0, 30, OK), put(1, "k", "b", 10, 20, OK), local("n2", "k", "a", 40, 50), local("n3", "k", "b", 40, 50)}, 2, nil},
		{"missing", []Op{put(0, "k", "a", 0, 10, OK), local("n2", "k", "", 40, 50)}, 1, []string{CheckLostAck}},
		{"stale", []Op{put(0, "k", "a", 0, 10, OK), put(0, "k", "b", 20, 30, OK), get(1, "k", "a", 40, 50)}, 1, []string{CheckLostAck}},
		{"read concurrent with the write", []Op{put(0, "k", "a", 0, 10, OK), put(0, "k", "b", 20, 45, OK), local("n2", "k", "a", 40, 50)}, 1, nil},
		{"nothing acknowledged", []Op{put(0, "k", "a", 0, 10, Ambiguous), local("n2", "k", "", 40, 50)}, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops := numbered(tt.ops...)
			var reads []Op
			for _, op := range ops {
				if op.Kind != OpPut {
					reads = append(reads, op)
				}
			}
			n, v := CheckFresh(ops, reads)
			if n != tt.checked {
				t.Errorf("checked %d reads, want %d", n, tt.checked)
			}
			assertChecks(t, v, tt.want)
		})
	}
}

func TestCheckDeposedAcks(t *testing.T) {
	old := func(inv, ret int) Op {
		op := put(0, "k", "v", inv, ret, OK)
		op.Leader, op.Epoch = "n1", 3
		return op
	}
	newer := put(0, "k", "w", 500, 510, OK)
	newer.Leader, newer.Epoch = "n2", 5
	tests := []struct {
		name string
		ops  []Op
		want []string
	}{
		{"acknowledged before the pause", []Op{old(0, 90)}, nil},
		{"sent before, answered while paused", []Op{old(90, 150)}, nil},
		{"sent after the pause began", []Op{old(110, 150)}, []string{CheckDeposedAck}},
		{"answered after the resume", []Op{old(90, 1100)}, []string{CheckDeposedAck}},
		{"the new leader", []Op{newer}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertChecks(t, CheckDeposedAcks(numbered(tt.ops...), "n1", 3, ms(100), ms(1000)), tt.want)
		})
	}
}

func TestCheckEpochs(t *testing.T) {
	wire := func(at int, epoch uint64, leader, key, value string) WireUpdate {
		return WireUpdate{At: ms(at), Update: bus.Update{Kind: bus.KindPut, Epoch: epoch, Leader: leader, Key: key, Value: value, Seq: 1}}
	}
	marker := func(at int, epoch uint64, leader string) WireUpdate {
		return WireUpdate{At: ms(at), Update: bus.Update{Kind: bus.KindEpoch, Epoch: epoch, Leader: leader}}
	}
	base := []WireUpdate{wire(5, 1, "n1", "k", "a"), marker(50, 2, "n2"), wire(60, 2, "n2", "k", "b")}
	tests := []struct {
		name   string
		ops    []Op
		wire   []WireUpdate
		fenced int
		want   []string
	}{
		{"epochs only grow", []Op{local("n3", "k", "a", 10, 20), local("n3", "k", "b", 70, 80)}, base, 0, nil},
		{"back to an older epoch", []Op{local("n3", "k", "b", 70, 80), local("n3", "k", "a", 90, 100)}, base, 0, []string{CheckStaleEpoch}},
		{"overlapping reads are not ordered", []Op{local("n3", "k", "b", 70, 95), local("n3", "k", "a", 90, 100)}, base, 0, nil},
		{"different nodes are not ordered", []Op{local("n3", "k", "b", 70, 80), local("n2", "k", "a", 90, 100)}, base, 0, nil},
		{"fenced update dropped", []Op{local("n3", "k", "b", 200, 210)}, append(base, wire(100, 1, "n1", "k", "c")), 1, nil},
		{"fenced update applied", []Op{local("n3", "k", "c", 200, 210)}, append(base, wire(100, 1, "n1", "k", "c")), 1, []string{CheckStaleEpoch}},
		{"fenced update on its sender", []Op{local("n1", "k", "c", 200, 210)}, append(base, wire(100, 1, "n1", "k", "c")), 1, nil},
		{"a value applied again under a newer epoch, read before", []Op{local("n3", "k", "a", 10, 20), local("n3", "k", "b", 70, 80), local("n3", "k", "a", 300, 310)},
			append(base, marker(250, 3, "n2"), wire(260, 3, "n2", "k", "a")), 0, nil},
		{"a value applied again under a newer epoch, read after", []Op{local("n3", "k", "a", 270, 280), local("n3", "k", "b", 300, 310)},
			append(base, marker(250, 3, "n2"), wire(260, 3, "n2", "k", "a")), 0, []string{CheckStaleEpoch}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, v := CheckEpochs(numbered(tt.ops...), tt.wire)
			if st.FencedOnWire != tt.fenced {
				t.Errorf("fenced on wire %d, want %d", st.FencedOnWire, tt.fenced)
			}
			assertChecks(t, v, tt.want)
		})
	}
}

func TestCount(t *testing.T) {
	c := Count(numbered(put(0, "k", "a", 0, 1, OK), put(0, "k", "b", 0, 1, Ambiguous), put(0, "k", "c", 0, 1, Failed),
		get(1, "k", "a", 0, 1), local("n1", "k", "a", 0, 1), Op{Kind: OpGet, Outcome: Failed}))
	want := OpCounts{Total: 6, Puts: 3, PutsOK: 1, PutsAmbiguous: 1, PutsFailed: 1, LeaderReads: 2, LeaderReadsOK: 1, LocalReads: 1, LocalReadsOK: 1, ReadsFailed: 1}
	if c != want {
		t.Fatalf("%+v, want %+v", c, want)
	}
}

func assertChecks(t *testing.T, got []Violation, want []string) {
	t.Helper()
	var names []string
	for _, v := range got {
		names = append(names, v.Check)
		if v.Detail == "" {
			t.Errorf("violation without detail: %+v", v)
		}
	}
	if strings.Join(names, ",") != strings.Join(want, ",") {
		t.Fatalf("violations %v, want %v:\n%v", names, want, got)
	}
}

// at sets the revision of a write's reply (or a refusal's) or of a read.
func at(op Op, rev uint64) Op {
	op.Revision = rev
	return op
}

// cond makes a put or delete conditional on rev.
func cond(op Op, rev uint64) Op {
	op.IfRevision = &rev
	return op
}

func create(client int, key, value string, inv, ret int, out Outcome) Op {
	op := put(client, key, value, inv, ret, out)
	op.Kind = OpCreate
	return op
}

// del is a delete; deleted says it removed the key (when acknowledged).
func del(client int, key string, inv, ret int, out Outcome, deleted bool) Op {
	op := put(client, key, "", inv, ret, out)
	op.Kind, op.Deleted = OpDelete, deleted
	return op
}

// refused marks a write failed with code (conflict or exists), carrying
// the key's revision rev.
func refused(op Op, code string, rev uint64) Op {
	op.Outcome, op.Code, op.Revision = Failed, code, rev
	return op
}

func TestModelDeleteCreateCAS(t *testing.T) {
	tests := []struct {
		name string
		ops  []Op
		want string
	}{
		{"compare-and-set at the revision read", []Op{
			at(put(0, "k", "a", 0, 10, OK), 5),
			at(get(1, "k", "a", 20, 30), 5),
			at(cond(put(1, "k", "b", 40, 50, OK), 5), 9),
			at(get(2, "k", "b", 60, 70), 9),
		}, VerdictOK},
		{"compare-and-set won against a stale revision", []Op{
			at(put(0, "k", "a", 0, 10, OK), 5),
			at(put(0, "k", "b", 20, 30, OK), 7),
			at(cond(put(1, "k", "c", 40, 50, OK), 5), 9),
		}, VerdictIllegal},
		{"two compare-and-sets win with the same revision", []Op{
			at(put(0, "k", "a", 0, 10, OK), 5),
			at(cond(put(1, "k", "b", 20, 100, OK), 5), 8),
			at(cond(put(2, "k", "c", 20, 100, OK), 5), 9),
		}, VerdictIllegal},
		{"concurrent compare-and-sets: one wins, one conflicts", []Op{
			at(put(0, "k", "a", 0, 10, OK), 5),
			at(cond(put(1, "k", "b", 20, 100, OK), 5), 8),
			refused(cond(put(2, "k", "c", 20, 100, OK), 5), codeConflict, 8),
			at(get(3, "k", "b", 110, 120), 8),
		}, VerdictOK},
		{"conflict reported while the key was at the revision asked", []Op{
			at(put(0, "k", "a", 0, 10, OK), 5),
			refused(cond(put(1, "k", "b", 20, 30, OK), 5), codeConflict, 5),
		}, VerdictIllegal},
		{"conflict carrying a revision the key never had", []Op{
			at(put(0, "k", "a", 0, 10, OK), 5),
			refused(cond(put(1, "k", "b", 20, 30, OK), 4), codeConflict, 6),
		}, VerdictIllegal},
		{"if_revision 0 on an absent key puts", []Op{
			at(cond(put(0, "k", "a", 0, 10, OK), 0), 3),
			at(get(1, "k", "a", 20, 30), 3),
		}, VerdictOK},
		{"if_revision 0 on a present key conflicts", []Op{
			at(put(0, "k", "a", 0, 10, OK), 3),
			refused(cond(put(1, "k", "b", 20, 30, OK), 0), codeConflict, 3),
		}, VerdictOK},
		{"if_revision 0 wins on a present key", []Op{
			at(put(0, "k", "a", 0, 10, OK), 3),
			at(cond(put(1, "k", "b", 20, 30, OK), 0), 4),
		}, VerdictIllegal},
		{"read of a deleted key finds it", []Op{
			at(put(0, "k", "a", 0, 10, OK), 3),
			at(del(1, "k", 20, 30, OK, true), 4),
			at(get(2, "k", "a", 40, 50), 3),
		}, VerdictIllegal},
		{"read of a deleted key finds nothing", []Op{
			at(put(0, "k", "a", 0, 10, OK), 3),
			at(del(1, "k", 20, 30, OK, true), 4),
			get(2, "k", "", 40, 50),
		}, VerdictOK},
		{"delete of an absent key changes nothing", []Op{
			at(del(1, "k", 0, 10, OK, false), 2),
			get(2, "k", "", 20, 30),
			at(cond(put(0, "k", "a", 40, 50, OK), 0), 3),
		}, VerdictOK},
		{"delete found nothing while the key was present", []Op{
			at(put(0, "k", "a", 0, 10, OK), 3),
			at(del(1, "k", 20, 30, OK, false), 3),
		}, VerdictIllegal},
		{"create of an absent key, then exists", []Op{
			at(create(0, "k", "a", 0, 10, OK), 3),
			refused(create(1, "k", "b", 20, 30, OK), codeExists, 3),
			at(get(2, "k", "a", 40, 50), 3),
		}, VerdictOK},
		{"two creates both win", []Op{
			at(create(0, "k", "a", 0, 100, OK), 3),
			at(create(1, "k", "b", 0, 100, OK), 4),
		}, VerdictIllegal},
		{"exists reported for an absent key", []Op{
			refused(create(1, "k", "b", 0, 10, OK), codeExists, 0),
		}, VerdictIllegal},
		{"create after a delete", []Op{
			at(put(0, "k", "a", 0, 10, OK), 3),
			at(del(0, "k", 20, 30, OK, true), 4),
			at(create(1, "k", "b", 40, 50, OK), 5),
			refused(cond(put(2, "k", "c", 60, 70, OK), 3), codeConflict, 5),
		}, VerdictOK},
		{"conditional delete at a stale revision", []Op{
			at(put(0, "k", "a", 0, 10, OK), 3),
			at(put(0, "k", "b", 20, 30, OK), 4),
			at(cond(del(1, "k", 40, 50, OK, true), 3), 5),
		}, VerdictIllegal},
		{"read at a revision other than the last write's", []Op{
			at(put(0, "k", "a", 0, 10, OK), 3),
			at(get(1, "k", "a", 20, 30), 4),
		}, VerdictIllegal},
		{"ambiguous put: its revision is learnt from a read", []Op{
			at(put(0, "k", "a", 0, 10, OK), 3),
			put(1, "k", "b", 20, 30, Ambiguous),
			at(get(2, "k", "b", 40, 50), 6),
			at(cond(put(2, "k", "c", 60, 70, OK), 6), 7),
		}, VerdictOK},
		{"ambiguous put, then a compare-and-set at the revision before it", []Op{
			at(put(0, "k", "a", 0, 10, OK), 3),
			put(1, "k", "b", 20, 30, Ambiguous),
			at(get(2, "k", "b", 40, 50), 6),
			at(cond(put(2, "k", "c", 60, 70, OK), 3), 7),
		}, VerdictIllegal},
		{"ambiguous delete may have applied", []Op{
			at(put(0, "k", "a", 0, 10, OK), 3),
			del(1, "k", 20, 30, Ambiguous, false),
			get(2, "k", "", 40, 50),
		}, VerdictOK},
		{"ambiguous compare-and-set whose condition failed never applies", []Op{
			at(put(0, "k", "a", 0, 10, OK), 3),
			at(put(0, "k", "b", 20, 30, OK), 4),
			cond(put(1, "k", "c", 40, 50, Ambiguous), 3),
			at(get(2, "k", "c", 60, 70), 5),
		}, VerdictIllegal},
		{"refused write is not applied", []Op{
			at(put(0, "k", "a", 0, 10, OK), 3),
			refused(create(1, "k", "b", 20, 30, OK), codeExists, 3),
			at(get(2, "k", "b", 40, 50), 3),
		}, VerdictIllegal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := CheckLinearizable(numbered(tt.ops...), 10*time.Second)
			if res.Verdict != tt.want {
				t.Fatalf("verdict %s, want %s (bad keys %v)", res.Verdict, tt.want, res.BadKeys)
			}
		})
	}
}

func TestCheckFreshDeletes(t *testing.T) {
	tests := []struct {
		name string
		ops  []Op
		bad  int
	}{
		{"absent after an acknowledged delete", []Op{
			put(0, "k", "a", 0, 10, OK),
			del(1, "k", 20, 30, OK, true),
			local("n2", "k", "", 40, 50),
		}, 0},
		{"absent after an ambiguous delete", []Op{
			put(0, "k", "a", 0, 10, OK),
			del(1, "k", 20, 30, Ambiguous, false),
			local("n2", "k", "", 40, 50),
		}, 0},
		{"absent with no delete: lost", []Op{
			put(0, "k", "a", 0, 10, OK),
			refused(cond(del(1, "k", 20, 30, OK, false), 7), codeConflict, 3),
			local("n2", "k", "", 40, 50),
		}, 1},
		{"absent though the delete came before the last put", []Op{
			del(1, "k", 0, 10, OK, true),
			put(0, "k", "a", 20, 30, OK),
			local("n2", "k", "", 40, 50),
		}, 1},
		{"a value found after an acknowledged delete", []Op{
			put(0, "k", "a", 0, 10, OK),
			del(1, "k", 20, 30, OK, true),
			local("n2", "k", "a", 40, 50),
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops := numbered(tt.ops...)
			_, v := CheckFresh(ops, ops)
			if len(v) != tt.bad {
				t.Fatalf("%d violations, want %d: %v", len(v), tt.bad, v)
			}
		})
	}
}

func TestCheckReadYourWritesDeletes(t *testing.T) {
	w := at(put(0, "k", "a", 0, 10, OK), 3)
	r := local("n2", "k", "", 40, 50)
	r.MinRevision = 3
	if _, v := CheckReadYourWrites(numbered(w, r)); len(v) != 1 {
		t.Fatalf("absent own write without a delete: %v", v)
	}
	if _, v := CheckReadYourWrites(numbered(w, del(1, "k", 20, 30, OK, true), r)); len(v) != 0 {
		t.Fatalf("absent own write after a delete: %v", v)
	}
}

// atRev is an acknowledged write at revision rev.
func atRev(op Op, rev uint64) Op {
	op.Revision = rev
	if op.Kind == OpDelete {
		op.Deleted = true
	}
	return op
}

func wdel(client int, key string, inv, ret int) Op {
	return Op{Client: client, Kind: OpDelete, Key: key, Invoke: ms(inv), Return: ms(ret), Outcome: OK, Epoch: 1, Leader: "n1"}
}

func upPut(seq uint64, key, value string) bus.Update {
	return bus.Update{Kind: bus.KindPut, Epoch: 1, Seq: seq, Key: key, Value: value, Leader: "n1"}
}

func upDel(seq uint64, key string) bus.Update {
	return bus.Update{Kind: bus.KindDelete, Epoch: 1, Seq: seq, Key: key, Leader: "n1"}
}

func TestCheckWatch(t *testing.T) {
	ops := numbered(
		atRev(put(0, "a", "1", 0, 10, OK), 5),
		atRev(put(1, "b", "2", 0, 10, OK), 6),
		atRev(wdel(0, "a", 20, 30), 7),
		atRev(put(0, "a", "3", 40, 50, OK), 9), // 8: an expiry, no client's write
		put(1, "b", "4", 40, 50, Ambiguous),
		put(1, "b", "5", 40, 50, Failed),
	)
	expiry := bus.Update{Kind: bus.KindDelete, Epoch: 1, Seq: 8, Key: "ttl-x", Expired: true, Leader: "n1"}
	clean := []bus.Update{upPut(5, "a", "1"), upPut(6, "b", "2"), upDel(7, "a"), expiry, upPut(9, "a", "3")}
	tests := []struct {
		name     string
		from     uint64
		through  uint64
		ups      []bus.Update
		want     []string
		wantKeys []string
	}{
		{"clean stream", 5, 9, clean, nil, nil},
		{"clean stream with an ambiguous write's update after", 5, 9, append(slices.Clone(clean), upPut(10, "b", "4")), nil, nil},
		{"started late: earlier writes are not asked for", 7, 9, clean[2:], nil, nil},
		{"stalled: revisions past through are not asked for", 5, 7, clean[:3], nil, nil},
		{"a gap", 5, 9, []bus.Update{upPut(5, "a", "1"), upDel(7, "a"), expiry, upPut(9, "a", "3")}, []string{CheckWatchGap}, []string{"b"}},
		{"a duplicate", 5, 9, []bus.Update{upPut(5, "a", "1"), upPut(6, "b", "2"), upPut(6, "b", "2"), upDel(7, "a"), expiry, upPut(9, "a", "3")},
			[]string{CheckWatchOrder}, []string{"b"}},
		{"a reordering", 5, 9, []bus.Update{upPut(5, "a", "1"), upDel(7, "a"), upPut(6, "b", "2"), expiry, upPut(9, "a", "3")},
			[]string{CheckWatchOrder}, []string{"b"}},
		{"an update before the start", 6, 9, clean, []string{CheckWatchOrder}, []string{"a"}},
		{"another value at an acknowledged revision", 5, 9, []bus.Update{upPut(5, "a", "1"), upPut(6, "b", "4"), upDel(7, "a"), expiry, upPut(9, "a", "3")},
			[]string{CheckWatchMismatch}, []string{"b"}},
		{"a put where a delete was acknowledged", 5, 9, []bus.Update{upPut(5, "a", "1"), upPut(6, "b", "2"), upPut(7, "a", "1"), expiry, upPut(9, "a", "3")},
			[]string{CheckWatchMismatch}, []string{"a"}},
		{"a value nobody wrote", 5, 9, append(slices.Clone(clean), upPut(10, "b", "forged-1")), []string{CheckWatchMismatch}, []string{"b"}},
		{"a failed write's value", 5, 9, append(slices.Clone(clean), upPut(10, "b", "5")), nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := CheckWatch(ops, tt.from, tt.through, tt.ups)
			var got, keys []string
			for _, x := range v {
				got, keys = append(got, x.Check), append(keys, x.Key)
			}
			if !slices.Equal(got, tt.want) || !slices.Equal(keys, tt.wantKeys) {
				t.Fatalf("got %v on keys %v, want %v on %v: %v", got, keys, tt.want, tt.wantKeys, v)
			}
		})
	}
}

func TestCheckExpired(t *testing.T) {
	ttlPut := func(key, value string, ttl, inv, ret int, out Outcome) Op {
		op := put(0, key, value, inv, ret, out)
		op.TTL = ms(ttl)
		return op
	}
	margin := ms(1000)
	tests := []struct {
		name    string
		ops     []Op
		checked int
		want    int
	}{
		{"expired key gone everywhere", []Op{
			atRev(ttlPut("t", "a", 500, 0, 10, OK), 3),
			local("n1", "t", "", 2000, 2010),
			local("n2", "t", "", 2000, 2010),
			get(9, "t", "", 2000, 2010),
		}, 1, 0},
		{"expired key still present on one server", []Op{
			atRev(ttlPut("t", "a", 500, 0, 10, OK), 3),
			local("n1", "t", "", 2000, 2010),
			local("n2", "t", "a", 2000, 2010),
		}, 1, 1},
		{"expired key still present on the leader", []Op{
			atRev(ttlPut("t", "a", 500, 0, 10, OK), 3),
			get(9, "t", "a", 2000, 2010),
		}, 1, 1},
		{"within the margin a key may still be there", []Op{
			atRev(ttlPut("t", "a", 500, 0, 10, OK), 3),
			local("n2", "t", "a", 1200, 1210),
		}, 0, 0},
		{"rewritten without a time to live", []Op{
			atRev(ttlPut("t", "a", 500, 0, 10, OK), 3),
			atRev(put(1, "t", "b", 20, 30, OK), 4),
			local("n2", "t", "b", 2000, 2010),
		}, 0, 0},
		{"an ambiguous write may have rewritten it", []Op{
			atRev(ttlPut("t", "a", 500, 0, 10, OK), 3),
			put(1, "t", "b", 20, 30, Ambiguous),
			local("n2", "t", "b", 2000, 2010),
		}, 0, 0},
		{"the last of two writes with a time to live counts", []Op{
			atRev(ttlPut("t", "a", 500, 0, 10, OK), 3),
			atRev(ttlPut("t", "b", 5000, 20, 30, OK), 4),
			local("n2", "t", "b", 2000, 2010),
		}, 0, 0},
		{"a key without a time to live is not checked", []Op{
			atRev(put(0, "k", "a", 0, 10, OK), 3),
			local("n2", "k", "a", 9000, 9010),
		}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ops := numbered(tt.ops...)
			n, v := CheckExpired(ops, ops, margin)
			if n != tt.checked || len(v) != tt.want {
				t.Fatalf("checked %d keys with %d violations, want %d and %d: %v", n, len(v), tt.checked, tt.want, v)
			}
			for _, x := range v {
				if x.Check != CheckTTLExpiry {
					t.Fatalf("check %s, want %s", x.Check, CheckTTLExpiry)
				}
			}
		})
	}
}

func TestWithoutTTLKeys(t *testing.T) {
	ops := numbered(put(0, "k", "a", 0, 10, OK), put(0, ttlKeyPrefix+"c0-1", "c0-1", 0, 10, OK))
	if got := withoutTTLKeys(ops); len(got) != 1 || got[0].Key != "k" {
		t.Fatalf("got %v", got)
	}
}

func TestCheckWatchExpiries(t *testing.T) {
	ttlPut := func(key, value string, rev uint64) Op {
		op := atRev(put(0, key, value, 0, 10, OK), rev)
		op.TTL = ms(500)
		return op
	}
	expiry := func(seq uint64, key string) bus.Update {
		return bus.Update{Kind: bus.KindDelete, Epoch: 1, Seq: seq, Key: key, Expired: true, Leader: "n1"}
	}
	ops := numbered(ttlPut("t", "a", 5), atRev(put(1, "k", "b", 0, 10, OK), 6))
	margin := ms(1000)
	tests := []struct {
		name    string
		from    uint64
		ups     []bus.Update
		stopped time.Duration
		want    int
	}{
		{"expiry delivered", 5, []bus.Update{upPut(5, "t", "a"), upPut(6, "k", "b"), expiry(7, "t")}, ms(3000), 0},
		{"expiry missing", 5, []bus.Update{upPut(5, "t", "a"), upPut(6, "k", "b")}, ms(3000), 1},
		{"a plain delete is not an expiry", 5, []bus.Update{upPut(5, "t", "a"), upPut(6, "k", "b"), upDel(7, "t")}, ms(3000), 1},
		{"stopped within the margin", 5, []bus.Update{upPut(5, "t", "a"), upPut(6, "k", "b")}, ms(1200), 0},
		{"written before the start", 6, []bus.Update{upPut(6, "k", "b")}, ms(3000), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := CheckWatchExpiries(ops, tt.from, tt.ups, tt.stopped, margin)
			if len(v) != tt.want {
				t.Fatalf("%d violations, want %d: %v", len(v), tt.want, v)
			}
			for _, x := range v {
				if x.Check != CheckWatchGap || x.Key != "t" {
					t.Fatalf("got %s on %q, want %s on t", x.Check, x.Key, CheckWatchGap)
				}
			}
		})
	}
}
