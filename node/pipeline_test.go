package node

import (
	"strings"
	"testing"

	"github.com/zkvstore/zkv/bus"
)

func out(u bus.Update) outgoing { return outgoing{update: u, encoded: bus.Encode(u)} }

func putAt(epoch, seq uint64) bus.Update {
	return bus.Update{Kind: bus.KindPut, Epoch: epoch, Seq: seq, Key: "k", Value: "v", Leader: "n1", Time: 1}
}

// messages splits q as publishQueue does and decodes each body.
func messages(t *testing.T, q []outgoing) (sizes []int, bodies [][]bus.Update) {
	t.Helper()
	for len(q) > 0 {
		n, body := nextMessage(q, bus.MaxBatchBytes)
		if n < 1 || n > len(q) {
			t.Fatalf("nextMessage covered %d of %d", n, len(q))
		}
		sizes = append(sizes, n)
		var ups []bus.Update
		if body != nil {
			var err error
			if ups, err = bus.DecodeReplication(body); err != nil {
				t.Fatalf("message %d does not decode: %v", len(sizes), err)
			}
		}
		bodies = append(bodies, ups)
		q = q[n:]
	}
	return sizes, bodies
}

func seqs(ups []bus.Update) []uint64 {
	var s []uint64
	for _, u := range ups {
		s = append(s, u.Seq)
	}
	return s
}

func TestNextMessageBatchesRuns(t *testing.T) {
	marker := bus.Update{Kind: bus.KindEpoch, Epoch: 2, Seq: 4, Leader: "n1"}
	hb := bus.Update{Kind: bus.KindHeartbeat, Epoch: 2, Seq: 6, Leader: "n1"}
	q := []outgoing{out(putAt(1, 3)), out(putAt(1, 4)), out(marker), out(putAt(2, 5)), {}, out(putAt(2, 6)),
		out(hb), out(putAt(2, 7)), out(putAt(2, 9)), out(putAt(3, 10))}
	sizes, bodies := messages(t, q)
	want := [][]uint64{{3, 4}, {4}, {5, 6}, {6}, {7}, {9}, {10}}
	if len(bodies) != len(want) {
		t.Fatalf("got %d messages %v, want %d", len(bodies), sizes, len(want))
	}
	for i := range want {
		if got := seqs(bodies[i]); len(got) != len(want[i]) || got[0] != want[i][0] || got[len(got)-1] != want[i][len(want[i])-1] {
			t.Errorf("message %d holds %v, want %v", i, got, want[i])
		}
	}
	if sizes[2] != 3 {
		t.Errorf("the barrier between 5 and 6 was not covered by their batch: sizes %v", sizes)
	}
}

func TestNextMessageBounds(t *testing.T) {
	var q []outgoing
	for i := range bus.MaxBatchUpdates + 10 {
		q = append(q, out(putAt(1, uint64(i+1))))
	}
	_, bodies := messages(t, q)
	if len(bodies) != 2 || len(bodies[0]) != bus.MaxBatchUpdates {
		t.Fatalf("got %d messages, the first of %d updates", len(bodies), len(bodies[0]))
	}
	big := strings.Repeat("x", 60000)
	q = nil
	for i := range 9 {
		u := putAt(1, uint64(i+1))
		u.Value = big
		q = append(q, out(u))
	}
	_, bodies = messages(t, q)
	total := 0
	for _, b := range bodies {
		if len(b)*len(big) > bus.MaxBatchBytes {
			t.Errorf("a batch of %d updates of %d bytes passes the byte bound", len(b), len(big))
		}
		total += len(b)
	}
	if total != 9 || len(bodies) < 3 {
		t.Fatalf("%d updates in %d messages, want 9 in at least 3", total, len(bodies))
	}
}

func TestNextMessageBarriersOnly(t *testing.T) {
	n, body := nextMessage([]outgoing{{}, {}, out(putAt(1, 1))}, bus.MaxBatchBytes)
	if n != 2 || body != nil {
		t.Fatalf("got %d entries and a body %q, want the 2 barriers alone", n, body)
	}
}

func TestAckRuns(t *testing.T) {
	var r ackRuns
	a := func(seq uint64, ack bool) bus.Update { u := putAt(1, seq); u.Ack = ack; return u }
	r.add(a(1, false))
	r.add(a(2, true))
	r.add(a(3, false))
	r.cut() // 4 not held
	r.add(a(5, false))
	r.cut() // 6 not held: the run of 5 asked for nothing
	r.add(a(7, true))
	r.add(a(9, true)) // not contiguous
	r.add(a(10, false))
	got := r.finish()
	want := []bus.Ack{{Epoch: 1, From: 1, Seq: 3}, {Epoch: 1, From: 7, Seq: 7}, {Epoch: 1, From: 9, Seq: 10}}
	if len(got) != len(want) {
		t.Fatalf("got runs %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("run %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	// A message whose last run asked for nothing sends nothing for it.
	var quiet ackRuns
	quiet.add(a(11, false))
	quiet.add(a(12, false))
	if got := quiet.finish(); len(got) != 0 {
		t.Fatalf("acks sent for updates that asked for none: %+v", got)
	}
}
