// Package store is zkv's in-memory copy of the data: a map from key to
// value with a revision per key and a store-wide revision.
//
// The leader advances the revision with Put; replicas take the leader's
// revisions as they are with Apply. The store also keeps the highest epoch
// it knows (a leader's term) and refuses anything from an older epoch, which
// is how a deposed leader is fenced off.
//
// A replica learns of missed updates from the sequence numbers: within an
// epoch, puts carry contiguous Seq numbers, and a jump is a gap that Apply
// reports (after applying the update) and counts. The store does not fetch
// what it missed; a restarted server starts empty and answers "not found"
// for a key until that key is written again.
//
// Keys live in a hash table (Get is one lookup) and, for snapshot pages, in
// an ordered index (a B-tree); both point at the same 32-byte box, which
// holds the key and value in one allocation and which a write to a held key
// updates in place. A deadline is kept beside the box, for the few keys
// that have one. Memory per key is measured by BenchmarkMemoryPerKey. A
// page of a catch-up walks the index from its start key under the read lock,
// so it costs O(log n + page) instead of a sort of the keyspace, and Install
// merges a fetched page in batches so writers never wait for a whole page.
//
// The store does no I/O, starts no goroutines and logs nothing. All methods
// are safe for concurrent use; reads never wait for the network.
package store
