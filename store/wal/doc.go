// Package wal is a write-ahead log: opaque payloads at contiguous uint64
// indexes, appended durably, read back for replay after a restart, and cut
// at either end. The server logs each replication update (at its revision)
// before acknowledging it, so no restart loses an acknowledged write. The
// caller encodes and decodes payloads; the log never looks inside them.
//
// # Why a segment log of its own
//
// The log needs appends, ordered replay, and dropping a prefix (after a
// snapshot) or a suffix (a diverged replica). A directory of append-only
// segment files does exactly that in a few hundred lines with nothing
// hidden: an append is one write and (by mode) one fsync of one file, a
// prefix goes away by deleting whole files, and recovery is a linear scan
// with explicit rules. An embedded B+tree store (bbolt) would be as safe,
// but it pays a copy-on-write page rewrite, a freelist and two fsyncs per
// transaction for an access pattern that never updates in place, adds a
// dependency and a memory-mapped file, and its own group commit would still
// have to be built on top. So the simpler tool is the segment log.
//
// # On-disk format
//
// A log is a directory of segment files named after the index of their
// first record in 20 decimal digits, e.g. 00000000000000000001.wal, so
// names sort like indexes. A segment holds records back to back, each:
//
//	length  uint32 little-endian, payload bytes (at most MaxPayload)
//	crc     uint32 little-endian, CRC32C (Castagnoli) of
//	        index (uint64 LE) || length (uint32 LE) || payload
//	payload length bytes
//
// The index is not stored: it is the segment's first index plus the
// record's position. Covering it with the checksum means a record found at
// the wrong place fails; covering the length means a run of zero bytes (a
// file extended but never written) is never a valid record. A new segment
// is started when the next record would pass Options.SegmentBytes (a
// segment always holds at least one record).
//
// # Durability
//
// With SyncAlways, Append returns after its record is written and fsynced.
// Appends go through one committer goroutine: whatever is queued when it
// wakes is written with one write call and fsynced once, so concurrent
// appenders share an fsync (group commit). Enqueue and Pending.Wait split
// an append in two for callers that assign indexes under their own lock.
// With SyncInterval, Append returns after the write and a background
// goroutine fsyncs every Options.SyncInterval; SyncNever writes through to
// the operating system and never fsyncs. A segment is fsynced before the
// next one is started, and the directory after a segment file is created,
// renamed or removed (except with SyncNever). A failed write or fsync makes
// the log refuse further appends (ErrFailed): after a failed fsync the
// state of the file is unknown, so it must be reopened and recovered.
//
// # Recovery
//
// Open scans every segment and verifies every record, in index order.
//
//   - A bad record (cut short, or failing its checksum or length check) in
//     the last segment that is not followed by a good record for the next
//     index is a torn tail: the write that was cut by a crash and never
//     acknowledged. The file is truncated to the end of the last good
//     record, fsynced, and the cut is reported: logged at WARN with the
//     segment, byte offset and bytes dropped, and returned by
//     Log.Recovery. Appends continue from the last good record.
//   - A bad record anywhere else, in a segment that is not the last or
//     followed by a good record, is corruption in the middle: Open fails
//     with ErrCorrupt and changes nothing.
//   - Segments must follow one another without gaps (ErrCorrupt). A segment
//     overlapped by the next one (or damaged only where the next one
//     overlaps it) is the leftover of a TruncateFront that did not finish;
//     it is deleted and reported in Recovery.Removed. Temporary files
//     (*.wal.tmp) are deleted too.
//   - Only the record right after a bad one is checked. A damaged length
//     field in the last segment misplaces that check, so the damage can be
//     taken for a torn tail; the cut is then still reported, never silent.
//   - A log whose only segment holds no record is empty and takes any
//     first index.
//
// TruncateFront rewrites the segment holding the new first index into a
// temporary file, fsyncs it, renames it to its final name and only then
// deletes the segments below, so a crash at any point leaves a log that
// Open recovers to either the old or the new front. TruncateBack deletes
// the newest segments first and then truncates the one holding the new
// last index, so a crash in between leaves a contiguous log at least as
// long as asked for; the caller repeats the truncation.
//
// The log starts two goroutines at most (the committer and, for
// SyncInterval, the syncer); Close stops both.
package wal
