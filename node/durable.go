package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/election"
	"github.com/zkvstore/zkv/store"
	"github.com/zkvstore/zkv/store/disk"
	"github.com/zkvstore/zkv/store/wal"
)

// DefaultSnapshotBytes is the log size past which a server with a data
// directory writes a snapshot.
const DefaultSnapshotBytes = 64 << 20

// Kinds of log record: the first byte of each, then JSON.
const (
	// recApply is an update applied in stream order (bus.Update): a
	// put, delete, purge or compact with Store.Apply, an epoch marker with
	// Store.BeginEpoch.
	recApply = 'u'
	// recNewer is an update merged by a catch-up (Store.ApplyNewer).
	recNewer = 'n'
	// recCaughtUp ends a catch-up or a lossy takeover (Store.CaughtUp at
	// the recorded epoch and revision).
	recCaughtUp = 'c'
	// recHole marks where the copy found it may lack updates, or hold
	// some the leader's stream replaced (Store.MarkHole), so a replay
	// counts it as missed like the live copy did, until a later
	// recCaughtUp or snapshot.
	recHole = 'g'
)

// holeRecord is the body of a recHole record.
type holeRecord struct {
	Diverged bool `json:"diverged,omitempty"`
}

// caughtUpRecord is the body of a recCaughtUp record.
type caughtUpRecord struct {
	Epoch    uint64 `json:"epoch"`
	Revision uint64 `json:"revision"`
}

// durable is the server's data directory in use; a Server without one has
// a nil *durable, and every method below is then a no-op.
type durable struct {
	dir *disk.Dir
	log *wal.Log

	// mu makes a change of the store and the log record describing it one
	// step, so the log's order is the order of the changes, and a
	// snapshot's position and log index agree.
	mu   sync.Mutex
	next uint64       // index of the next record
	last *wal.Pending // the newest record's append
	// failed is set when the log refused a record: the copy on disk no
	// longer follows the store, so the server takes no writes and confirms
	// nothing any more.
	failed atomic.Bool

	waits durableQueue // completions waiting for the log, in order
	// waitCtx ends the waits of durableLoop when a stop gives up on them.
	waitCtx   context.Context
	stopWaits context.CancelFunc
	records   atomic.Int64 // records since the last snapshot
	snapMu    sync.Mutex   // one snapshot at a time
	closeOnce sync.Once

	// What the start loaded, for status and logs.
	loaded    atomic.Bool
	snapshots atomic.Uint64
	lastSnap  atomic.Int64 // unix nanos of the last snapshot
}

// openData opens the configured data directory and loads it into st.
func openData(cfg Config, st *store.Store) (*durable, error) {
	if cfg.DataDir == "" {
		return nil, nil
	}
	dir, err := disk.Open(cfg.DataDir, disk.Options{Node: cfg.ID, Sync: cfg.Fsync, Logger: cfg.Logger.With("node", cfg.ID)})
	if err != nil {
		return nil, err
	}
	d := &durable{dir: dir, log: dir.Log()}
	d.waits.init()
	d.waitCtx, d.stopWaits = context.WithCancel(context.Background())
	if err := d.load(cfg, st); err != nil {
		dir.Close()
		return nil, err
	}
	return d, nil
}

// load restores st from the snapshot and replays the log after it.
func (d *durable) load(cfg Config, st *store.Store) error {
	start := time.Now()
	log := cfg.Logger.With("node", cfg.ID, "data_dir", d.dir.Path())
	var h disk.Header
	if d.dir.HasSnapshot() {
		var err error
		h, err = disk.ReadSnapshotFile(d.dir.SnapshotPath(), func(h disk.Header) error {
			if c := d.dir.Meta().Cluster; c != "" && h.Cluster != "" && h.Cluster != c {
				return fmt.Errorf("%w: the snapshot is cluster %s's, the directory cluster %s's", disk.ErrOtherCluster, h.Cluster, c)
			}
			if h.Keys > 0 {
				st.Reserve(int(h.Keys))
			}
			return nil
		}, st.Install, st.RememberRequests)
		if err != nil {
			return err
		}
		st.Restore(h.Position())
	}
	first, last := d.log.FirstIndex(), d.log.LastIndex()
	from := h.LogIndex + 1
	if last != 0 && first > from {
		return fmt.Errorf("%w: the log starts at record %d, the snapshot covers up to %d", wal.ErrCorrupt, first, h.LogIndex)
	}
	replayed := 0
	err := d.log.Iterate(max(from, first), func(i uint64, rec []byte) error {
		if err := replay(st, rec); err != nil {
			return fmt.Errorf("log record %d: %w", i, err)
		}
		replayed++
		return nil
	})
	if err != nil {
		return fmt.Errorf("data directory %s: %w", d.dir.Path(), err)
	}
	d.next = max(last, h.LogIndex) + 1
	d.records.Store(int64(replayed))
	d.loaded.Store(h.Revision > 0 || replayed > 0)
	pos := st.Position()
	rec := d.log.Recovery()
	log.Info("loaded data directory", "keys", st.Len(), "revision", pos.Revision, "epoch", pos.Epoch,
		"snapshot_revision", h.Revision, "snapshot_keys", h.Keys, "log_records", replayed, "missed", st.Missed(),
		"fsync", cfg.Fsync.String(), "took", time.Since(start).String())
	if rec.Truncated {
		log.Warn("the log ended in a torn or corrupt record, cut off (it was never acknowledged)",
			"segment", rec.Segment, "offset", rec.Offset, "dropped_bytes", rec.DroppedBytes, "last_record", rec.LastIndex)
	}
	return nil
}

// replay applies one log record to st as the server applied it.
func replay(st *store.Store, rec []byte) error {
	if len(rec) == 0 {
		return errors.New("empty record")
	}
	switch rec[0] {
	case recApply, recNewer:
		var u bus.Update
		if err := bus.Decode(rec[1:], &u); err != nil {
			return err
		}
		var err error
		switch {
		case u.Kind == bus.KindEpoch:
			err = st.BeginEpoch(u.Epoch, u.Seq)
		case rec[0] == recNewer:
			st.Merge(storeUpdate(u))
		default:
			err = st.Apply(storeUpdate(u))
		}
		// What the store reports (a gap, a duplicate of a snapshot's
		// entry, an old epoch) it reported live too: the replay ends in
		// the same state, gaps counted.
		if errors.Is(err, store.ErrBadUpdate) {
			return err
		}
		return nil
	case recCaughtUp:
		var c caughtUpRecord
		if err := json.Unmarshal(rec[1:], &c); err != nil {
			return err
		}
		st.CaughtUp(c.Epoch, c.Revision)
		return nil
	case recHole:
		var g holeRecord
		if err := json.Unmarshal(rec[1:], &g); err != nil {
			return err
		}
		st.MarkHole(g.Diverged)
		return nil
	}
	return fmt.Errorf("unknown record kind %q", rec[0])
}

// encodeRecord is a record of kind k with body.
func encodeRecord(k byte, body []byte) []byte {
	rec := make([]byte, 0, len(body)+1)
	rec = append(rec, k)
	return append(rec, body...)
}

// appendLocked logs rec; d.mu is held. A refused record fails the log.
func (d *durable) appendLocked(rec []byte) (*wal.Pending, error) {
	p, err := d.log.Enqueue(d.next, rec)
	if err != nil {
		d.failed.Store(true)
		return nil, fmt.Errorf("data directory log: %w", err)
	}
	d.next++
	d.last = p
	d.records.Add(1)
	return p, nil
}

// logged runs change (a change of the store) and, if it reports a record,
// logs it, as one step. Without a data directory it only runs change.
func (s *Server) logged(change func() []byte) (*wal.Pending, error) {
	d := s.disk
	if d == nil {
		change()
		return nil, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	rec := change()
	if rec == nil {
		return nil, nil
	}
	p, err := d.appendLocked(rec)
	if err != nil {
		s.diskFailed(err)
	}
	return p, err
}

// lastLogged is the append of the newest record (nil: none, or no data
// directory): once it is durable, every earlier one is.
func (s *Server) lastLogged() *wal.Pending {
	if s.disk == nil {
		return nil
	}
	s.disk.mu.Lock()
	defer s.disk.mu.Unlock()
	return s.disk.last
}

// diskFailed stops this server from taking writes: its log refused a
// record, so nothing it applies from now on would survive a restart.
func (s *Server) diskFailed(err error) {
	s.disk.failed.Store(true)
	s.rareLog("disk-failed", func() {
		s.log.Error("the data directory's log failed: taking no writes and confirming nothing (restart the server)", "err", err)
	})
	// Not here: the caller may hold writeMu, which stepDown takes.
	s.goFunc(func() { s.stepDown("data directory failed") })
}

// diskOK is false once the data directory's log failed.
func (s *Server) diskOK() bool { return s.disk == nil || !s.disk.failed.Load() }

// whenDurable returns done, delayed until p (and every record before it)
// is durable: an acknowledgement or a confirmation that waits this way
// promises what the log holds. A nil p needs no wait.
func (s *Server) whenDurable(p *wal.Pending, done func(error)) func(error) {
	if p == nil {
		return done
	}
	return func(err error) {
		if err != nil {
			done(err)
			return
		}
		s.disk.waits.push(durableWait{p: p, done: done})
	}
}

// durableWait is a completion waiting for a log append.
type durableWait struct {
	p    *wal.Pending
	done func(error)
}

// durableQueue is the completions waiting for the log, served in order by
// durableLoop. Appends finish in order, so waiting for each in turn never
// holds up one that is ready behind one that is not.
type durableQueue struct {
	mu     sync.Mutex
	q      []durableWait
	kick   chan struct{}
	closed bool
}

func (q *durableQueue) init() { q.kick = make(chan struct{}, 1) }

// push adds w; after close, w's done gets errStopping at once.
func (q *durableQueue) push(w durableWait) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		w.done(errStopping)
		return
	}
	q.q = append(q.q, w)
	q.mu.Unlock()
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// take removes and returns the queue, and whether it was closed.
func (q *durableQueue) take() ([]durableWait, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	ws := q.q
	q.q = nil
	return ws, q.closed
}

// close refuses later completions.
func (q *durableQueue) close() {
	q.mu.Lock()
	q.closed = true
	q.mu.Unlock()
	select {
	case q.kick <- struct{}{}:
	default:
	}
}

// durableLoop runs the completions waiting for the log until the queue is
// closed and empty.
func (s *Server) durableLoop() {
	d := s.disk
	for {
		ws, closed := d.waits.take()
		for _, w := range ws {
			err := w.p.Wait(d.waitCtx)
			if err != nil && d.waitCtx.Err() != nil {
				err = errStopping
			} else if err != nil {
				s.diskFailed(err)
				err = bus.Errorf(bus.CodeUnavailable, "node %s could not write the update to its data directory: %v", s.cfg.ID, err)
			}
			w.done(err)
		}
		if closed && len(ws) == 0 {
			return
		}
		if len(ws) == 0 {
			<-d.waits.kick
		}
	}
}

// stopDurable ends durableLoop after it has run every completion queued
// (the log finishes every append it took), and waits for it, at most
// until ctx ends.
func (s *Server) stopDurable(ctx context.Context, done <-chan struct{}) {
	if s.disk == nil {
		return
	}
	s.disk.waits.close()
	if done == nil {
		return
	}
	select {
	case <-done:
	case <-ctx.Done():
		s.log.Warn("writes still waiting for the data directory's log at the shutdown timeout: not acknowledged")
		s.disk.stopWaits()
		<-done
	}
}

// logApply is the log record of an update applied in stream order.
func logApply(u bus.Update) []byte { return encodeRecord(recApply, bus.Encode(u)) }

// logNewer is the log record of an update a catch-up merged.
func logNewer(u bus.Update) []byte { return encodeRecord(recNewer, bus.Encode(u)) }

// logHole is the log record of a hole found in the copy.
func logHole(diverged bool) []byte {
	body, _ := json.Marshal(holeRecord{Diverged: diverged})
	return encodeRecord(recHole, body)
}

// noteHole logs that the copy found a hole (diverged: it may hold updates
// the leader's stream replaced) that no record of an update shows: one
// learned from ZooKeeper, a divergence of an update it refused, or a copy
// of the leader's store about to replace its own.
func (s *Server) noteHole(diverged bool) {
	d := s.disk
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	s.store.MarkHole(diverged) // as the replay will
	if _, err := d.appendLocked(logHole(diverged)); err != nil {
		s.diskFailed(err)
	}
}

// logCaughtUp is the log record of a catch-up's end at epoch and rev.
func logCaughtUp(epoch, rev uint64) []byte {
	body, _ := json.Marshal(caughtUpRecord{Epoch: epoch, Revision: rev})
	return encodeRecord(recCaughtUp, body)
}

// errSnapshotHole is why no snapshot is written while the copy knows it
// lacks updates.
var errSnapshotHole = errors.New("not while this copy lacks updates")

// snapshotLoop writes a snapshot whenever the log grew past
// SnapshotBytes, and drops the log behind it (not while a catch-up runs
// or the copy lacks updates: the snapshot would hide the hole).
func (s *Server) snapshotLoop() {
	s.every(time.Second, func() {
		if s.disk.log.Stats().Bytes >= s.cfg.SnapshotBytes && !s.catchRunning.Load() && s.store.Missed() == 0 {
			if err := s.snapshot("the log grew past " + fmt.Sprint(s.cfg.SnapshotBytes) + " bytes"); err != nil {
				s.log.Warn("snapshot failed", "err", err)
			}
		}
	})
}

// snapshot writes a snapshot of the store to the data directory and drops
// the log records it covers. The entries are read page by page while
// updates go on (a fuzzy snapshot): the header's position and log index
// are taken together first, so replaying the records after the index
// gives the store as the log describes it; and the file replaces the old
// snapshot only once every record up to the newest (whose changes the
// entries may hold) is durable.
func (s *Server) snapshot(reason string) error {
	d := s.disk
	if d == nil {
		return nil
	}
	d.snapMu.Lock()
	defer d.snapMu.Unlock()
	start := time.Now()
	d.mu.Lock()
	index := d.next - 1
	pos := s.store.Position()
	missed := s.store.Missed()
	d.mu.Unlock()
	if missed > 0 {
		// The position would claim the revisions this copy lacks: the log
		// keeps the hole until a catch-up ends it.
		return fmt.Errorf("%w (%d updates missed)", errSnapshotHole, missed)
	}
	h := disk.Header{Cluster: d.dir.Meta().Cluster, Node: s.cfg.ID, Created: start.UnixNano(), LogIndex: index}
	h.SetPosition(pos)
	h, err := disk.WriteSnapshotFile(d.dir.SnapshotPath(), h, disk.StorePages(s.store), s.store.RecentRequests(), func() error {
		if p := s.lastLogged(); p != nil {
			return p.Wait(s.runCtxOr())
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := d.log.TruncateFront(index + 1); err != nil {
		return fmt.Errorf("drop the log behind the snapshot: %w", err)
	}
	d.records.Store(int64(d.log.LastIndex() - min(index, d.log.LastIndex())))
	d.snapshots.Add(1)
	d.lastSnap.Store(time.Now().UnixNano())
	s.log.Info("snapshot written", "reason", reason, "keys", h.Keys, "revision", pos.Revision, "log_index", index,
		"took", time.Since(start).String())
	return nil
}

// runCtxOr is the server's run context, or a background one before Run.
func (s *Server) runCtxOr() context.Context {
	if s.runCtx != nil {
		return s.runCtx
	}
	return context.Background()
}

// closeData closes the data directory (once), after everything that logs
// has stopped.
func (s *Server) closeData() {
	if s.disk == nil {
		return
	}
	s.disk.closeOnce.Do(func() {
		s.disk.stopWaits()
		if err := s.disk.dir.Close(); err != nil {
			s.log.Warn("close the data directory", "err", err)
		}
	})
}

// writeLogged is the leader's Store.Write, and the log record of the
// update it made, as one step. lerr is the log's refusal: the write was
// applied in memory but will not survive a restart, so it must not be
// acknowledged.
func (s *Server) writeLogged(epoch uint64, w store.Write) (u store.Update, dup, applied bool, err error, p *wal.Pending, lerr error) {
	d := s.disk
	if d == nil {
		u, dup, applied, err = s.store.Write(epoch, w)
		return u, dup, applied, err, nil, nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	u, dup, applied, err = s.store.Write(epoch, w)
	if err == nil && applied && !dup {
		if p, lerr = d.appendLocked(logApply(busUpdate(u))); lerr != nil {
			s.diskFailed(lerr)
		}
	}
	return u, dup, applied, err, p, lerr
}

// beginEpochLogged starts the epoch of marker at its revision on this
// copy, which is to lead it; lossy says the start is past what the copy
// holds (the loss is reported as lost, not as missed). With a data
// directory, the change is logged.
func (s *Server) beginEpochLogged(marker bus.Update, lossy bool) error {
	if d := s.disk; d != nil {
		d.mu.Lock()
		defer d.mu.Unlock()
	}
	if err := s.store.BeginEpoch(marker.Epoch, marker.Seq); errors.Is(err, store.ErrOldEpoch) {
		return fmt.Errorf("a higher epoch is known: %w", err)
	}
	if lossy {
		s.store.CaughtUp(marker.Epoch, marker.Seq)
	}
	if s.disk == nil {
		return nil
	}
	recs := [][]byte{logApply(marker)}
	if lossy {
		recs = append(recs, logCaughtUp(marker.Epoch, marker.Seq))
	}
	for _, rec := range recs {
		if _, err := s.disk.appendLocked(rec); err != nil {
			s.diskFailed(err)
			return err
		}
	}
	return nil
}

// loadedData reports whether this server started from a data directory
// that held something: its copy then holds every update it logged, so it
// knows what it held before it stopped.
func (s *Server) loadedData() bool { return s.disk != nil && s.disk.loaded.Load() }

// dataStatus describes the data directory for status (nil without one).
func (s *Server) dataStatus() *bus.DataStatus {
	d := s.disk
	if d == nil {
		return nil
	}
	st := d.log.Stats()
	return &bus.DataStatus{Fsync: s.cfg.Fsync.String(), Bytes: d.dir.Size(), LogRecords: d.records.Load(),
		Fsyncs: st.Fsyncs, LastFsyncUS: st.LastFsync.Microseconds(), Snapshots: d.snapshots.Load(),
		LastSnapshot: d.lastSnap.Load(), Loaded: d.loaded.Load(), Failed: d.failed.Load()}
}

// streamPos is a copy's place in the stream for comparing copies: the
// epoch that wrote its held revision, and the revision.
type streamPos struct{ epoch, rev uint64 }

// after reports whether p is further along the stream than q: a later
// epoch's update, or a higher revision of the same epoch (or where either
// epoch is not known). A copy whose last update is of a later epoch holds
// the branch that epoch's leader continued; revisions of an older epoch
// past its start were replaced.
func (p streamPos) after(q streamPos) bool {
	if p.epoch != 0 && q.epoch != 0 && p.epoch != q.epoch {
		return p.epoch > q.epoch
	}
	return p.rev > q.rev
}

// behindAcked reports whether a copy that holds held lacks what the
// cluster record says was acknowledged.
func behindAcked(held store.Position, rec election.Record) bool {
	return streamPos{rec.AckedEpoch, rec.Acked}.after(streamPos{held.RevEpoch, held.Revision})
}

// peerAhead asks the other members how far they hold the stream, and
// returns one that holds more than this copy (ok false: none answered so).
// A server that restarted from its data directory asks before it leads:
// a peer that holds more is the one to lead, so no acknowledged write is
// lost in a restart of every server, whatever the order.
func (s *Server) peerAhead(ctx context.Context) (peer string, ahead streamPos, ok bool) {
	held := s.store.Held()
	mine := streamPos{held.RevEpoch, held.Revision}
	ctx, cancel := context.WithTimeout(ctx, min(s.cfg.ForwardTimeout, time.Second))
	defer cancel()
	type answer struct {
		id  string
		pos streamPos
	}
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		out []answer
	)
	for _, id := range s.lease.Members() {
		if id == s.cfg.ID {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			msg, err := s.verifiedReply(ctx, s.subj.NodeStatus(id), nil, "peer status")
			if err != nil {
				return
			}
			var st bus.Status
			if bus.DecodeReply(msg.Data, &st) != nil || st.Node != id {
				return
			}
			mu.Lock()
			out = append(out, answer{id, streamPos{st.HeldEpoch, st.HeldRevision}})
			mu.Unlock()
		}()
	}
	wg.Wait()
	best := mine
	for _, a := range out {
		if a.pos.after(best) {
			peer, ahead, ok, best = a.id, a.pos, true, a.pos
		}
	}
	return peer, ahead, ok
}
