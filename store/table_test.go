package store

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestTableMatchesMap runs random inserts, removes and lookups on a table
// and a map side by side, small key spaces making long runs and many
// backward shifts.
func TestTableMatchesMap(t *testing.T) {
	for _, space := range []int{4, 50, 2000} {
		rng := rand.New(rand.NewPCG(1, uint64(space)))
		tb, m := newTable(), map[string]*box{}
		for range 20000 {
			k := strconv.Itoa(rng.IntN(space))
			switch rng.IntN(3) {
			case 0:
				if m[k] == nil {
					b := probe(k)
					tb.insert(b)
					m[k] = b
				}
			case 1:
				if got, want := tb.remove(k), m[k]; got != want {
					t.Fatalf("space %d: remove(%q) = %p, want %p", space, k, got, want)
				}
				delete(m, k)
			}
			if tb.len() != len(m) {
				t.Fatalf("space %d: len %d, want %d", space, tb.len(), len(m))
			}
		}
		for i := range space {
			k := strconv.Itoa(i)
			if got, want := tb.get(k), m[k]; got != want {
				t.Fatalf("space %d: get(%q) = %p, want %p", space, k, got, want)
			}
		}
	}
}

// TestTableReserve keeps every box through a reserve.
func TestTableReserve(t *testing.T) {
	tb := newTable()
	for i := range 100 {
		tb.insert(probe(strconv.Itoa(i)))
	}
	tb.reserve(10000)
	if len(tb.slots) < 10000*tableLoadDen/tableLoadNum {
		t.Fatalf("reserve(10000) left %d slots", len(tb.slots))
	}
	for i := range 100 {
		if tb.get(strconv.Itoa(i)) == nil {
			t.Fatalf("key %d lost by reserve", i)
		}
	}
}
