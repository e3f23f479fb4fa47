package chaos

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// caseText is what the report says about a case.
type caseText struct {
	title string
	// how describes the fault and the checks; %[1]s is the session timeout,
	// %[2]s the long session timeout, %[3]s the margin, %[4]s the write
	// timeout.
	how string
}

var caseTexts = map[string]caseText{
	CaseKillLeader: {"SIGKILL of the leader under write load", `Three servers run with ` + "`--acks all`" + ` and a session timeout of %[1]s; the
concurrent clients write, read through the leader and read local copies
(the full suite also runs the variants ` + "`acks-majority`" + ` and ` + "`acks-leader`" + `,
where a lost acknowledged write is counted as allowed, not as a violation,
since those levels do not promise to outlive the leader). After
the warm-up the leader is killed with SIGKILL. The load goes on through the
election and for a while after it; then every key is read with
` + "`consistency=leader`" + ` and from each survivor's own copy. Checked: no acknowledged
write is missing (each read returns the last acknowledged value of the key or
a later write's), the writes and leader reads of each key are linearizable,
no read returns a value nobody wrote or a write classified failed, and
min_revision reads see the client's own write.`},
	CasePauseLeader: {"SIGSTOP of the leader past its session timeout, then SIGCONT", `Three servers with ` + "`--acks all`" + ` and a session timeout of %[1]s. The leader is
stopped with SIGSTOP; it stays stopped until a new leader has acknowledged
writes and at least twice the session timeout has passed, then gets SIGCONT.
Checked, besides the checks of kill-leader: the old leader acknowledges
nothing sent after it was stopped or answered after it resumed (every such
acknowledgement carries the new epoch and leader); no server's copy of a key
goes from a value of a newer epoch back to one of an older epoch, and no
server other than its sender returns the value of an update that appeared on
the replication subject after a newer epoch began (the epoch of every value
comes from a watcher of the replication subject and from the write replies).
` + "`dropped_old_epoch`" + ` counts the old-epoch messages the servers refused.`},
	CaseZKPartition: {"The leader cut off from ZooKeeper only", `Every server reaches the one ZooKeeper through its own proxy (toxiproxy,
in the suite's process); NATS is untouched. The leader's proxy is cut: its
connections are closed and new ones are reset at their first byte. Session
timeout %[1]s, ` + "`--acks all`" + `. Measured: how long after the cut the old
leader still acknowledged writes (bound: session timeout + %[3]s) and how long
until a new leader reported itself. The proxy is healed after at least
the session timeout plus the margin, and the old leader must come back as a
follower of the new epoch. The kill-leader checks apply.`},
	CaseNATSCutLeader: {"The leader cut off from NATS only (a false positive of fast failover)", `Every server reaches NATS through its own proxy; ZooKeeper is untouched.
Session timeout %[1]s, ` + "`--acks all`" + `, fast failover on (the default). The
leader's NATS proxy is cut: its subscriptions vanish, the next in line sees
"no responders", deposes it in ZooKeeper and leads the next epoch, while the
old leader keeps running. Checked, besides the kill-leader checks (no
acknowledged write lost): the old leader acknowledges nothing sent or answered
later than a tenth of the session timeout plus %[3]s after the cut, and once
its NATS connection is healed it follows the new epoch.`},
	CaseZnodeRemoved: {"The leader's election znode removed while it runs", `Three servers with ` + "`--acks all`" + ` (session timeout %[1]s). The leader's
election znode is deleted from outside under load, as the next in line does
when fast failover sees the leader gone: the leader must notice (its watch on
its znode, its lease round trips), stop acknowledging and register again at
the back, and the next in line leads the next epoch. Checked, besides the
kill-leader checks: the old leader acknowledges nothing sent or answered later
than a tenth of the session timeout plus %[3]s after the deletion.`},
	CaseNATSRestart: {"The NATS server restarted", `The embedded NATS server is shut down and started again on the same port
under load (` + "`--acks leader`" + `, the default; session timeout %[2]s). One follower is
stopped (SIGSTOP) across the restart, below its session timeout, so that it
reconnects last and surely misses updates; the other servers reconnect on
their own. Checked: every server answers again, writes resume, and every copy
that differs from the leader's reports ` + "`stale`" + ` (without ` + "`--catch-up`" + `), or
every copy becomes current again and equals the leader's (with
` + "`--catch-up`" + `). Leader reads and writes must stay linearizable: the leader
does not change.`},
	CaseZKEnsemble: {"A ZooKeeper ensemble loses one member, then two", `A 3-member ZooKeeper ensemble; session timeout %[2]s; ` + "`--acks all`" + `. First the
ensemble's own leader is killed: writes must go on (the longest pause between
two acknowledgements is measured). Then a second member is killed, leaving
no quorum: after the session timeout plus %[3]s no write may be acknowledged,
and every server must still answer local reads, each holding every
acknowledged write (with acks=all each of them confirmed it). Both members
are then restarted and writes must resume. The kill-leader checks apply to
the whole history.`},
	CaseEmptySurvivor: {"The only survivor is an empty, just-restarted server", `Three servers with ` + "`--acks all`" + ` (session timeout %[2]s) take acknowledged
writes. In the ` + "`no-catch-up`" + ` and ` + "`catch-up`" + ` variants the first leader is
first stopped with SIGTERM, so that its successor's leader znode records a
non-zero takeover revision, and is restarted; more writes follow. Then all
three servers are killed at once and one follower is restarted alone, empty,
before the others' sessions expire. Probe writes are sent for three session
timeouts after the others' sessions expired. Without ` + "`--catch-up`" + ` the lone
server is expected to lead with its empty store (the specification's
behaviour: acknowledged writes are lost, and the checker must say so); with
` + "`--catch-up`" + ` it must know it is behind and refuse to lead (no write
acknowledged). The ` + "`catch-up-first-epoch`" + ` variant skips the handover, so the
leader znode's takeover revision is 0: it records what happens then.`},
	CaseHostileClient: {"A client without the cluster key attacks under acks=all load", `Three servers with ` + "`--acks all`" + ` (session timeout %[2]s or more) under the
concurrent load. After the warm-up an attacker on a plain NATS connection,
without the cluster key, learns the cluster id and the stream position from
the servers' messages and publishes, about 300 times a second, forged
replication puts and deletes of real keys (the next revision, far ahead, a
huge epoch), epoch markers and heartbeats at sequence 2^53, real signed
messages (deletes among them) replayed onto their own and other subjects or
with another body, and garbage, each unsigned and signed with its own key
under the real cluster id; it forges an ack of every put and delete in the
name of every server; and it sends writes with malformed conditions
(` + "`if_revision`" + ` negative, past 2^53, a string or a fraction, on a create, a
delete with a value, an unknown ` + "`op`" + `) to the leader's and each server's write
subject, each of which must be refused. In ` + "`pause-replica`" + ` one replica is stopped (SIGSTOP)
for longer than the write timeout (%[4]s) during the attack, well within its
session, so acks=all writes must time out rather than count its forged acks.
Checked, besides the kill-leader checks (a forged delete that took effect
shows as a key gone without an acknowledged delete): no read returns a forged
value; no malformed write is accepted; the leader and epoch do not change; every acks=all reply counts only
confirmations of members, and none sent while the replica was stopped claims
all three; every server counted unsigned and forged messages, none diverged,
missed an update or went stale, and every server is ready afterwards.`},
	CaseFullRestart: {"Every server killed under acks=all load and restarted empty", `Three servers with ` + "`--acks all`" + ` (session timeout %[1]s) under the concurrent
load; all three are killed with SIGKILL and restarted at once, empty. Without
` + "`--catch-up`" + ` the data is lost by design (counted, not a violation) but
must be reported: the new leader's ` + "`lost_revisions`" + ` must reach the highest
revision acknowledged before the kill. With ` + "`--catch-up`" + ` no server may lead
or acknowledge a write, and each must say it is behind (not ready, stale), for
the session timeout plus %[3]s and the warm-up; then the operator step
restarts one server with ` + "`--force-lead`" + `, which must become the leader, and
the others must catch up from it. In both, revisions never go backwards: every
write acknowledged after the restart has a revision above every one
acknowledged before.`},
	CaseDurableFull: {"Every server killed under acks=all load and restarted from its data directory", `Three servers with ` + "`--acks all`" + `, each with a data directory (` + "`--data-dir`" + `,
` + "`--fsync always`" + `, ` + "`--snapshot-bytes 8192`" + `, so that every run writes snapshots and
a restart loads a snapshot and the log after it), session timeout %[1]s, under
the concurrent load; all three are killed with SIGKILL at once and restarted in
a random order (the seed and the order are in the facts), each after a random
pause of up to a few seconds (more than the session timeout, so that in some
runs the first server back is alone long enough to be elected). The full suite
runs this case 20 times. Checked: every server logs loading its data directory
at a revision no lower than the highest acknowledged before the kill (each
confirmed it only once logged); a leader of a newer epoch is elected and reports
nothing lost (` + "`lost_revisions`" + ` 0); writes resume; every server becomes
current (ready, not stale, not behind the cluster record) and ends with exactly
the leader's copy; revisions go on above every one acknowledged before; and the
kill-leader checks on the whole history: no acknowledged write is missing, the
history is linearizable, no stale-epoch apply. One exception is counted, not
failed: a key whose history is not linearizable because a leader read or a
refused condition reported, before the kill, a revision that no acknowledged
write has (the leader answers from writes it has not logged yet; see the
findings); any other key that is not linearizable is a violation.`},
	CaseDurableTorn: {"A torn last log record", `Three servers with ` + "`--acks all`" + ` and data directories (session timeout %[1]s)
under the concurrent load. A follower is killed with SIGKILL and the last whole
record of its newest log segment is cut in the middle (the file truncated inside
the record's payload, as a crash during its write would leave it). Once the
other two acknowledge writes again, it is restarted. Checked: it starts,
reports the cut at WARN with the segment and exactly the bytes of the cut
record that were left, loads what came before, catches up and ends with exactly
the leader's copy; no acknowledged write is missing and the history is
linearizable.`},
}

// timeOrder is the order of the time columns.
var timeOrder = []string{TimeStopAck, TimeNewLeader, TimeFirstAck, TimeUnavailable, TimePause, TimeRejoin, TimeReconnect, TimeResume, TimeStaleSeen, TimeCatchUp,
	"1 lost: " + TimeUnavailable, "2 lost: " + TimeStopAck, TimeRestartGap, TimeLeadAlone, TimeAttack, TimeForceLead, TimeRestarted, TimeLoaded}

// Report renders results as the Markdown of docs/reliability.md.
func Report(res *Results) []byte {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	cfg := res.Config
	w("# Reliability\n\n")
	w("What zkv keeps and loses under real faults, measured by the fault suite in\n")
	w("`testdriver/chaos`: real ZooKeeper, NATS and kvserver processes on loopback,\n")
	w("concurrent clients recording every operation, one fault per case, and checks\n")
	w("on the recorded history. This file is written by `make chaos`; do not edit it\n")
	w("by hand. `make chaos-quick` runs every case once with shorter phases (for CI,\n")
	w("a few minutes) and leaves its report with the logs under `logs/chaos/`. Both\n")
	w("exit non-zero on any violation.\n\n")
	if !res.Config.Quick && strings.Contains(res.Command, "--out "+DefaultReport) {
		w("`make chaos` runs:\n\n")
	}
	w("```sh\n%s\n```\n\n", res.Command)
	w("| | |\n|---|---|\n")
	w("| started | %s |\n", res.Started.UTC().Format("2006-01-02 15:04 MST"))
	w("| took | %s |\n", res.Elapsed.Round(time.Second))
	m := res.Machine
	w("| machine | %s, %d cores, %d GiB; load average at start %s (shared with other builds) |\n", m.CPU, m.Cores, m.MemoryGiB, m.Load)
	w("| software | %s, %s, %s, %s |\n", m.OS+" "+m.Kernel, m.Go, m.Java, m.ZooKeeper)
	w("| settings | runs: %d per case and variant%s; %d clients, %d keys, %s between a client's operations, session timeout %s (%s where noted), write timeout %s, margin %s |\n\n",
		cfg.Runs, ownRuns(cfg), cfg.Clients, cfg.Keys, cfg.OpInterval, cfg.SessionTimeout, max(2*cfg.SessionTimeout, 4*time.Second), cfg.WriteTimeout, cfg.Margin)

	// Summary.
	w("## Summary\n\n")
	w("| case | runs | operations | writes acknowledged | acknowledged writes lost | linearizable | stale-epoch applies | violations |\n")
	w("|---|---:|---:|---:|---:|---|---:|---:|\n")
	totalViol := 0
	for _, group := range groupRuns(res.Runs) {
		t := totalsOf(group.runs)
		totalViol += t.viol
		lostCell := fmt.Sprint(t.lost)
		if t.expLost > 0 {
			lostCell = fmt.Sprintf("%d (+%d by design)", t.lost, t.expLost)
		}
		w("| %s | %d | %d | %d | %s | %s | %d | %d |\n", group.label, len(group.runs), t.ops, t.acked, lostCell, verdictSummary(t.verdicts), t.stale, t.viol)
	}
	w("\n")
	if totalViol == 0 && !res.Failed() {
		w("**No violations.** Every acknowledged write was found again, every history\n")
		w("that must be linearizable was, and no server applied an update of an older\n")
		w("epoch after a newer one.\n\n")
	} else {
		w("**%d violation(s)**; each is listed under its case with the operations that\n", totalViol)
		w("show it.\n\n")
	}

	writeViolations(&b, res)

	w("## How a history is checked\n\n")
	w(`Each client has its own NATS connection and ` + "`client.Client`" + `, writes a fresh,
unique value every time, and records for every operation its invocation and
return time (monotonic clock), the key, the value written or read, the
revision, epoch and leader of the reply, and the outcome. Of its writes
(45%% of its operations), 10%% are deletes, 10%% creates and 15%%
compare-and-sets (` + "`if_revision`" + ` at the revision the client last read or was
told of the key; one in three a delete), the rest plain puts. Writes are sent
by the suite itself, with one request ID for all attempts (the leader applies
a request ID once), because their outcome must be judged from every attempt's
answer, which ` + "`client.Client.Put`" + ` hides behind its retries.

The rule for a write's outcome:

| outcome | when | in the checks |
|---|---|---|
| ok | some attempt was acknowledged | a write that happened between invocation and return |
| failed | every attempt got "no responders", a validation error, or a not_leader that the leader gives **before** applying (` + "`is not the leader`" + `, ` + "`cannot confirm its ZooKeeper session`" + `, ` + "`a newer epoch ... exists`" + `) | never happened: a read of its value is a violation |
| refused (failed with code ` + "`conflict`" + ` or ` + "`exists`" + `) | an attempt was answered so (a retry of an applied write gets its first reply, never a refusal caused by itself) | applied nothing; the key's revision it carries must be the key's then, and its condition must not hold |
| ambiguous | any attempt had no answer (timeout, connection lost), or was answered ` + "`timeout`" + `, ` + "`unavailable`" + `, ` + "`internal`" + ` or a not_leader given **after** applying (` + "`may or may not survive`" + `, ` + "`while revision N was being confirmed`" + `) | may take effect at any time after its invocation, or never: for porcupine it returns at the end of the history |

Plain puts go to the leader subject. 30%% of the deletes, creates and
compare-and-sets go to a random running server's ` + "`kv.node.<id>.write`" + `
instead: a server retries a not_leader answer itself and ends with
` + "`no_leader`" + `, which can then follow an attempt that was applied, so there
every error answer but ` + "`conflict`" + ` and ` + "`exists`" + ` counts as ambiguous.

Linearizability is checked per key with porcupine (github.com/anishathalye/porcupine
v1.3.1) on the writes (ok and ambiguous) and the reads with
` + "`consistency=leader`" + `, against a model of one key: absent, or a value at a
revision. Revisions are store-wide, so the model does not predict them: an
acknowledged write's revision becomes the key's, and every later report of it
(a read, the revision a refusal carries) must agree. A compare-and-set or
conditional delete may succeed only at the key's revision (` + "`if_revision`" + ` 0:
absent), a create only on an absent key, a delete that removed the key only
if it was present and one that removed nothing only if it was absent; a
refusal is legal only when the condition does not hold. An ambiguous write
takes effect if its condition holds where it is placed, and its revision is
unknown until a read reports it. Local reads are not linearizable by design
and are checked only for values that were written, for the fencing rule, and,
at the end, for holding every acknowledged write (a copy may find a key
absent only if a delete may have followed its last acknowledged write). A
read at ` + "`min_revision`" + ` (read-your-writes), sent by a client for a key it
wrote, must find the key at a revision no older than its own acknowledged
write, or absent after a delete of it was sent.

Of the writes, 4%% are plain puts with a time to live of 1 to 3 s, each on a
key of its own (` + "`ttl-<value>`" + `) that nothing else writes or reads. Such a key
can disappear without a client's delete, so these keys are left out of the
linearizability check and of the final reads, and checked at the end
instead: once the time to live of a key's last write (acknowledged, with no
ambiguous write after it) has passed by the session timeout and 2 s more, the
leader and every survivor that does not report stale must find it absent
(` + "`ttl-not-expired`" + `; re-read for up to 3 s).

Every run with load also watches every key (` + "`client.Client.WatchFrom`" + `) on a
random server the fault is not aimed at (not the leader, nor the follower
stopped in nats-restart and hostile-client), from the revision of the load's
first acknowledged write. After the settle the watch is drained until it has
delivered the highest acknowledged revision (10 s at most, else
` + "`watch-ended`" + `) and checked: revisions strictly increase and none is before
the start (` + "`watch-order`" + `); every acknowledged put, create or delete at a
revision in range is there at that revision (` + "`watch-gap`" + `) with its kind, key
and value, and every put delivered wrote a value a client sent
(` + "`watch-mismatch`" + `); every key whose time to live passed by the same margin
before the watch stopped has an expiry in it (` + "`watch-gap`" + `). A watch that ends
with an error is a violation (` + "`watch-ended`" + `), but for ` + "`compacted`" + ` (noted: the
window of 65,536 updates is far larger than a run) and for a watch whose
server the fault killed: that one is resumed on another running server from
the revision after the last one seen (or, when the server came back empty
and answers ` + "`compacted`" + `, from the oldest revision it holds), and the union is
checked. Where the setting allows a loss (acks-leader, acks-majority,
full-restart), a gap or mismatch is a note.

The checker's own tests include histories it must reject, among them a
compare-and-set won at a stale revision, two won at the same one, a deleted
key read back, a conflict while the condition held, and a watch with a gap, a
duplicate, a reordering or another value at an acknowledged revision, and a
key still there after its time to live (` + "`go test ./testdriver/chaos`" + `).

`)

	for _, c := range cases {
		var runs []*RunResult
		for _, r := range res.Runs {
			if r.Case == c.name {
				runs = append(runs, r)
			}
		}
		if len(runs) == 0 {
			continue
		}
		t := caseTexts[c.name]
		w("## %s: %s\n\n", c.name, t.title)
		w(t.how+"\n\n", cfg.SessionTimeout, max(2*cfg.SessionTimeout, 4*time.Second), cfg.Margin, cfg.WriteTimeout)
		writeCaseTables(&b, runs)
	}

	w("## Fuzzing the decoders\n\n")
	if len(res.Fuzz) == 0 {
		w("Not run in this invocation (`--fuzz-time 0`).\n\n")
	} else {
		w("Every fuzz target of `bus` (listed with `go test -list 'Fuzz.*' ./bus`) ran for\n")
		w("%s, one after the other, on the machine above after the cases had finished (the\n", res.FuzzTime)
		w("machine is shared, so the executions depend on what else ran; see the load).\n")
		w("The seed corpus runs as ordinary tests in `make test`.\n\n")
		w("| target | executions | corpus (new, total) | load average at its start | result | command |\n|---|---:|---|---|---|---|\n")
		for _, f := range res.Fuzz {
			result := "pass"
			if f.Err != "" {
				result = "FAIL: " + oneLine(f.Err)
			}
			w("| `%s` | %s | %s | %s | %s | `%s` |\n", f.Target, thousands(f.Execs), f.Interesting, f.Load, result, f.Command)
		}
		w("\n")
	}

	writeFindings(&b, res)
	writeGuarantees(&b, res)
	return []byte(b.String())
}

// ownRuns names the cases that run more often than cfg.Runs, with their
// count ("" if none).
func ownRuns(cfg Config) string {
	var out []string
	for _, c := range cases {
		if !cfg.Quick && c.runs > cfg.Runs {
			out = append(out, fmt.Sprintf("%s: %d", c.name, c.runs))
		}
	}
	if len(out) == 0 {
		return ""
	}
	return " (" + strings.Join(out, ", ") + ")"
}

type runGroup struct {
	label string
	runs  []*RunResult
}

// groupRuns groups runs by case and variant, in suite order.
func groupRuns(runs []*RunResult) []runGroup {
	var out []runGroup
	for _, r := range runs {
		label := r.Case
		if r.Variant != "" {
			label += " / " + r.Variant
		}
		if len(out) == 0 || out[len(out)-1].label != label {
			out = append(out, runGroup{label: label})
		}
		out[len(out)-1].runs = append(out[len(out)-1].runs, r)
	}
	return out
}

// totals are the figures of a group of runs, as the report and the
// console summary show them.
type totals struct {
	ops, acked, lost, expLost, stale, viol int
	// verdicts counts the linearizability verdicts; an illegal history
	// that the case expects counts as "illegal (expected)".
	verdicts map[string]int
}

func totalsOf(runs []*RunResult) totals {
	t := totals{verdicts: map[string]int{}}
	for _, r := range runs {
		t.ops += r.Counts.Total
		t.acked += r.Counts.PutsOK
		t.lost += r.Lost
		t.expLost += r.ExpectedLost
		t.stale += r.StaleEpoch
		t.viol += len(r.Violations)
		if r.Err != "" {
			t.viol++
		}
		v := r.Lin.Verdict
		if v == VerdictIllegal && r.LinExpected {
			v = "illegal (expected)"
		}
		t.verdicts[v]++
	}
	return t
}

func verdictSummary(v map[string]int) string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		if len(v) == 1 {
			return k
		}
		parts = append(parts, fmt.Sprintf("%s ×%d", k, v[k]))
	}
	return strings.Join(parts, ", ")
}

func writeCaseTables(b *strings.Builder, runs []*RunResult) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("| run | operations | writes ok / ambiguous / failed | leader reads | local reads (min_revision) | linearizable | reads checked for acknowledged writes | lost | stale-epoch applies | violations |\n")
	w("|---|---:|---|---:|---:|---|---:|---:|---:|---:|\n")
	for _, r := range runs {
		c := r.Counts
		lin := r.Lin.Verdict
		if lin == VerdictIllegal {
			lin = "illegal (" + strings.Join(r.Lin.BadKeys, ", ") + ")"
			if r.LinExpected {
				lin += ", expected"
			}
		}
		if r.Lin.Ops > 0 {
			lin = fmt.Sprintf("%s, %d ops", lin, r.Lin.Ops)
		}
		lost := fmt.Sprint(r.Lost)
		if r.ExpectedLost > 0 {
			lost = fmt.Sprintf("%d (+%d by design)", r.Lost, r.ExpectedLost)
		}
		viol := fmt.Sprint(len(r.Violations))
		if r.Err != "" {
			viol += " + error"
		}
		w("| %s | %d | %d / %d / %d | %d | %d (%d) | %s | %d | %s | %d | %s |\n", runLabel(r), c.Total, c.PutsOK, c.PutsAmbiguous, c.PutsFailed,
			c.LeaderReadsOK, c.LocalReadsOK, r.OwnReads, lin, r.Fresh, lost, r.StaleEpoch, viol)
	}
	w("\n")
	// Times.
	var names []string
	for _, n := range timeOrder {
		for _, r := range runs {
			if _, ok := r.Times[n]; ok {
				names = append(names, n)
				break
			}
		}
	}
	if len(names) > 0 {
		w("| run | %s |\n|---|%s\n", strings.Join(names, " | "), strings.Repeat("---:|", len(names)))
		for _, r := range runs {
			cells := make([]string, len(names))
			for i, n := range names {
				if d, ok := r.Times[n]; ok {
					cells[i] = fmtSec(d)
				} else {
					cells[i] = "—"
				}
			}
			w("| %s | %s |\n", runLabel(r), strings.Join(cells, " | "))
		}
		if len(runs) > 1 {
			cells := make([]string, len(names))
			for i, n := range names {
				var ds []time.Duration
				for _, r := range runs {
					if d, ok := r.Times[n]; ok {
						ds = append(ds, d)
					}
				}
				cells[i] = minMedMax(ds)
			}
			w("| min / median / max | %s |\n", strings.Join(cells, " | "))
		}
		w("\n")
	}
	// Facts, notes, violations.
	for _, r := range runs {
		var lines []string
		fk := make([]string, 0, len(r.Facts))
		for k := range r.Facts {
			if k == "lin check took" {
				continue
			}
			fk = append(fk, k)
		}
		sort.Strings(fk)
		for _, k := range fk {
			lines = append(lines, fmt.Sprintf("%s: %s", k, r.Facts[k]))
		}
		lines = append(lines, r.Notes...)
		if r.Err != "" {
			lines = append(lines, "**error**: "+oneLine(r.Err))
		}
		for _, v := range r.Violations {
			lines = append(lines, "**violation** "+oneLine(v.String()))
		}
		if len(lines) == 0 {
			continue
		}
		w("- %s: %s\n", runLabel(r), strings.Join(lines, "; "))
	}
	w("\n")
}

func runLabel(r *RunResult) string {
	if r.Variant != "" {
		return fmt.Sprintf("%s #%d", r.Variant, r.Run)
	}
	return fmt.Sprintf("#%d", r.Run)
}

func fmtSec(d time.Duration) string { return fmt.Sprintf("%.2f s", d.Seconds()) }

func minMedMax(ds []time.Duration) string {
	if len(ds) == 0 {
		return "—"
	}
	slices.Sort(ds)
	return fmt.Sprintf("%.2f / %.2f / %.2f s", ds[0].Seconds(), ds[len(ds)/2].Seconds(), ds[len(ds)-1].Seconds())
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	s = strings.ReplaceAll(s, "|", "\\|")
	if len(s) > 400 {
		s = s[:400] + "..."
	}
	return s
}

func thousands(n int64) string {
	s := fmt.Sprint(n)
	var out []byte
	for i := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, s[i])
	}
	return string(out)
}

// sum adds f over the runs of the named cases (all runs when none).
func sum(res *Results, f func(*RunResult) int, names ...string) int {
	n := 0
	for _, r := range res.Runs {
		if len(names) == 0 || slices.Contains(names, r.Case) {
			n += f(r)
		}
	}
	return n
}

func linCount(res *Results, verdict string, names ...string) (int, int) {
	ok, all := 0, 0
	for _, r := range res.Runs {
		if (len(names) == 0 || slices.Contains(names, r.Case)) && r.Lin.Verdict != VerdictSkipped && !r.LinExpected {
			all++
			if r.Lin.Verdict == verdict {
				ok++
			}
		}
	}
	return ok, all
}

// explanations say what a violation of each check means.
var explanations = map[string]string{
	CheckLinearizability: "the writes and leader reads of a key have no order consistent with real time and a single register: a leader read missed an acknowledged write, or saw one that was later undone",
	CheckLostAck:         "a read made after a write was acknowledged found an older value or nothing",
	CheckUnknownValue:    "a read returned a value no client wrote",
	CheckFailedSeen:      "a read returned the value of a write whose every attempt was refused before being applied: the outcome rule or the server's answer is wrong",
	CheckReadEarly:       "a read returned a value before its write was sent",
	CheckDeposedAck:      "a leader acknowledged a write after it could no longer lead",
	CheckStaleEpoch:      "a copy applied an update of an older epoch after a newer one",
	CheckStaleReport:     "a copy that missed updates reported `stale=false`",
	CheckBound:           "a measured time exceeded its (generous) bound",
	CheckAvailability:    "something that must keep working did not (an election, a reconnection, writes resuming, local reads)",
	CheckCatchUp:         "with `--catch-up`, a copy did not become current again",
	CheckLeadStale:       "with `--catch-up`, a server that knew it was behind took writes",
	CheckExpectedLoss:    "a loss by design did not show as documented: without `--catch-up` the empty server leads, and after a restart of every server the new leader's `lost_revisions` covers every revision acknowledged before",
	CheckForgedValue:     "a read returned a value that only the attacker, who has no cluster key, published",
	CheckForgedAccepted:  "a forged message changed a server's state (divergence, a gap, stale), or a server did not count the forged messages it dropped",
	CheckForgedConfirm:   "an acks=all reply counted a confirmation no member gave: more than its members, fewer than all, or all three while one was stopped",
	CheckLeaderChanged:   "the leader or epoch changed while nothing but forged messages could have caused it",
	CheckRevisionBack:    "after a restart of every server a write was acknowledged at a revision that an earlier acknowledged write already had: the cluster record's revision floor was below the highest acknowledged revision",
	CheckLedBehind:       "with `--catch-up`, a server that holds less than the cluster record led, acknowledged a write, or said it was current (`stale=false`) or ready",
	CheckNotDurable:      "a server restarted from its data directory loaded less than every write acknowledged with its confirmation before the kill, or the leader after the restart reported revisions lost",
	CheckTornReport:      "a server whose last log record was cut did not log the cut (at WARN, with the segment and the bytes dropped) when it restarted",
	CheckOwnWrite: "a `min_revision` read was answered from a copy that had not applied that revision: typically one that skipped it " +
		"through a gap (it missed updates while cut off from NATS) and whose revision counter had moved past it. Such a copy must " +
		"answer `stale` (or wait for its catch-up) instead",
}

// writeViolations lists every violation, grouped by check.
func writeViolations(b *strings.Builder, res *Results) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	type item struct {
		run *RunResult
		v   Violation
	}
	byCheck := map[string][]item{}
	var checks []string
	for _, r := range res.Runs {
		for _, v := range r.Violations {
			if _, ok := byCheck[v.Check]; !ok {
				checks = append(checks, v.Check)
			}
			byCheck[v.Check] = append(byCheck[v.Check], item{r, v})
		}
	}
	var errs []string
	for _, r := range res.Runs {
		if r.Err != "" {
			errs = append(errs, fmt.Sprintf("%s %s: %s", r.Case, runLabel(r), oneLine(r.Err)))
		}
	}
	if len(checks) == 0 && len(errs) == 0 {
		return
	}
	w("## Violations\n\n")
	for _, c := range checks {
		items := byCheck[c]
		runs := map[string]bool{}
		for _, it := range items {
			runs[it.run.Case+" "+runLabel(it.run)] = true
		}
		w("- **%s** ×%d in %d run(s): %s. First: %s %s: %s\n", c, len(items), len(runs), explanations[c],
			items[0].run.Case, runLabel(items[0].run), oneLine(items[0].v.Detail))
	}
	for _, e := range errs {
		w("- **error** (the run could not complete): %s\n", e)
	}
	w("\n")
}

func writeFindings(b *strings.Builder, res *Results) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("## Findings and limits\n\n")
	w(`- **A lone, restarted server knows it is behind only from what it can see.**
  zkv keeps nothing on disk, so a restarted server learns that it missed
  updates from a gap in the replication stream, from the leader's status, or
  from the leader znode's takeover revision. In empty-survivor/catch-up the
  leader znode (of a leader that took over at a non-zero revision) is enough,
  and ` + "`--catch-up`" + ` refuses to lead. When the dead leader was the cluster's
  first (takeover revision 0), or its session expired before the restart, the
  restarted server has no evidence and leads with an empty store even with
  ` + "`--catch-up`" + ` (the catch-up-first-epoch variant records it).
`)
	if runs, total := forgedInWatch(res); runs > 0 {
		w(`- **A watch delivers unsigned updates.** In %d of %d hostile-client run(s) the
  watch delivered an attacker's put (a value only the attacker sent) at the
  next revision, in place of the cluster's update there, which it then
  dropped as already seen. `+"`client.Client.WatchFrom`"+` takes the replication
  subject's messages without checking the cluster key's signature, which
  every server checks.
`, runs, total)
	}
	if runs, total := uncommittedRuns(res); total > 0 {
		w(`- **A leader read or a refused condition can report a write no server has
  logged yet.** The leader answers them from its copy, which holds a write as
  soon as it is applied, before its log record is written and before the
  replicas confirm it. If every server is killed before any of them logged it,
  the write is gone (or, retried, applied again at another revision), and what
  the read or the refusal reported never happened: the key's history has no
  linearization. With one server killed the replicas keep it in memory, so only
  a restart of every server shows it: in %d of %d durable-full-restart run(s)
  here. A leader that answered only for revisions every member has logged (as
  it acknowledges an acks=all write) would close it.
`, runs, total)
	}
	if n := sum(res, func(r *RunResult) int { return r.Unconfirmable }); n > 0 {
		w(`- **A retried acks=all write can stay ambiguous after a failover.** %d write(s)
  ended ambiguous because every retry was answered `+"`timeout`"+`: "request_id
  ... was applied at revision N, but whether replicas confirmed it is no longer
  known". The new leader had the write (a replica applied it before the old
  leader went away) but keeps no confirmations from the old term, so a retry
  can never turn into an acknowledgement. Safe, but the client cannot learn
  that its write is durable.
`, n)
	}
	if extra, ok := pausedQueueDelay(res); ok {
		w(`- **A stopped leader still takes half of the writes off the bus.** In
  pause-leader the first write was acknowledged a median %.2f s after the new
  leader reported itself. The stopped process keeps its subscription to
  `+"`kv.write`"+` in the `+"`zkv-leader`"+` queue group until NATS drops its
  connection (the server's ping interval, minutes by default), so NATS keeps
  handing it about half of the requests, and each of those waits for the
  client's timeout before it is retried. Safe (it answers nothing), but writes
  stay slow for as long as the process is stopped.
`, extra.Seconds())
	}
	dropped, pauseRuns := 0, 0
	for _, r := range res.Runs {
		if r.Case == CasePauseLeader {
			pauseRuns++
			n, _ := strconv.Atoi(r.Facts["dropped_old_epoch"])
			dropped += n
		}
	}
	kmRuns, _, kmLost := variantFigures(res, CaseKillLeader, "acks-majority")
	if kmRuns > 0 && kmLost == 0 {
		w("- **acks=majority lost nothing under SIGKILL here, but the election does not make\n  it durable.**")
	} else {
		w("- **The election does not make acks=majority durable.**")
	}
	w(` The new leader is the server with the smallest election znode,
  not the one with the most complete copy, so a write confirmed by a majority
  can be missing on the server that takes over if it was in the minority and
  never saw the gap. On one healthy NATS server every replica gets every
  update, so a SIGKILL alone does not show it. acks=all does not have this
  hole: every registered server, the future leader included, confirmed the
  write.
- **Local reads may be stale or empty** (the specification's Read): after a
  restart, during a partition, on a copy that missed updates. A copy that knows
  it missed updates says `+"`stale`"+`; nats-restart checks that every copy that differs
  from the leader's says so.
- **The epoch fence had little to do.** A deposed leader's lease runs out
  before it can publish anything, so `+"`dropped_old_epoch`"+` stays near 0 in
  pause-leader (%d in %d runs); the fence itself is tested with forged
  old-epoch messages in `+"`node`"+`'s tests.
- **Timing figures are from a shared 2-core machine** and include the suite's
  own polling (status every 150 ms); they are bounded generously, never
  asserted tightly.
`, dropped, pauseRuns)
	// Limits the runs observed, grouped by what they say.
	type seen struct {
		runs []string
		text string
	}
	var order []string
	groups := map[string]*seen{}
	for _, r := range res.Runs {
		for _, n := range r.Notes {
			text, ok := strings.CutPrefix(n, "LIMITATION: ")
			if !ok {
				continue
			}
			head, _, _ := strings.Cut(text, ":")
			g := groups[head]
			if g == nil {
				g = &seen{text: text}
				groups[head] = g
				order = append(order, head)
			}
			g.runs = append(g.runs, r.Case+" "+runLabel(r))
		}
	}
	for _, h := range order {
		g := groups[h]
		w("- **Observed:** %s (%s).\n", g.text, strings.Join(g.runs, ", "))
	}
	w("\n")
}

// pausedQueueDelay is the median, over the pause-leader runs, of how much
// later than the new leader's election the first write was acknowledged,
// when that is over a second.
func pausedQueueDelay(res *Results) (time.Duration, bool) {
	var ds []time.Duration
	for _, r := range res.Runs {
		if r.Case != CasePauseLeader {
			continue
		}
		first, ok1 := r.Times[TimeFirstAck]
		elected, ok2 := r.Times[TimeNewLeader]
		if ok1 && ok2 {
			ds = append(ds, first-elected)
		}
	}
	if len(ds) == 0 {
		return 0, false
	}
	slices.Sort(ds)
	m := ds[len(ds)/2]
	return m, m > time.Second
}

// variantFigures sums acknowledged and lost writes over the runs of one
// case variant.
func variantFigures(res *Results, name, variant string) (runs, acked, lost int) {
	for _, r := range res.Runs {
		if r.Case == name && r.Variant == variant {
			runs++
			acked += r.Counts.PutsOK
			lost += r.Lost + r.ExpectedLost
		}
	}
	return
}

func writeGuarantees(b *strings.Builder, res *Results) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	faultCases := []string{CasePauseLeader, CaseZKPartition, CaseZKEnsemble}
	_, kaAcked, kaLost := variantFigures(res, CaseKillLeader, "acks-all")
	ackedAll := kaAcked + sum(res, func(r *RunResult) int { return r.Counts.PutsOK }, faultCases...)
	lostAll := kaLost + sum(res, func(r *RunResult) int { return r.Lost }, faultCases...)
	kmRuns, kmAcked, kmLost := variantFigures(res, CaseKillLeader, "acks-majority")
	klRuns, klAcked, klLost := variantFigures(res, CaseKillLeader, "acks-leader")
	linOK, linAll := linCount(res, VerdictOK)
	own := sum(res, func(r *RunResult) int { return r.OwnReads })
	ownBad := 0
	staleReports := 0
	deposed := 0
	for _, r := range res.Runs {
		for _, v := range r.Violations {
			switch v.Check {
			case CheckOwnWrite:
				ownBad++
			case CheckStaleReport:
				staleReports++
			case CheckDeposedAck:
				deposed++
			}
		}
	}
	natsAcked := sum(res, func(r *RunResult) int { return r.Counts.PutsOK }, CaseNATSRestart)
	natsLost := sum(res, func(r *RunResult) int { return r.Lost }, CaseNATSRestart)
	leaderReads := sum(res, func(r *RunResult) int { return r.Counts.LeaderReadsOK })
	staleEpoch := sum(res, func(r *RunResult) int { return r.StaleEpoch })
	_, _, emptyLost := variantFigures(res, CaseEmptySurvivor, "no-catch-up")
	_, _, firstEpochLost := variantFigures(res, CaseEmptySurvivor, "catch-up-first-epoch")
	emptyCatchUp := "none taken with it after a handover"
	if firstEpochLost > 0 {
		emptyCatchUp += fmt.Sprintf(", %d lost with it when the dead leader was the first (see the limits)", firstEpochLost)
	}
	faulted := func(runs, acked, lost int) string {
		if runs == 0 {
			return "not run in this invocation"
		}
		return fmt.Sprintf("kill-leader (%d runs): %d acknowledged, %d lost", runs, acked, lost)
	}

	w("## What zkv guarantees\n\n")
	w("Written from what this suite verified (figures: the runs above).\n\n")
	w("| setting | a successful answer means | under faults | verified here |\n|---|---|---|---|\n")
	leaderNote := "not promised to outlive the leader: a leader crash right after the reply can lose it"
	if klRuns > 0 && klLost == 0 {
		leaderNote += ". With one NATS server the update leaves on the leader's connection before the reply, so a SIGKILL alone lost nothing here; a leader cut off from NATS, or replicas that miss the update, can still lose it"
	}
	w("| `--acks leader` (default) | the leader applied the write and handed it to NATS | %s | %s; nats-restart: %d acknowledged, %d lost |\n", leaderNote, faulted(klRuns, klAcked, klLost), natsAcked, natsLost)
	w("| `--acks majority` | a majority of the registered servers (the leader counts) applied it | survives the loss of a minority **if** the next leader is among the majority; the election (smallest znode) does not ensure that | %s |\n", faulted(kmRuns, kmAcked, kmLost))
	w("| `--acks all` | every server registered when it was applied confirmed it | survives SIGKILL and SIGSTOP of the leader, a ZooKeeper partition of the leader and the loss of ZooKeeper members; lost if every confirming server restarts empty (without `--catch-up` the empty server leads) | %d acknowledged under leader kill, pause, partition and ZooKeeper loss: **%d lost**; empty-survivor: %d lost by design without `--catch-up`; %s |\n", ackedAll, lostAll, emptyLost, emptyCatchUp)
	w("| any level, deposed leader | a leader acknowledges only while its lease (a ZooKeeper round trip younger than half the session timeout) is valid; replicas drop updates of older epochs | a paused or partitioned leader stops acknowledging within the session timeout; its late updates are dropped | pause-leader, zk-partition: acknowledgements by a deposed leader **%d**, stale-epoch applies **%d** (all cases) |\n", deposed, staleEpoch)
	w("| read `local` (default) | some value this node applied | may be stale, or empty after a restart; a copy that knows it missed updates reports `stale` | values always ones that were written; nats-restart: copies that differ yet say `stale=false`: %d |\n", staleReports)
	w("| read `leader` | the leader's value under a valid lease, at its current epoch | linearizable with the writes; unavailable (`not_leader`/`no_leader`) during an election or without a ZooKeeper quorum | %d answered leader reads; linearizable in %d of %d runs that must be |\n", leaderReads, linOK, linAll)
	w("| read `min_revision` | the node applied every update up to that revision (else `stale` after `wait_ms`) | read-your-writes; a copy that missed updates answers `stale` until it has caught up | %d reads of the client's own write checked, **%d wrong** |\n", own, ownBad)
	w("| `--catch-up` | a copy that knows it is behind fetches the leader's store and reports `stale` until it has | after a NATS restart every copy is current again; a stale server refuses to lead (but see the limits above) | nats-restart/catch-up, empty-survivor/catch-up |\n")
	if dRuns, dAcked, dLost := variantFigures(res, CaseDurableFull, ""); dRuns > 0 {
		tRuns, tAcked, tLost := variantFigures(res, CaseDurableTorn, "")
		w("| `--data-dir` with `--acks all` (`--fsync always`) | every server that confirmed the write had it in its log | survives SIGKILL of every server at once, restarted in any order, and a last log record cut in the middle (reported at WARN, caught up) | durable-full-restart (%d runs): %d acknowledged, **%d lost**; durable-torn-record (%d runs): %d acknowledged, **%d lost** |\n",
			dRuns, dAcked, dLost, tRuns, tAcked, tLost)
	}
	w("\n")
}

// uncommittedRuns counts the durable-full-restart runs whose history a
// read of an unlogged write made non-linearizable, and the runs.
func uncommittedRuns(res *Results) (runs, total int) {
	for _, r := range res.Runs {
		if r.Case != CaseDurableFull {
			continue
		}
		total++
		if slices.ContainsFunc(r.Notes, func(n string) bool { return strings.HasPrefix(n, "LIMITATION: a leader read or a refused condition") }) {
			runs++
		}
	}
	return runs, total
}

// forgedInWatch counts the hostile-client runs whose watch delivered a
// value only the attacker sent, and the hostile-client runs.
func forgedInWatch(res *Results) (runs, total int) {
	for _, r := range res.Runs {
		if r.Case != CaseHostileClient {
			continue
		}
		total++
		if slices.ContainsFunc(r.Violations, func(v Violation) bool {
			return v.Check == CheckWatchMismatch && strings.Contains(v.Detail, ForgedPrefix)
		}) {
			runs++
		}
	}
	return runs, total
}
