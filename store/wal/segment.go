package wal

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// segment is one file of the log: records first, first+1, ... back to back.
type segment struct {
	first   uint64
	path    string
	f       *os.File
	offsets []int64 // byte offset of each record
	size    int64   // bytes in the file
	// leftover marks, during recovery, a damaged segment whose damage a
	// newer segment covers.
	leftover bool
}

// name returns the segment's file name.
func (s *segment) name() string { return filepath.Base(s.path) }

// count returns the number of records.
func (s *segment) count() uint64 { return uint64(len(s.offsets)) }

// lastIndex returns the index of the last record, first-1 when empty.
func (s *segment) lastIndex() uint64 { return s.first + s.count() - 1 }

// end returns the byte offset where the record at index starts, or the
// file size for the index after the last.
func (s *segment) offset(index uint64) int64 {
	i := index - s.first
	if i >= s.count() {
		return s.size
	}
	return s.offsets[i]
}

// read reads and verifies the record at index, which the segment holds.
func (s *segment) read(index uint64) ([]byte, error) {
	off := s.offset(index)
	end := s.offset(index + 1)
	buf := make([]byte, end-off)
	if _, err := s.f.ReadAt(buf, off); err != nil {
		return nil, fmt.Errorf("wal: read %d from %s: %w", index, s.name(), err)
	}
	p, _, err := decodeRecord(buf, index)
	if err != nil {
		return nil, fmt.Errorf("%w: record %d in %s at offset %d: %w", ErrCorrupt, index, s.name(), off, err)
	}
	return p, nil
}

// damage describes the first bad record found by scan.
type damage struct {
	offset int64 // where the bad record starts
	err    error // why it is bad
	// followed is true when a good record follows the bad one, which makes
	// it corruption in the middle rather than a torn tail.
	followed bool
}

// scan reads the whole file and indexes its records. It stops at the first
// bad record and describes it; the records before it are indexed.
func (s *segment) scan() (*damage, error) {
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("wal: seek %s: %w", s.name(), err)
	}
	buf, err := io.ReadAll(s.f)
	if err != nil {
		return nil, fmt.Errorf("wal: read %s: %w", s.name(), err)
	}
	s.size = int64(len(buf))
	s.offsets = s.offsets[:0]
	var off int
	for off < len(buf) {
		index := s.first + s.count()
		_, n, err := decodeRecord(buf[off:], index)
		if err != nil {
			return &damage{offset: int64(off), err: err, followed: goodAfter(buf[off:], index)}, nil
		}
		s.offsets = append(s.offsets, int64(off))
		off += n
	}
	return nil, nil
}

// goodAfter reports whether the bad record at the start of buf, whose
// header gives its length, is followed by a good record for index+1.
func goodAfter(buf []byte, index uint64) bool {
	if len(buf) < headerSize {
		return false
	}
	n := binary.LittleEndian.Uint32(buf[:4])
	if n > MaxPayload || len(buf) < headerSize+int(n) {
		return false
	}
	rest := buf[headerSize+int(n):]
	if len(rest) == 0 {
		return false
	}
	_, _, err := decodeRecord(rest, index+1)
	return err == nil
}
