package disk

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"

	"github.com/zkvstore/zkv/store"
)

// snapMagic opens every snapshot file; the last byte is the file format.
var snapMagic = []byte("ZKVSNAP\x01")

// maxHeader bounds a snapshot header, so a damaged length cannot make a
// reader allocate gigabytes.
const maxHeader = 1 << 20

// maxField bounds a key or value read from a snapshot file.
const maxField = 64 << 20

// Header describes a snapshot: whose it is and where in the replication
// stream the entries after it continue.
type Header struct {
	// Format is the data format version (FormatVersion when written).
	Format int `json:"format"`
	// Cluster is the id of the cluster the data belongs to.
	Cluster string `json:"cluster"`
	// Node is the server that wrote it ("" for a copy saved by a client).
	Node string `json:"node,omitempty"`
	// Created is when it was written (Unix nanoseconds).
	Created int64 `json:"created"`
	// Position is the store's position when the snapshot began; a data
	// directory's log continues from LogIndex+1.
	Epoch    uint64 `json:"epoch"`
	Stream   uint64 `json:"stream"`
	Revision uint64 `json:"revision"`
	RevEpoch uint64 `json:"rev_epoch,omitempty"`
	// LogIndex is the last log record the snapshot covers (0: none).
	LogIndex uint64 `json:"log_index"`
	// Keys is how many entries follow; the reader checks it.
	Keys int64 `json:"keys"`
}

// Position is the store position the header records.
func (h Header) Position() store.Position {
	return store.Position{Epoch: h.Epoch, Stream: h.Stream, Revision: h.Revision, RevEpoch: h.RevEpoch}
}

// SetPosition records p in the header.
func (h *Header) SetPosition(p store.Position) {
	h.Epoch, h.Stream, h.Revision, h.RevEpoch = p.Epoch, p.Stream, p.Revision, p.RevEpoch
}

// Pages yields a snapshot's entries a page at a time, in key order; an
// empty page ends them.
type Pages func() ([]store.KeyEntry, error)

// StorePages returns the pages of st's entries, each taken under the
// store's read lock, so writers wait for one page at most.
func StorePages(st *store.Store) Pages {
	after, done := "", false
	return func() ([]store.KeyEntry, error) {
		if done {
			return nil, nil
		}
		entries, _, _, more := st.Snapshot(after, 4096, 4<<20)
		if len(entries) > 0 {
			after = entries[len(entries)-1].Key
		}
		done = !more
		return entries, nil
	}
}

// WriteSnapshotFile writes a snapshot of h and pages to path: into a
// temporary file that is fsynced and then renamed over path, and the
// directory is fsynced, so path holds the old snapshot or the new one,
// never a part. requests are the recent request IDs the store remembers
// (Store.Requests), kept so that a retry after a restart is still applied
// once. ready, if not nil, is called before the rename; an error from it
// leaves the old snapshot in place. It returns the header with Keys set to
// the entries written.
func WriteSnapshotFile(path string, h Header, pages Pages, requests []store.Update, ready func() error) (Header, error) {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return h, fmt.Errorf("snapshot: %w", err)
	}
	h, err = writeSnapshot(f, h, pages, requests)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && ready != nil {
		err = ready()
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(filepath.Dir(path))
	}
	if err != nil {
		os.Remove(tmp)
		return h, fmt.Errorf("snapshot %s: %w", path, err)
	}
	return h, nil
}

// writeSnapshot writes the file's bytes: magic, header, entries, end mark,
// entry count and a CRC32C of everything before it.
//
//	magic   "ZKVSNAP" and the format byte
//	header  uvarint length, then the Header as JSON
//	entry   uvarint len(key)+1, key, uvarint len(value), value,
//	        uvarint revision, varint expires
//	end     one zero byte (a key length of -1)
//	request uvarint len(id), id, uvarint epoch, uvarint revision,
//	        uvarint len(key), key, uvarint len(value), value, one byte of
//	        flags (1 delete, 2 prefix, 4 purge): a remembered request ID
//	end     one zero byte (an empty id)
//	count   uvarint number of entries
//	crc     uint32 little-endian CRC32C of every byte before it
//
// The header's key count is written after the entries too (count), since
// the entries are counted while they are written.
func writeSnapshot(w io.Writer, h Header, pages Pages, requests []store.Update) (Header, error) {
	crc := crc32.New(castagnoli)
	bw := bufio.NewWriterSize(io.MultiWriter(w, crc), 1<<20)
	if h.Format == 0 {
		h.Format = FormatVersion
	}
	head, err := json.Marshal(h)
	if err != nil {
		return h, err
	}
	var buf []byte
	buf = append(buf, snapMagic...)
	buf = binary.AppendUvarint(buf, uint64(len(head)))
	buf = append(buf, head...)
	if _, err := bw.Write(buf); err != nil {
		return h, err
	}
	var n int64
	for {
		page, err := pages()
		if err != nil {
			return h, err
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			buf = binary.AppendUvarint(buf[:0], uint64(len(e.Key))+1)
			buf = append(buf, e.Key...)
			buf = binary.AppendUvarint(buf, uint64(len(e.Value)))
			buf = append(buf, e.Value...)
			buf = binary.AppendUvarint(buf, e.Revision)
			buf = binary.AppendVarint(buf, e.Expires)
			if _, err := bw.Write(buf); err != nil {
				return h, err
			}
			n++
		}
	}
	buf = append(buf[:0], 0)
	for _, u := range requests {
		if u.RequestID == "" {
			continue
		}
		buf = binary.AppendUvarint(buf, uint64(len(u.RequestID)))
		buf = append(buf, u.RequestID...)
		buf = binary.AppendUvarint(buf, u.Epoch)
		buf = binary.AppendUvarint(buf, u.Seq)
		buf = binary.AppendUvarint(buf, uint64(len(u.Key)))
		buf = append(buf, u.Key...)
		buf = binary.AppendUvarint(buf, uint64(len(u.Value)))
		buf = append(buf, u.Value...)
		buf = append(buf, requestFlags(u))
		if _, err := bw.Write(buf); err != nil {
			return h, err
		}
		buf = buf[:0]
	}
	buf = append(buf, 0)
	buf = binary.AppendUvarint(buf, uint64(n))
	if _, err := bw.Write(buf); err != nil {
		return h, err
	}
	if err := bw.Flush(); err != nil {
		return h, err
	}
	h.Keys = n
	var sum [4]byte
	binary.LittleEndian.PutUint32(sum[:], crc.Sum32())
	_, err = w.Write(sum[:])
	return h, err
}

// ReadSnapshotFile reads the snapshot at path: it calls head with the
// header (an error from head stops the read), install with the entries in
// batches and remember (if not nil) with the request IDs, and verifies the
// end marks, the entry count and the checksum. A damaged file fails with
// ErrCorrupt; what was already passed to install must then be thrown away
// by the caller.
func ReadSnapshotFile(path string, head func(Header) error, install func([]store.KeyEntry), remember func([]store.Update)) (Header, error) {
	f, err := os.Open(path)
	if err != nil {
		return Header{}, fmt.Errorf("snapshot: %w", err)
	}
	defer f.Close()
	h, err := readSnapshot(f, head, install, remember)
	if err != nil {
		return h, fmt.Errorf("snapshot %s: %w", path, err)
	}
	return h, nil
}

// crcReader feeds every byte it reads to a checksum.
type crcReader struct {
	r   *bufio.Reader
	crc hash.Hash32
}

func (c *crcReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.crc.Write([]byte{b})
	}
	return b, err
}

func (c *crcReader) full(n uint64) ([]byte, error) {
	buf := make([]byte, n)
	if _, err := io.ReadFull(c.r, buf); err != nil {
		return nil, err
	}
	c.crc.Write(buf)
	return buf, nil
}

func readSnapshot(r io.Reader, head func(Header) error, install func([]store.KeyEntry), remember func([]store.Update)) (Header, error) {
	cr := &crcReader{r: bufio.NewReaderSize(r, 1<<20), crc: crc32.New(castagnoli)}
	corrupt := func(what string, err error) error {
		if err == nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return fmt.Errorf("%w: %s", ErrCorrupt, what)
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	magic, err := cr.full(uint64(len(snapMagic)))
	if err != nil || string(magic[:len(magic)-1]) != string(snapMagic[:len(snapMagic)-1]) {
		return Header{}, corrupt("not a zkv snapshot", err)
	}
	if magic[len(magic)-1] > snapMagic[len(snapMagic)-1] {
		return Header{}, fmt.Errorf("%w: snapshot file format %d, this server reads %d", ErrFormat, magic[len(magic)-1], snapMagic[len(snapMagic)-1])
	}
	n, err := binary.ReadUvarint(cr)
	if err != nil || n > maxHeader {
		return Header{}, corrupt("header length", err)
	}
	raw, err := cr.full(n)
	if err != nil {
		return Header{}, corrupt("header", err)
	}
	var h Header
	if err := json.Unmarshal(raw, &h); err != nil {
		return Header{}, fmt.Errorf("%w: header: %v", ErrCorrupt, err)
	}
	if h.Format > FormatVersion {
		return h, fmt.Errorf("%w: data format %d, this server reads up to %d", ErrFormat, h.Format, FormatVersion)
	}
	if head != nil {
		if err := head(h); err != nil {
			return h, err
		}
	}
	var (
		batch []store.KeyEntry
		count uint64
	)
	for {
		kl, err := binary.ReadUvarint(cr)
		if err != nil || kl > maxField {
			return h, corrupt("entry", err)
		}
		if kl == 0 {
			break
		}
		key, err := cr.full(kl - 1)
		if err != nil {
			return h, corrupt("entry key", err)
		}
		vl, err := binary.ReadUvarint(cr)
		if err != nil || vl > maxField {
			return h, corrupt("entry value length", err)
		}
		val, err := cr.full(vl)
		if err != nil {
			return h, corrupt("entry value", err)
		}
		rev, err := binary.ReadUvarint(cr)
		if err != nil {
			return h, corrupt("entry revision", err)
		}
		exp, err := binary.ReadVarint(cr)
		if err != nil {
			return h, corrupt("entry deadline", err)
		}
		batch = append(batch, store.KeyEntry{Key: string(key), Entry: store.Entry{Value: string(val), Revision: rev, Expires: exp}})
		count++
		if len(batch) == 4096 {
			install(batch)
			batch = nil
		}
	}
	if len(batch) > 0 {
		install(batch)
		batch = nil
	}
	requests, err := readRequests(cr, corrupt)
	if err != nil {
		return h, err
	}
	want, err := binary.ReadUvarint(cr)
	if err != nil {
		return h, corrupt("entry count", err)
	}
	sum := cr.crc.Sum32()
	var tail [4]byte
	if _, err := io.ReadFull(cr.r, tail[:]); err != nil {
		return h, corrupt("checksum", err)
	}
	if binary.LittleEndian.Uint32(tail[:]) != sum {
		return h, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	if want != count || (h.Keys != 0 && uint64(h.Keys) != count) {
		return h, fmt.Errorf("%w: %d entries, the file says %d", ErrCorrupt, count, want)
	}
	if _, err := cr.r.ReadByte(); err == nil {
		return h, fmt.Errorf("%w: bytes after the checksum", ErrCorrupt)
	}
	if remember != nil && len(requests) > 0 {
		remember(requests)
	}
	h.Keys = int64(count)
	return h, nil
}

// requestFlags packs what kind of write a remembered request made.
func requestFlags(u store.Update) byte {
	var f byte
	if u.Delete {
		f |= 1
	}
	if u.Prefix {
		f |= 2
	}
	if u.Purge {
		f |= 4
	}
	return f
}

// readRequests reads the request-ID section.
func readRequests(cr *crcReader, corrupt func(string, error) error) ([]store.Update, error) {
	var out []store.Update
	for {
		n, err := binary.ReadUvarint(cr)
		if err != nil || n > maxField {
			return nil, corrupt("request id", err)
		}
		if n == 0 {
			return out, nil
		}
		id, err := cr.full(n)
		if err != nil {
			return nil, corrupt("request id", err)
		}
		var u store.Update
		u.RequestID = string(id)
		if u.Epoch, err = binary.ReadUvarint(cr); err != nil {
			return nil, corrupt("request epoch", err)
		}
		if u.Seq, err = binary.ReadUvarint(cr); err != nil {
			return nil, corrupt("request revision", err)
		}
		for _, field := range []*string{&u.Key, &u.Value} {
			l, err := binary.ReadUvarint(cr)
			if err != nil || l > maxField {
				return nil, corrupt("request key or value", err)
			}
			b, err := cr.full(l)
			if err != nil {
				return nil, corrupt("request key or value", err)
			}
			*field = string(b)
		}
		f, err := cr.ReadByte()
		if err != nil || f > 7 {
			return nil, corrupt("request flags", err)
		}
		u.Delete, u.Prefix, u.Purge = f&1 != 0, f&2 != 0, f&4 != 0
		out = append(out, u)
	}
}

// syncDir fsyncs a directory, so a rename or a new file in it survives a
// crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
