package store

import (
	"strconv"
	"testing"
)

// benchKeys is the key space of the benchmarks: 1024 keys, so the map
// stays in cache and the figures measure the store, not the memory.
var benchKeys = func() []string {
	k := make([]string, 1024)
	for i := range k {
		k[i] = "users/" + strconv.Itoa(i) + "/name"
	}
	return k
}()

const benchValue = "a value of about forty bytes, like a name"

func filled() *Store {
	s := New()
	for _, k := range benchKeys {
		if _, err := s.Put(1, k, benchValue); err != nil {
			panic(err)
		}
	}
	return s
}

// BenchmarkGet is a replica's read of a present key.
func BenchmarkGet(b *testing.B) {
	s := filled()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := s.Get(benchKeys[i&1023]); !ok {
			b.Fatal("missing key")
		}
		i++
	}
}

// BenchmarkGetParallel is reads from every P at once: the read lock's
// contention.
func BenchmarkGetParallel(b *testing.B) {
	s := filled()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			s.Get(benchKeys[i&1023])
			i++
		}
	})
}

// BenchmarkPut is the leader's write.
func BenchmarkPut(b *testing.B) {
	s := filled()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Put(1, benchKeys[i&1023], benchValue); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkApply is a replica applying the leader's updates in order.
func BenchmarkApply(b *testing.B) {
	s := filled()
	seq := s.Revision()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		seq++
		if err := s.Apply(Update{Epoch: 1, Seq: seq, Key: benchKeys[i&1023], Value: benchValue}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkPutWithReaders is the leader's write while other goroutines
// read: what a write costs under a read load.
func BenchmarkPutWithReaders(b *testing.B) {
	s := filled()
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
				s.Get(benchKeys[i&1023])
			}
		}
	}()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Put(1, benchKeys[i&1023], benchValue); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.StopTimer()
	close(stop)
	<-done
}
