package store

import "hash/maphash"

// box is one key and its entry: the hash table and the ordered index hold
// the same box, so the key is kept once and a write to a held key updates
// the box in place. The key and the value share one allocation, kv, and a
// deadline, which few keys have, is kept in Store.expires, so a box is 32
// bytes.
type box struct {
	kv       string // the key followed by the value
	revision uint64
	klen     uint32
	expiring bool // Store.expires holds the key's deadline
}

// probe is a box holding only key, to search the ordered index with.
func probe(key string) *box { return &box{kv: key, klen: uint32(len(key))} }

func (b *box) key() string   { return b.kv[:b.klen] }
func (b *box) value() string { return b.kv[b.klen:] }

// fill stores key and e's value and revision in b (the caller keeps the
// deadline).
func (b *box) fill(key string, e Entry) {
	b.kv, b.klen, b.revision = key+e.Value, uint32(len(key)), e.Revision
}

// table is a hash table of boxes by key, with open addressing and linear
// probing: a slot is one pointer and one tag byte, about a third of what a
// map[string]*Entry slot costs, since the key is read from the box. A tag
// is 0 for an empty slot, else seven bits of the key's hash with the top
// bit set, so a probe reads a box only when its tag matches. Deletion
// shifts the rest of the run back, so no tombstones are left. The table
// is not safe for concurrent writes; Store guards it with its lock.
type table struct {
	slots []*box
	tags  []uint8
	n     int
	bytes int // of the keys and values held
	seed  maphash.Seed
}

// Table sizing: the table doubles when it would be more than
// tableLoadNum/tableLoadDen full, and starts at tableMinSlots slots.
const (
	tableMinSlots = 8
	tableLoadNum  = 3
	tableLoadDen  = 4
)

func newTable() table {
	return table{seed: maphash.MakeSeed()}
}

// hash returns key's home slot and tag in a table of mask+1 slots.
func (t *table) hash(key string, mask int) (int, uint8) {
	h := maphash.String(t.seed, key)
	return int(h) & mask, uint8(h>>57) | 0x80
}

// find returns key's slot, or -1.
func (t *table) find(key string) int {
	if t.n == 0 {
		return -1
	}
	mask := len(t.slots) - 1
	i, tag := t.hash(key, mask)
	for {
		switch t.tags[i] {
		case 0:
			return -1
		case tag:
			if t.slots[i].key() == key {
				return i
			}
		}
		i = (i + 1) & mask
	}
}

// get returns key's box, or nil.
func (t *table) get(key string) *box {
	if i := t.find(key); i >= 0 {
		return t.slots[i]
	}
	return nil
}

// len is the number of boxes held.
func (t *table) len() int { return t.n }

// insert adds b, whose key the table does not hold.
func (t *table) insert(b *box) {
	if (t.n+1)*tableLoadDen > len(t.slots)*tableLoadNum {
		t.resize(max(tableMinSlots, 2*len(t.slots)))
	}
	t.place(b)
	t.n++
	t.bytes += len(b.kv)
}

// refill stores e in b, which the table holds, keeping its key (the
// caller keeps the deadline).
func (t *table) refill(b *box, e Entry) {
	t.bytes -= len(b.kv)
	b.fill(b.key(), e)
	t.bytes += len(b.kv)
}

// place puts b in the first free slot of its run.
func (t *table) place(b *box) {
	mask := len(t.slots) - 1
	i, tag := t.hash(b.key(), mask)
	for t.tags[i] != 0 {
		i = (i + 1) & mask
	}
	t.slots[i], t.tags[i] = b, tag
}

// reserve makes room for n boxes in all without growing again.
func (t *table) reserve(n int) {
	size := max(tableMinSlots, len(t.slots))
	for n*tableLoadDen > size*tableLoadNum {
		size *= 2
	}
	if size > len(t.slots) {
		t.resize(size)
	}
}

// resize moves the boxes to a table of size slots, a power of two.
func (t *table) resize(size int) {
	old := t.slots
	t.slots, t.tags = make([]*box, size), make([]uint8, size)
	for _, b := range old {
		if b != nil {
			t.place(b)
		}
	}
}

// remove deletes key's box, if held, and returns it (or nil).
func (t *table) remove(key string) *box {
	i := t.find(key)
	if i < 0 {
		return nil
	}
	b := t.slots[i]
	t.n--
	t.bytes -= len(b.kv)
	mask := len(t.slots) - 1
	// Backward shift: move later boxes of the run into the hole when
	// their home slot is not between the hole and where they are.
	for j := (i + 1) & mask; t.tags[j] != 0; j = (j + 1) & mask {
		home, _ := t.hash(t.slots[j].key(), mask)
		if (j-home)&mask >= (j-i)&mask {
			t.slots[i], t.tags[i] = t.slots[j], t.tags[j]
			i = j
		}
	}
	t.slots[i], t.tags[i] = nil, 0
	return b
}
