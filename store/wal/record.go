package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"path/filepath"
	"strconv"
	"strings"
)

// headerSize is the size of a record header: the payload length and the
// CRC32C, both little-endian uint32.
const headerSize = 8

// MaxPayload is the largest payload a record may carry. A header claiming
// more is treated as damage, not as a record.
const MaxPayload = 64 << 20

// segmentExt is the file name extension of a segment.
const segmentExt = ".wal"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Reasons a record fails to decode. Recovery decides from them (and from
// where the record lies) whether the damage is a torn tail or corruption.
var (
	errShort    = errors.New("record cut short")
	errChecksum = errors.New("record checksum mismatch")
	errLength   = errors.New("record length out of range")
)

// recordCRC is the CRC32C of the record's index, its payload length and its
// payload. The index is implied by the record's position and not stored,
// but covering it means a record read at the wrong place fails its check;
// covering the length means a zeroed header never checks out.
func recordCRC(index uint64, payload []byte) uint32 {
	var b [12]byte
	binary.LittleEndian.PutUint64(b[:8], index)
	binary.LittleEndian.PutUint32(b[8:], uint32(len(payload)))
	c := crc32.Update(0, castagnoli, b[:])
	return crc32.Update(c, castagnoli, payload)
}

// appendRecord appends the encoded record for index to dst.
func appendRecord(dst []byte, index uint64, payload []byte) []byte {
	var h [headerSize]byte
	binary.LittleEndian.PutUint32(h[:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(h[4:], recordCRC(index, payload))
	dst = append(dst, h[:]...)
	return append(dst, payload...)
}

// decodeRecord decodes the record for index at the start of buf and
// returns its payload (aliasing buf) and its encoded size.
func decodeRecord(buf []byte, index uint64) ([]byte, int, error) {
	if len(buf) < headerSize {
		return nil, 0, errShort
	}
	n := binary.LittleEndian.Uint32(buf[:4])
	if n > MaxPayload {
		return nil, 0, errLength
	}
	end := headerSize + int(n)
	if len(buf) < end {
		return nil, 0, errShort
	}
	payload := buf[headerSize:end]
	if binary.LittleEndian.Uint32(buf[4:8]) != recordCRC(index, payload) {
		return nil, end, errChecksum
	}
	return payload, end, nil
}

// segmentName is the file name of the segment whose first record is first:
// the index in 20 decimal digits, so names sort like indexes.
func segmentName(first uint64) string {
	return fmt.Sprintf("%020d%s", first, segmentExt)
}

// parseSegmentName returns the first index a segment file name records.
func parseSegmentName(name string) (uint64, bool) {
	base := filepath.Base(name)
	digits, ok := strings.CutSuffix(base, segmentExt)
	if !ok || len(digits) != 20 {
		return 0, false
	}
	first, err := strconv.ParseUint(digits, 10, 64)
	if err != nil || first == 0 {
		return 0, false
	}
	return first, true
}
