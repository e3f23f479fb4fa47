package store

// logEntry is one update in the window of recent updates, in a compact
// form: the fields most updates carry, and the rarer ones behind more.
// A delete by prefix keeps the keys it removed, so their history can be
// dropped when it leaves the window (they are not replayed).
type logEntry struct {
	epoch, seq uint64
	time       int64
	key, value string
	requestID  string
	leader     string
	flags      logFlags
	more       *logMore // nil when all its fields are zero
}

// logFlags are an update's booleans.
type logFlags uint8

const (
	logDelete logFlags = 1 << iota
	logPrefix
	logPurge
	logExpired
)

// logMore is what few updates carry: a deadline, a compaction's revision
// or the keys a delete by prefix removed.
type logMore struct {
	expires int64
	compact uint64
	removed []string
}

// newLogEntry is u (but its Count, which is the applying store's) and
// the keys it removed.
func newLogEntry(u Update, removed []string) logEntry {
	e := logEntry{epoch: u.Epoch, seq: u.Seq, time: u.Time, key: u.Key, value: u.Value, requestID: u.RequestID, leader: u.Leader}
	for _, f := range []struct {
		set  bool
		flag logFlags
	}{{u.Delete, logDelete}, {u.Prefix, logPrefix}, {u.Purge, logPurge}, {u.Expired, logExpired}} {
		if f.set {
			e.flags |= f.flag
		}
	}
	if u.Expires != 0 || u.Compact != 0 || len(removed) > 0 {
		e.more = &logMore{expires: u.Expires, compact: u.Compact, removed: removed}
	}
	return e
}

// update is the Update e holds.
func (e logEntry) update() Update {
	u := Update{Epoch: e.epoch, Seq: e.seq, Time: e.time, Key: e.key, Value: e.value, RequestID: e.requestID, Leader: e.leader,
		Delete: e.flags&logDelete != 0, Prefix: e.flags&logPrefix != 0, Purge: e.flags&logPurge != 0, Expired: e.flags&logExpired != 0}
	if e.more != nil {
		u.Expires, u.Compact = e.more.expires, e.more.compact
	}
	return u
}

// removed is the keys a delete by prefix removed.
func (e logEntry) removed() []string {
	if e.more == nil {
		return nil
	}
	return e.more.removed
}

// size is what an entry costs beyond its fixed size: its key, value and
// removed keys.
func (e logEntry) size() int {
	n := len(e.key) + len(e.value)
	for _, k := range e.removed() {
		n += len(k)
	}
	return n
}

// window is a queue of log entries in a ring that grows by doubling up
// to a bound and is then reused, so a full window costs its bound in
// entries and no more.
type window struct {
	ring []logEntry
	head int // the oldest entry
	n    int
}

func (w *window) len() int { return w.n }

// at is the i-th entry, oldest first.
func (w *window) at(i int) *logEntry { return &w.ring[(w.head+i)%len(w.ring)] }

// push appends e, growing the ring up to limit entries; the caller pops
// first when limit entries are held.
func (w *window) push(e logEntry, limit int) {
	if w.n == len(w.ring) {
		w.grow(min(max(2*len(w.ring), 64), limit))
	}
	w.ring[(w.head+w.n)%len(w.ring)] = e
	w.n++
}

// grow moves the entries to a ring of size entries (at least w.n + 1).
func (w *window) grow(size int) {
	ring := make([]logEntry, max(size, w.n+1))
	for i := range w.n {
		ring[i] = *w.at(i)
	}
	w.ring, w.head = ring, 0
}

// pop removes and returns the oldest entry.
func (w *window) pop() logEntry {
	e := w.ring[w.head]
	w.ring[w.head] = logEntry{} // let the collector have its strings
	w.head = (w.head + 1) % len(w.ring)
	w.n--
	return e
}
