// Package disk is a server's data directory: a write-ahead log of the
// updates it applied (package wal) and a snapshot of its store, so a
// restarted server holds what it held before it stopped.
//
// A data directory holds:
//
//	meta.json   format version, cluster id and node id
//	snapshot    the latest snapshot (see WriteSnapshotFile)
//	wal/        the log: one record per update applied after the snapshot
//	LOCK        held (flock) while a server uses the directory
//
// The directory belongs to one cluster: Open records the cluster id the
// first time the server joins, and refuses a directory written by another
// cluster (ErrOtherCluster) or by a newer data format (ErrFormat). The
// log's indexes are the directory's own, not revisions: revisions are not
// contiguous across epochs, and epoch markers are logged too. A snapshot
// records the last log index it covers; replaying the records after it on
// top of it gives the store as it was. Snapshots are fuzzy: the entries are
// read page by page while updates go on, so an entry may be newer than
// the snapshot's position; replaying an update again on top of it gives
// the same result (a put sets a key, a delete removes it), so the replay
// ends in the state the log describes.
package disk

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/zkvstore/zkv/store/wal"
)

// FormatVersion is the data format this code writes. A directory or a
// snapshot of a higher version is refused.
const FormatVersion = 1

var (
	// ErrOtherCluster means the data directory belongs to another cluster.
	ErrOtherCluster = errors.New("the data directory belongs to another cluster")
	// ErrFormat means the data was written in a newer format.
	ErrFormat = errors.New("the data was written by a newer version")
	// ErrCorrupt means a snapshot failed its checks.
	ErrCorrupt = errors.New("corrupt snapshot")
	// ErrLocked means another process uses the data directory.
	ErrLocked = errors.New("the data directory is in use by another process")
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Meta is meta.json: what the directory is.
type Meta struct {
	Format  int    `json:"format"`
	Cluster string `json:"cluster,omitempty"`
	Node    string `json:"node,omitempty"`
}

// Options configure Open.
type Options struct {
	// Node is the id of the server using the directory.
	Node string
	// Sync and SyncInterval configure the log (wal.Options).
	Sync         wal.SyncMode
	SyncInterval time.Duration
	Logger       *slog.Logger
}

// Dir is an open data directory.
type Dir struct {
	path string
	meta Meta
	lock *os.File
	log  *wal.Log
}

// Open opens (creating if needed) the data directory at path, locks it
// against a second server, checks its format, and opens its log.
func Open(path string, opts Options) (*Dir, error) {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(path, "LOCK"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("data directory: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("%w: %s: %v", ErrLocked, path, err)
	}
	d := &Dir{path: path, lock: lock}
	fail := func(err error) (*Dir, error) {
		d.Close()
		return nil, err
	}
	if err := d.readMeta(opts.Node); err != nil {
		return fail(err)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	d.log, err = wal.Open(filepath.Join(path, "wal"), wal.Options{Sync: opts.Sync, SyncInterval: opts.SyncInterval, Logger: logger})
	if err != nil {
		return fail(fmt.Errorf("data directory %s: %w", path, err))
	}
	return d, nil
}

// readMeta reads meta.json, or writes it for a new directory.
func (d *Dir) readMeta(node string) error {
	raw, err := os.ReadFile(d.metaPath())
	switch {
	case errors.Is(err, os.ErrNotExist):
		d.meta = Meta{Format: FormatVersion, Node: node}
		return d.writeMeta()
	case err != nil:
		return fmt.Errorf("data directory: %w", err)
	}
	if err := json.Unmarshal(raw, &d.meta); err != nil {
		return fmt.Errorf("data directory %s: meta.json: %w", d.path, err)
	}
	if d.meta.Format > FormatVersion {
		return fmt.Errorf("%w: %s has data format %d, this server reads up to %d", ErrFormat, d.path, d.meta.Format, FormatVersion)
	}
	if node != "" && d.meta.Node != "" && d.meta.Node != node {
		return fmt.Errorf("data directory %s belongs to node %s, not %s", d.path, d.meta.Node, node)
	}
	return nil
}

// writeMeta replaces meta.json atomically.
func (d *Dir) writeMeta() error {
	raw, err := json.MarshalIndent(d.meta, "", "  ")
	if err != nil {
		return err
	}
	tmp := d.metaPath() + ".tmp"
	if err := os.WriteFile(tmp, append(raw, '\n'), 0o600); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	f, err := os.Open(tmp)
	if err == nil {
		err = f.Sync()
		f.Close()
	}
	if err == nil {
		err = os.Rename(tmp, d.metaPath())
	}
	if err == nil {
		err = syncDir(d.path)
	}
	if err != nil {
		return fmt.Errorf("data directory: meta.json: %w", err)
	}
	return nil
}

func (d *Dir) metaPath() string { return filepath.Join(d.path, "meta.json") }

// Path is the directory's path.
func (d *Dir) Path() string { return d.path }

// Meta returns what meta.json says.
func (d *Dir) Meta() Meta { return d.meta }

// Log is the directory's write-ahead log.
func (d *Dir) Log() *wal.Log { return d.log }

// SnapshotPath is where the directory's snapshot lives.
func (d *Dir) SnapshotPath() string { return filepath.Join(d.path, "snapshot") }

// HasSnapshot reports whether the directory holds a snapshot.
func (d *Dir) HasSnapshot() bool {
	_, err := os.Stat(d.SnapshotPath())
	return err == nil
}

// Join records that the directory holds cluster's data, the first time;
// after that it fails with ErrOtherCluster for any other cluster.
func (d *Dir) Join(cluster string) error {
	switch d.meta.Cluster {
	case cluster:
		return nil
	case "":
		d.meta.Cluster = cluster
		return d.writeMeta()
	}
	return fmt.Errorf("%w: %s holds cluster %s's data, this server joined cluster %s (use another --data-dir, or remove this one to start empty)",
		ErrOtherCluster, d.path, d.meta.Cluster, cluster)
}

// Size is the bytes the directory's snapshot and log take.
func (d *Dir) Size() int64 {
	n := d.log.Stats().Bytes
	if fi, err := os.Stat(d.SnapshotPath()); err == nil {
		n += fi.Size()
	}
	return n
}

// Close closes the log and releases the lock.
func (d *Dir) Close() error {
	var err error
	if d.log != nil {
		err = d.log.Close()
	}
	if d.lock != nil {
		d.lock.Close()
	}
	return err
}
