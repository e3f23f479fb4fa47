package chaos

import (
	"cmp"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/zkvstore/zkv/bus"
)

// Violation is one broken property, with the operations that show it.
type Violation struct {
	// Check names the property: see the Check* constants.
	Check  string `json:"check"`
	Key    string `json:"key,omitempty"`
	Node   string `json:"node,omitempty"`
	Detail string `json:"detail"`
	Ops    []int  `json:"ops,omitempty"`
}

func (v Violation) String() string {
	var b strings.Builder
	b.WriteString(v.Check)
	if v.Key != "" {
		fmt.Fprintf(&b, " key=%s", v.Key)
	}
	if v.Node != "" {
		fmt.Fprintf(&b, " node=%s", v.Node)
	}
	b.WriteString(": ")
	b.WriteString(v.Detail)
	return b.String()
}

// The properties the checks report.
const (
	CheckLinearizability = "linearizability"     // leader reads and writes of a key are not linearizable
	CheckLostAck         = "lost-ack"            // a read misses an acknowledged write
	CheckUnknownValue    = "unknown-value"       // a read returned a value nobody wrote
	CheckFailedSeen      = "failed-write-seen"   // a read returned the value of a write classified failed
	CheckReadEarly       = "read-before-write"   // a read returned a value before its write was sent
	CheckDeposedAck      = "deposed-leader-ack"  // a deposed leader acknowledged a write
	CheckStaleEpoch      = "stale-epoch-apply"   // a copy went back to an older epoch's value
	CheckStaleReport     = "stale-not-reported"  // a copy that missed updates says it is current
	CheckBound           = "bound-exceeded"      // a measured time exceeded its (generous) bound
	CheckAvailability    = "availability"        // something that must work did not
	CheckCatchUp         = "catch-up"            // a copy did not catch up
	CheckLeadStale       = "led-while-stale"     // a stale server with --catch-up took writes
	CheckExpectedLoss    = "expected-loss-check" // the documented loss did not show as documented
	CheckOwnWrite        = "read-your-writes"    // a min_revision read missed the client\'s own write
	CheckForgedValue     = "forged-value-read"   // a read returned a value only an attacker sent
	CheckForgedAccepted  = "forged-accepted"     // a forged message changed a server's state
	CheckForgedConfirm   = "forged-confirmation" // an acks=all reply counted a confirmation no member gave
	CheckLeaderChanged   = "spurious-election"   // the leader or epoch changed without a fault that deposes it
	CheckRevisionBack    = "revision-went-back"  // a write was acknowledged at a revision not above an earlier one
	CheckLedBehind       = "behind-record"       // a server behind the cluster record led, or said it was current
	CheckWatchOrder      = "watch-order"         // a watch delivered a revision twice, out of order, or before its start
	CheckWatchGap        = "watch-gap"           // a watch skipped the revision of an acknowledged write
	CheckWatchMismatch   = "watch-mismatch"      // a watch delivered other content than the write that owns the revision
	CheckWatchEnd        = "watch-ended"         // a watch failed, or stalled before the highest acknowledged revision
	CheckTTLExpiry       = "ttl-not-expired"     // a server still held a key well after its time to live passed
	CheckNotDurable      = "not-durable"         // a server restarted from its data directory held less than it confirmed, or a leader reported a loss
	CheckTornReport      = "torn-not-reported"   // a server restarted with a torn last log record did not report the cut as made
)

// ----------------------------------------------------------------------------
// Linearizability

// kvInput is the input of a porcupine operation on one key: a read
// (Kind OpGet) or a write of any kind, with its condition.
type kvInput struct {
	Kind  OpKind
	Value string
	// Cond says IfRev is the write's if_revision (0: must be absent).
	Cond  bool
	IfRev uint64
}

// kvOutput is the output of an operation. For a read: Found, Value and
// the key's Rev (0: not given). For a write: Ambiguous (it may or may not
// have applied), Refused (conflict or exists; Rev is the key's revision
// the error carried), or acknowledged at Rev (0: not given), with Deleted
// for a delete that removed the key.
type kvOutput struct {
	Found     bool
	Value     string
	Rev       uint64
	Ambiguous bool
	Refused   bool
	Deleted   bool
}

// kvState is one key: absent, or Value at revision Rev. RevKnown is false
// after a write whose revision nobody reported (an ambiguous one): the
// next report of the key's revision is taken as it. An absent key's
// revision is 0, what if_revision 0 asks for.
type kvState struct {
	Present  bool
	Value    string
	Rev      uint64
	RevKnown bool
}

var absentKey = kvState{RevKnown: true}

// condition tells whether in's condition holds in st: yes, no, or maybe
// (st's revision is unknown).
func (st kvState) condition(in kvInput) (holds, maybe bool) {
	switch {
	case in.Kind == OpCreate || (in.Cond && in.IfRev == 0):
		return !st.Present, false
	case !in.Cond:
		return true, false
	case !st.Present:
		return false, false
	case !st.RevKnown:
		return false, true
	}
	return st.Rev == in.IfRev, false
}

// apply is st after in applied at rev (0: unknown).
func (st kvState) apply(in kvInput, rev uint64) kvState {
	if in.Kind == OpDelete {
		return absentKey
	}
	return kvState{Present: true, Value: in.Value, Rev: rev, RevKnown: rev != 0}
}

// sees reports whether a revision rev reported for the present key st is
// consistent with it, and st with what it taught.
func (st kvState) sees(rev uint64) (bool, kvState) {
	switch {
	case rev == 0:
		return true, st
	case !st.RevKnown:
		st.Rev, st.RevKnown = rev, true
		return true, st
	}
	return st.Rev == rev, st
}

// kvStep is the model of one key. Revisions are store-wide, so the model
// cannot predict them: an acknowledged write's revision becomes the key's,
// and every later report of it (a read, a conflict, an exists) must agree.
//
//   - A read finds the key iff it is present, with its value and revision.
//   - An acknowledged put, create or delete needs its condition to hold
//     (create and if_revision 0: absent; if_revision R: at revision R); a
//     delete that removed the key needs it present, one that removed
//     nothing needs it absent.
//   - A refused write (conflict, exists) needs its condition not to hold,
//     and the revision it carries to be the key's (0 when absent).
//   - An ambiguous write applies if its condition holds (or may); it
//     returns after every other operation, so not applying at all is the
//     linearization that puts it last.
func kvStep(state, input, output any) (bool, any) {
	st := state.(kvState)
	in := input.(kvInput)
	out, _ := output.(kvOutput)
	if in.Kind == OpGet {
		if !out.Found {
			return !st.Present, st
		}
		if !st.Present || st.Value != out.Value {
			return false, st
		}
		return st.sees(out.Rev)
	}
	holds, maybe := st.condition(in)
	switch {
	case out.Ambiguous:
		if holds || maybe {
			if in.Kind == OpDelete && !st.Present {
				return true, st
			}
			return true, st.apply(in, 0)
		}
		return true, st
	case out.Refused:
		if holds {
			return false, st
		}
		if !st.Present {
			return out.Rev == 0, st
		}
		if out.Rev == 0 || (maybe && out.Rev == in.IfRev) {
			return false, st
		}
		return st.sees(out.Rev)
	case in.Kind == OpDelete && !out.Deleted:
		return !st.Present && (holds || maybe), st
	case in.Kind == OpDelete && !st.Present:
		return false, st
	}
	return holds || maybe, st.apply(in, out.Rev)
}

var kvModel = porcupine.Model{
	Init:  func() any { return absentKey },
	Step:  kvStep,
	Equal: func(a, b any) bool { return a.(kvState) == b.(kvState) },
	DescribeOperation: func(input, output any) string {
		in := input.(kvInput)
		out, _ := output.(kvOutput)
		if in.Kind == OpGet {
			if !out.Found {
				return "get() -> (absent)"
			}
			return fmt.Sprintf("get() -> %q@%d", out.Value, out.Rev)
		}
		var b strings.Builder
		b.WriteString(string(in.Kind))
		if in.Kind == OpDelete {
			b.WriteString("(")
		} else {
			fmt.Fprintf(&b, "(%q", in.Value)
		}
		if in.Cond {
			fmt.Fprintf(&b, " if_revision=%d", in.IfRev)
		}
		b.WriteString(") -> ")
		switch {
		case out.Ambiguous:
			b.WriteString("?")
		case out.Refused:
			fmt.Fprintf(&b, "refused, key at %d", out.Rev)
		case in.Kind == OpDelete && !out.Deleted:
			b.WriteString("ok, nothing deleted")
		default:
			fmt.Fprintf(&b, "ok@%d", out.Rev)
		}
		return b.String()
	},
	DescribeState: func(state any) string {
		st := state.(kvState)
		switch {
		case !st.Present:
			return "(absent)"
		case !st.RevKnown:
			return fmt.Sprintf("%q@?", st.Value)
		}
		return fmt.Sprintf("%q@%d", st.Value, st.Rev)
	},
}

// Verdicts of a linearizability check.
const (
	VerdictOK      = "ok"
	VerdictIllegal = "illegal"
	VerdictUnknown = "unknown" // the checker timed out
	VerdictSkipped = "skipped"
)

// LinResult is the outcome of CheckLinearizable.
type LinResult struct {
	Verdict string   `json:"verdict"`
	Keys    int      `json:"keys"`
	Ops     int      `json:"ops"`
	BadKeys []string `json:"bad_keys,omitempty"`
	// Unknown lists the keys whose check timed out.
	Unknown []string `json:"unknown_keys,omitempty"`

	infos map[string]porcupine.LinearizationInfo
}

// linOps turns the writes of one key (ok, ambiguous, and refused with
// conflict or exists) and its answered leader reads into porcupine
// operations. An ambiguous write returns after every other operation.
func linOps(ops []Op) []porcupine.Operation {
	var end time.Duration
	for _, op := range ops {
		end = max(end, op.Return, op.Invoke)
	}
	var out []porcupine.Operation
	for _, op := range ops {
		var in kvInput
		var o kvOutput
		switch {
		case op.IsWrite() || op.condFailed():
			in = kvInput{Kind: op.Kind, Value: op.Value}
			if op.IfRevision != nil {
				in.Cond, in.IfRev = true, *op.IfRevision
			}
			o = kvOutput{Rev: op.Revision, Deleted: op.Deleted, Ambiguous: op.Outcome == Ambiguous, Refused: op.condFailed()}
		case op.Kind == OpGet && op.Outcome == OK:
			in = kvInput{Kind: OpGet}
			o = kvOutput{Found: op.Found, Value: op.Value, Rev: op.Revision}
		default:
			continue
		}
		ret := op.Return
		if op.IsWrite() && op.Outcome == Ambiguous {
			ret = end + 1
		}
		out = append(out, porcupine.Operation{
			ClientId: op.Client + 1,
			Input:    in,
			Call:     int64(op.Invoke),
			Output:   o,
			Return:   int64(ret),
			Metadata: fmt.Sprintf("op %d %s %s attempts=%d epoch=%d leader=%s %s", op.ID, op.Kind, op.Outcome, op.Attempts, op.Epoch, op.Leader, op.Code),
		})
	}
	return out
}

// byKey groups ops by key, keys sorted.
func byKey(ops []Op) ([]string, map[string][]Op) {
	m := make(map[string][]Op)
	for _, op := range ops {
		m[op.Key] = append(m[op.Key], op)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys, m
}

// CheckLinearizable checks, key by key, that the writes and the leader
// reads of ops are linearizable, giving each key at most timeout (0: no
// limit). Local reads are not part of it.
func CheckLinearizable(ops []Op, timeout time.Duration) LinResult {
	res := LinResult{Verdict: VerdictOK, infos: map[string]porcupine.LinearizationInfo{}}
	keys, m := byKey(ops)
	for _, key := range keys {
		hist := linOps(m[key])
		if len(hist) == 0 {
			continue
		}
		res.Keys++
		res.Ops += len(hist)
		verdict, info := porcupine.CheckOperationsVerbose(kvModel, hist, timeout)
		switch verdict {
		case porcupine.Illegal:
			res.BadKeys = append(res.BadKeys, key)
			res.infos[key] = info
		case porcupine.Unknown:
			res.Unknown = append(res.Unknown, key)
		}
	}
	switch {
	case len(res.BadKeys) > 0:
		res.Verdict = VerdictIllegal
	case len(res.Unknown) > 0:
		res.Verdict = VerdictUnknown
	}
	return res
}

// Violations returns one violation per key that is not linearizable.
func (r LinResult) Violations() []Violation {
	var out []Violation
	for _, k := range r.BadKeys {
		out = append(out, Violation{Check: CheckLinearizability, Key: k,
			Detail: "the writes and leader reads of this key have no linearization (see lin-" + fileSafe(k) + ".html)"})
	}
	return out
}

// WriteVisualizations writes porcupine's HTML view of every key that is
// not linearizable into dir, as lin-<key>.html.
func (r LinResult) WriteVisualizations(dir string) error {
	for key, info := range r.infos {
		if err := porcupine.VisualizePath(kvModel, info, filepath.Join(dir, "lin-"+fileSafe(key)+".html")); err != nil {
			return err
		}
	}
	return nil
}

func fileSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' {
			return r
		}
		return '_'
	}, s)
}

// ----------------------------------------------------------------------------
// Values read

// writeIndex finds the put or create that wrote each value (values are
// unique per run).
type writeIndex map[string]Op

func indexWrites(ops []Op) writeIndex {
	idx := make(writeIndex)
	for _, op := range ops {
		if op.writesValue() {
			idx[op.Key+"\x00"+op.Value] = op
		}
	}
	return idx
}

func (w writeIndex) get(key, value string) (Op, bool) {
	op, ok := w[key+"\x00"+value]
	return op, ok
}

// CheckReadValues checks that every answered read that found a value
// returned one that a put or create of the same key sent before the read
// returned, and that the write was not classified failed (a refused
// compare-and-set or create included). A value with ForgedPrefix
// is reported as read from an attacker.
func CheckReadValues(ops []Op) []Violation {
	idx := indexWrites(ops)
	var out []Violation
	for _, r := range ops {
		if !r.IsRead() || !r.Found {
			continue
		}
		w, ok := idx.get(r.Key, r.Value)
		switch {
		case !ok && strings.HasPrefix(r.Value, ForgedPrefix):
			out = append(out, Violation{Check: CheckForgedValue, Key: r.Key, Node: r.Node, Ops: []int{r.ID},
				Detail: fmt.Sprintf("op %d (%s read at %s) returned %q, which only the attacker sent", r.ID, r.Kind, fmtDur(r.Return), r.Value)})
		case !ok:
			out = append(out, Violation{Check: CheckUnknownValue, Key: r.Key, Node: r.Node, Ops: []int{r.ID},
				Detail: fmt.Sprintf("op %d (%s read at %s) returned %q, which no put of this key wrote", r.ID, r.Kind, fmtDur(r.Return), r.Value)})
		case w.Outcome == Failed:
			out = append(out, Violation{Check: CheckFailedSeen, Key: r.Key, Node: r.Node, Ops: []int{w.ID, r.ID},
				Detail: fmt.Sprintf("op %d read %q, written by op %d, which was classified failed (last answer %s: %s)", r.ID, r.Value, w.ID, w.Code, w.Err)})
		case w.Invoke > r.Return:
			out = append(out, Violation{Check: CheckReadEarly, Key: r.Key, Node: r.Node, Ops: []int{w.ID, r.ID},
				Detail: fmt.Sprintf("op %d returned %q at %s, before op %d sent it at %s", r.ID, r.Value, fmtDur(r.Return), w.ID, fmtDur(w.Invoke))})
		}
	}
	return out
}

// CheckFresh checks reads against the acknowledged writes before them. A
// read (of any kind) invoked after an acknowledged put or create of its
// key returned must find a value, unless a delete that was not refused
// may have taken effect after that write and before the read returned;
// and the value found must come from a write that no acknowledged write
// (a delete included) started after (an ambiguous write may take effect
// at any time after it was sent). It is the rule for the final reads of
// the survivors, and for copies that confirmed every acknowledged write
// (acks=all). It returns how many reads it checked. Reads of unknown
// values are left to CheckReadValues.
func CheckFresh(ops []Op, reads []Op) (int, []Violation) {
	idx := indexWrites(ops)
	_, m := byKey(ops)
	checked := 0
	var out []Violation
	for _, r := range reads {
		if !r.IsRead() {
			continue
		}
		checked++
		var acked []Op // acknowledged before r was sent
		for _, w := range m[r.Key] {
			if w.Acked() && w.Return < r.Invoke {
				acked = append(acked, w)
			}
		}
		if len(acked) == 0 {
			continue
		}
		if !r.Found {
			if last, ok := undeletedWrite(m[r.Key], acked, r); ok {
				out = append(out, Violation{Check: CheckLostAck, Key: r.Key, Node: r.Node, Ops: []int{last.ID, r.ID},
					Detail: fmt.Sprintf("op %d (%s read of %s at %s) found nothing; op %d had acknowledged %q at %s (epoch %d, leader %s), and no delete may have followed it",
						r.ID, r.Kind, nodeOr(r.Node), fmtDur(r.Invoke), last.ID, last.Value, fmtDur(last.Return), last.Epoch, last.Leader)})
			}
			continue
		}
		w, ok := idx.get(r.Key, r.Value)
		if !ok {
			continue // CheckReadValues reports it
		}
		wRet := w.Return
		if w.Outcome == Ambiguous {
			wRet = math.MaxInt64
		}
		for _, a := range acked {
			if a.ID != w.ID && a.Invoke > wRet {
				what := fmt.Sprintf("acknowledged %q", a.Value)
				if a.Kind == OpDelete {
					what = "acknowledged a delete"
				}
				out = append(out, Violation{Check: CheckLostAck, Key: r.Key, Node: r.Node, Ops: []int{w.ID, a.ID, r.ID},
					Detail: fmt.Sprintf("op %d (%s read of %s at %s) returned %q of op %d (returned %s), but op %d, sent later at %s, had %s at %s (epoch %d, leader %s)",
						r.ID, r.Kind, nodeOr(r.Node), fmtDur(r.Invoke), r.Value, w.ID, fmtDur(w.Return), a.ID, fmtDur(a.Invoke), what, fmtDur(a.Return), a.Epoch, a.Leader)})
				break
			}
		}
	}
	return checked, out
}

// undeletedWrite returns the acknowledged put or create among acked (of
// r's key, all returned before r was sent) that was sent last, if no
// delete of the key that was not refused may have taken effect after it
// and before r returned: a read that finds nothing misses it.
func undeletedWrite(keyOps, acked []Op, r Op) (Op, bool) {
	var last Op
	found := false
	for _, a := range acked {
		if a.writesValue() && (!found || a.Invoke > last.Invoke) {
			last, found = a, true
		}
	}
	if !found {
		return Op{}, false
	}
	for _, d := range keyOps {
		if d.Kind != OpDelete || !d.IsWrite() || d.Invoke > r.Return {
			continue
		}
		if d.Outcome == Ambiguous || d.Return > last.Invoke {
			return Op{}, false
		}
	}
	return last, true
}

func nodeOr(n string) string {
	if n == "" {
		return "?"
	}
	return n
}

// CheckReadYourWrites checks the min_revision reads: one that was
// answered must find the key at a revision no older than the one it waited
// for (the client's own acknowledged write of it), or find it absent if a
// delete of the key that was not refused was sent before the read
// returned. It returns how many it checked.
func CheckReadYourWrites(ops []Op) (int, []Violation) {
	n := 0
	var out []Violation
	deletes := map[string][]Op{}
	for _, op := range ops {
		if op.Kind == OpDelete && op.IsWrite() {
			deletes[op.Key] = append(deletes[op.Key], op)
		}
	}
	for _, r := range ops {
		if r.MinRevision == 0 || !r.IsRead() {
			continue
		}
		n++
		deleted := slices.ContainsFunc(deletes[r.Key], func(d Op) bool { return d.Invoke < r.Return })
		if (!r.Found && !deleted) || (r.Found && r.Revision < r.MinRevision) {
			out = append(out, Violation{Check: CheckOwnWrite, Key: r.Key, Node: r.Node, Ops: []int{r.ID},
				Detail: fmt.Sprintf("op %d: %s answered a read at min_revision %d with found=%v revision %d", r.ID, r.Node, r.MinRevision, r.Found, r.Revision)})
		}
	}
	return n, out
}

// ----------------------------------------------------------------------------
// Fencing

// CheckDeposedAcks checks that leader, deposed from epoch, acknowledged no
// write sent after from (when it could no longer lead) and none that
// returned after until (when it came back).
func CheckDeposedAcks(ops []Op, leader string, epoch uint64, from, until time.Duration) []Violation {
	var out []Violation
	for _, op := range ops {
		if !op.Acked() || op.Leader != leader || op.Epoch != epoch {
			continue
		}
		if op.Invoke > from || op.Return > until {
			out = append(out, Violation{Check: CheckDeposedAck, Key: op.Key, Node: leader, Ops: []int{op.ID},
				Detail: fmt.Sprintf("op %d sent at %s, acknowledged at %s by %s under its old epoch %d (deposed from %s, resumed at %s)",
					op.ID, fmtDur(op.Invoke), fmtDur(op.Return), leader, epoch, fmtDur(from), fmtDur(until))})
		}
	}
	return out
}

// WireUpdate is one message seen on the replication subject.
type WireUpdate struct {
	At time.Duration `json:"at"`
	bus.Update
}

// EpochStats are the figures of CheckEpochs.
type EpochStats struct {
	// FencedOnWire counts puts of an older epoch seen on the replication
	// subject after a newer epoch's marker or put: updates a deposed
	// leader sent, which every other server must drop.
	FencedOnWire int `json:"fenced_on_wire"`
	// ReadsChecked counts the answered reads of a value whose epoch is
	// known.
	ReadsChecked int `json:"reads_checked"`
}

// CheckEpochs checks that no server applied an update of an older epoch
// after a newer one:
//
//   - the reads of one key on one node never go from a value of a newer
//     epoch to a value of an older one;
//   - no server other than its sender returns the value of a put that was
//     seen on the wire after a newer epoch had started (a fenced update).
//
// The epoch of a value a read returned is the epoch under which it was
// replicated (from wire) or acknowledged (from the put's reply) before the
// read returned, the newest if several (if none was seen before, the
// newest at all). A value can be applied under two epochs: a write that
// was replicated but logged nowhere before every server was killed, and
// applied again when its client retried.
func CheckEpochs(ops []Op, wire []WireUpdate) (EpochStats, []Violation) {
	var st EpochStats
	type sighting struct {
		at    time.Duration
		epoch uint64
	}
	epochOf := map[string]uint64{}
	seen := map[string][]sighting{}
	note := func(key, value string, e uint64, at time.Duration) {
		k := key + "\x00" + value
		epochOf[k] = max(epochOf[k], e)
		seen[k] = append(seen[k], sighting{at, e})
	}
	epochAt := func(r Op) uint64 {
		k := r.Key + "\x00" + r.Value
		var e uint64
		for _, s := range seen[k] {
			if s.at <= r.Return {
				e = max(e, s.epoch)
			}
		}
		if e == 0 {
			return epochOf[k]
		}
		return e
	}
	for _, op := range ops {
		if op.Acked() && op.writesValue() && op.Epoch != 0 {
			note(op.Key, op.Value, op.Epoch, op.Return)
		}
	}
	var newest uint64
	fenced := map[string]WireUpdate{}
	fresh := map[string]bool{}
	for _, u := range wire {
		if u.Kind == bus.KindPut {
			k := u.Key + "\x00" + u.Value
			note(u.Key, u.Value, u.Epoch, u.At)
			if u.Epoch < newest {
				st.FencedOnWire++
				fenced[k] = u
			} else {
				fresh[k] = true
			}
		}
		newest = max(newest, u.Epoch)
	}
	var out []Violation
	for _, r := range ops {
		if !r.IsRead() || !r.Found {
			continue
		}
		k := r.Key + "\x00" + r.Value
		if u, ok := fenced[k]; ok && !fresh[k] && r.Node != u.Leader {
			out = append(out, Violation{Check: CheckStaleEpoch, Key: r.Key, Node: r.Node, Ops: []int{r.ID},
				Detail: fmt.Sprintf("op %d: %s returned %q, a put of epoch %d from %s seen on the wire at %s, after a newer epoch had started",
					r.ID, r.Node, r.Value, u.Epoch, u.Leader, fmtDur(u.At))})
		}
	}
	// Per node and key, reads in invocation order.
	type nk struct{ node, key string }
	groups := map[nk][]Op{}
	for _, r := range ops {
		if r.Kind != OpLocalGet || !r.IsRead() || !r.Found {
			continue
		}
		if _, ok := epochOf[r.Key+"\x00"+r.Value]; !ok {
			continue
		}
		st.ReadsChecked++
		groups[nk{r.Node, r.Key}] = append(groups[nk{r.Node, r.Key}], r)
	}
	gkeys := make([]nk, 0, len(groups))
	for g := range groups {
		gkeys = append(gkeys, g)
	}
	slices.SortFunc(gkeys, func(a, b nk) int { return cmp.Or(cmp.Compare(a.node, b.node), cmp.Compare(a.key, b.key)) })
	for _, g := range gkeys {
		reads := groups[g]
		for _, r := range reads {
			e := epochAt(r)
			for _, p := range reads {
				pe := epochAt(p)
				if p.Return < r.Invoke && pe > e {
					out = append(out, Violation{Check: CheckStaleEpoch, Key: r.Key, Node: r.Node, Ops: []int{p.ID, r.ID},
						Detail: fmt.Sprintf("%s returned %q (epoch %d) in op %d at %s, then %q (epoch %d) in op %d at %s",
							r.Node, p.Value, pe, p.ID, fmtDur(p.Return), r.Value, e, r.ID, fmtDur(r.Invoke))})
					break
				}
			}
		}
	}
	return st, out
}

// fmtDur prints an offset in seconds with millisecond precision.
func fmtDur(d time.Duration) string {
	if d >= math.MaxInt64/2 {
		return "end"
	}
	return fmt.Sprintf("%.3fs", d.Seconds())
}

// writeFileAtomic is os.WriteFile through a temporary file, so a reader
// never sees half a report.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// ----------------------------------------------------------------------------
// Watch and time to live

// CheckWatch checks the updates a watch from revision from delivered,
// through revision through (the highest it must have reached):
//
//   - revisions strictly increase, none below from (watch-order);
//   - every acknowledged put, create or delete that applied at a revision
//     in [from, through] is there at that revision (watch-gap), with its
//     kind, key and value (watch-mismatch);
//   - every put delivered wrote a value some put of its key sent
//     (watch-mismatch).
//
// Updates past through are checked for order and content only.
func CheckWatch(ops []Op, from, through uint64, ups []bus.Update) []Violation {
	var out []Violation
	bySeq := make(map[uint64]bus.Update, len(ups))
	for i, u := range ups {
		switch {
		case u.Seq < from:
			out = append(out, Violation{Check: CheckWatchOrder, Key: u.Key,
				Detail: fmt.Sprintf("update %d (%s of %q at revision %d) is before the watch's start %d", i, u.Kind, u.Key, u.Seq, from)})
		case i > 0 && u.Seq == ups[i-1].Seq:
			out = append(out, Violation{Check: CheckWatchOrder, Key: u.Key,
				Detail: fmt.Sprintf("update %d repeats revision %d (%s of %q)", i, u.Seq, u.Kind, u.Key)})
		case i > 0 && u.Seq < ups[i-1].Seq:
			out = append(out, Violation{Check: CheckWatchOrder, Key: u.Key,
				Detail: fmt.Sprintf("update %d is at revision %d (%s of %q), after revision %d", i, u.Seq, u.Kind, u.Key, ups[i-1].Seq)})
		}
		if _, ok := bySeq[u.Seq]; !ok {
			bySeq[u.Seq] = u
		}
	}
	for _, op := range ops {
		if !op.Acked() || op.noOp() || op.Revision < from || op.Revision > through || op.Revision == 0 {
			continue
		}
		u, ok := bySeq[op.Revision]
		if !ok {
			out = append(out, Violation{Check: CheckWatchGap, Key: op.Key, Ops: []int{op.ID},
				Detail: fmt.Sprintf("revision %d of op %d (%s of %q, acknowledged at %s) is missing from the watch from %d through %d",
					op.Revision, op.ID, op.Kind, op.Key, fmtDur(op.Return), from, through)})
			continue
		}
		if !watchMatches(op, u) {
			out = append(out, Violation{Check: CheckWatchMismatch, Key: op.Key, Ops: []int{op.ID},
				Detail: fmt.Sprintf("revision %d: the watch delivered %s, but op %d acknowledged %s there", op.Revision, describeUpdate(u), op.ID, describeWrite(op))})
		}
	}
	idx := indexWrites(ops)
	for _, u := range ups {
		if u.Kind != bus.KindPut {
			continue
		}
		if _, ok := idx.get(u.Key, u.Value); !ok {
			out = append(out, Violation{Check: CheckWatchMismatch, Key: u.Key,
				Detail: fmt.Sprintf("revision %d: the watch delivered %s, a value no put of this key sent", u.Seq, describeUpdate(u))})
		}
	}
	return out
}

// watchMatches reports whether u is what the acknowledged write op
// applied.
func watchMatches(op Op, u bus.Update) bool {
	if u.Key != op.Key {
		return false
	}
	if op.Kind == OpDelete {
		return u.Kind == bus.KindDelete && !u.Prefix && !u.Expired
	}
	return u.Kind == bus.KindPut && u.Value == op.Value
}

func describeUpdate(u bus.Update) string {
	switch {
	case u.Kind == bus.KindPut:
		return fmt.Sprintf("put %q=%q", u.Key, u.Value)
	case u.Expired:
		return fmt.Sprintf("expiry of %q", u.Key)
	case u.Prefix:
		return fmt.Sprintf("delete of prefix %q", u.Key)
	}
	return fmt.Sprintf("%s of %q", u.Kind, u.Key)
}

func describeWrite(op Op) string {
	if op.Kind == OpDelete {
		return fmt.Sprintf("delete of %q", op.Key)
	}
	return fmt.Sprintf("%s %q=%q", op.Kind, op.Key, op.Value)
}

// CheckExpired checks the final reads of the keys written with a time to
// live: a read invoked more than margin after the time to live of the
// key's last write had passed (counted from its acknowledgement, which is
// after the leader set the deadline) must find the key absent. Keys whose
// last write is not an acknowledged put with a time to live, or with a
// write that may have applied after it (an ambiguous one), are skipped.
// It returns how many keys it checked.
func CheckExpired(ops []Op, reads []Op, margin time.Duration) (int, []Violation) {
	due := dueTTL(ops)
	checked := map[string]bool{}
	var out []Violation
	for _, r := range reads {
		w, ok := due[r.Key]
		if !ok || !r.IsRead() || r.Invoke < w.Return+w.TTL+margin {
			continue
		}
		checked[r.Key] = true
		if r.Found {
			out = append(out, Violation{Check: CheckTTLExpiry, Key: r.Key, Node: r.Node, Ops: []int{w.ID, r.ID},
				Detail: fmt.Sprintf("op %d (%s read of %s at %s) found %q at revision %d; op %d wrote it with a time to live of %s, acknowledged at %s",
					r.ID, r.Kind, nodeOr(r.Node), fmtDur(r.Invoke), r.Value, r.Revision, w.ID, w.TTL, fmtDur(w.Return))})
		}
	}
	return len(checked), out
}

// dueTTL returns, by key, the last write of each key whose last write is
// an acknowledged put with a time to live and that no ambiguous write may
// have rewritten: the key must go once that time to live passes.
func dueTTL(ops []Op) map[string]Op {
	_, m := byKey(ops)
	due := map[string]Op{}
	for key, keyOps := range m {
		var last Op
		found, unsure := false, false
		for _, w := range keyOps {
			if !w.IsWrite() {
				continue
			}
			if w.Outcome == Ambiguous {
				unsure = true
				continue
			}
			if !found || w.Revision > last.Revision {
				last, found = w, true
			}
		}
		if found && !unsure && last.writesValue() && last.TTL > 0 {
			due[key] = last
		}
	}
	return due
}

// CheckWatchExpiries checks that a watch from revision from, which ran
// until stopped (a time of the run), delivered the expiry of every key
// CheckExpired would check whose time to live passed more than margin
// before stopped: a delete of the key marked expired, after the put.
func CheckWatchExpiries(ops []Op, from uint64, ups []bus.Update, stopped, margin time.Duration) []Violation {
	var out []Violation
	for key, w := range dueTTL(ops) {
		if w.Revision < from || w.Return+w.TTL+margin > stopped {
			continue
		}
		if !slices.ContainsFunc(ups, func(u bus.Update) bool {
			return u.Kind == bus.KindDelete && u.Expired && u.Key == key && u.Seq > w.Revision
		}) {
			out = append(out, Violation{Check: CheckWatchGap, Key: key, Ops: []int{w.ID},
				Detail: fmt.Sprintf("the watch has no expiry of %q, which op %d wrote at revision %d with a time to live of %s, acknowledged at %s; the watch ran until %s",
					key, w.ID, w.Revision, w.TTL, fmtDur(w.Return), fmtDur(stopped))})
		}
	}
	slices.SortFunc(out, func(a, b Violation) int { return cmp.Compare(a.Key, b.Key) })
	return out
}
