package store

import "testing"

// TestWindowRing pushes and pops across the ring's growth and wrap and
// checks the entries stay in order.
func TestWindowRing(t *testing.T) {
	var w window
	next, oldest := uint64(1), uint64(1)
	for round := range 500 {
		for range round%7 + 1 {
			if w.len() == 100 {
				if got := w.pop().seq; got != oldest {
					t.Fatalf("pop = %d, want %d", got, oldest)
				}
				oldest++
			}
			w.push(logEntry{seq: next}, 100)
			next++
		}
		if round%3 == 0 && w.len() > 0 {
			w.pop()
			oldest++
		}
		if len(w.ring) > 100 {
			t.Fatalf("ring grew to %d entries, past its limit", len(w.ring))
		}
		for i := range w.len() {
			if got := w.at(i).seq; got != oldest+uint64(i) {
				t.Fatalf("round %d: entry %d is seq %d, want %d", round, i, got, oldest+uint64(i))
			}
		}
	}
}

// TestLogEntryRoundTrip keeps every replicated field of an update.
func TestLogEntryRoundTrip(t *testing.T) {
	for _, u := range []Update{
		{Epoch: 2, Seq: 9, Key: "k", Value: "v", RequestID: "r", Leader: "n1", Time: 5},
		{Epoch: 2, Seq: 10, Key: "k", Delete: true, Prefix: true, Purge: true, Expired: true},
		{Epoch: 2, Seq: 11, Key: "k", Value: "v", Expires: 77},
		{Epoch: 2, Seq: 12, Compact: 3},
	} {
		if got := newLogEntry(u, nil).update(); got != u {
			t.Errorf("round trip of %+v gave %+v", u, got)
		}
	}
	if got := newLogEntry(Update{Key: "a/", Delete: true, Prefix: true}, []string{"a/1"}).removed(); len(got) != 1 {
		t.Errorf("removed keys = %q, want [a/1]", got)
	}
}
