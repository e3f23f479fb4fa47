package store

import (
	"fmt"
	"strings"
	"sync"
	"testing"
)

// million is a store of 1M keys with 100-byte values, built once: the
// size a catch-up moves.
var million = sync.OnceValue(func() *Store {
	s := New()
	v := strings.Repeat("v", 100)
	for i := range 1_000_000 {
		if _, err := s.Put(1, fmt.Sprintf("key-%07d", i), v); err != nil {
			panic(err)
		}
	}
	return s
})

// BenchmarkSnapshotPage1M is one catch-up page (up to 4096 entries or
// 256 KiB) of a 1M-key store, from a position that moves through the
// keyspace.
func BenchmarkSnapshotPage1M(b *testing.B) {
	s := million()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		after := fmt.Sprintf("key-%07d", (i*7919)%1_000_000)
		if entries, _, _, _ := s.Snapshot(after, 4096, 256<<10); len(entries) == 0 {
			b.Fatal("empty page")
		}
		i++
	}
}

// BenchmarkSnapshotTiny1M is an abusive page of one entry: what each page
// costs the store regardless of its size.
func BenchmarkSnapshotTiny1M(b *testing.B) {
	s := million()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		after := fmt.Sprintf("key-%07d", (i*7919)%1_000_000)
		if entries, _, _, _ := s.Snapshot(after, 1, 256<<10); len(entries) != 1 {
			b.Fatal("want one entry")
		}
		i++
	}
}
