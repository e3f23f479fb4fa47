package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/testdriver/cluster"
)

// Config configures a Suite run.
type Config struct {
	// Runs is how many times each case (and each variant) runs.
	Runs int
	// Quick shortens every phase, for CI.
	Quick bool
	// Cases are the names of the cases to run (nil: all).
	Cases []string
	// Clients is the number of concurrent clients of a run.
	Clients int
	// Keys is the number of keys the clients share.
	Keys int
	// OpInterval is the mean pause between two operations of one client.
	OpInterval time.Duration
	// SessionTimeout is the servers' ZooKeeper session timeout (cases that
	// pause a server or need a restart to beat an expiry use twice it, at
	// least 4s).
	SessionTimeout time.Duration
	// WriteTimeout is the servers' --write-timeout.
	WriteTimeout time.Duration
	// Margin is added to the session timeout in the bounds of "stop
	// acknowledging" and "no writes acknowledged".
	Margin time.Duration
	// LeaderBound bounds, after the session timeout, how long the election
	// of a new leader may take before it counts as a violation.
	LeaderBound time.Duration
	// LinTimeout bounds the linearizability check of one key.
	LinTimeout time.Duration
	// KVServer is the kvserver binary.
	KVServer string `json:"-"`
	// LogDir receives one directory per run: server logs, the history,
	// the replication stream, the status timeline.
	LogDir string `json:"-"`
	// Log receives progress lines (nil: none).
	Log io.Writer `json:"-"`
}

// DefaultConfig returns the settings of `make chaos`.
func DefaultConfig() Config {
	return Config{
		Runs:           5,
		Clients:        4,
		Keys:           12,
		OpInterval:     10 * time.Millisecond,
		SessionTimeout: 2 * time.Second,
		WriteTimeout:   2 * time.Second,
		Margin:         3 * time.Second,
		LeaderBound:    30 * time.Second,
		LinTimeout:     2 * time.Minute,
	}
}

// Case names.
const (
	CaseKillLeader    = "kill-leader"
	CasePauseLeader   = "pause-leader"
	CaseZKPartition   = "zk-partition"
	CaseNATSRestart   = "nats-restart"
	CaseZKEnsemble    = "zk-ensemble"
	CaseEmptySurvivor = "empty-survivor"
	CaseHostileClient = "hostile-client"
	CaseFullRestart   = "full-restart"
)

// CaseNames lists every case in the order the suite runs them.
func CaseNames() []string {
	names := make([]string, len(cases))
	for i, c := range cases {
		names[i] = c.name
	}
	return names
}

// RunResult is what one run of one case found.
type RunResult struct {
	Case    string        `json:"case"`
	Variant string        `json:"variant,omitempty"`
	Run     int           `json:"run"`
	Started time.Time     `json:"started"`
	Elapsed time.Duration `json:"elapsed"`
	Counts  OpCounts      `json:"counts"`
	Lin     LinResult     `json:"linearizability"`
	// LinExpected is set when the case loses acknowledged writes by design,
	// so an illegal verdict is the expected, documented outcome.
	LinExpected bool `json:"lin_expected_illegal,omitempty"`
	// Fresh counts the reads checked against the acknowledged writes, Lost
	// the ones that missed one.
	Fresh int `json:"fresh_reads_checked"`
	Lost  int `json:"lost_acks"`
	// ExpectedLost counts acknowledged writes gone by design (empty-survivor).
	ExpectedLost int `json:"expected_lost,omitempty"`
	// Unconfirmable counts ambiguous writes whose retries the new leader
	// answered "whether replicas confirmed it is no longer known".
	Unconfirmable int `json:"unconfirmable,omitempty"`
	// OwnReads counts the min_revision reads checked.
	OwnReads   int        `json:"own_reads_checked"`
	Epochs     EpochStats `json:"epochs"`
	StaleEpoch int        `json:"stale_epoch_applies"`
	// Times are the named measurements of the run.
	Times map[string]time.Duration `json:"times,omitempty"`
	// Facts are other named figures.
	Facts      map[string]string `json:"facts,omitempty"`
	Violations []Violation       `json:"violations,omitempty"`
	Notes      []string          `json:"notes,omitempty"`
	Err        string            `json:"error,omitempty"`
	Dir        string            `json:"-"`
}

func (r *RunResult) runName() string {
	if r.Variant != "" {
		return fmt.Sprintf("%s-run%d", r.Variant, r.Run)
	}
	return fmt.Sprintf("run%d", r.Run)
}

// Failed reports whether the run found a violation or could not run.
func (r *RunResult) Failed() bool { return len(r.Violations) > 0 || r.Err != "" }

func (r *RunResult) time(name string, d time.Duration) {
	if r.Times == nil {
		r.Times = map[string]time.Duration{}
	}
	r.Times[name] = d
}

func (r *RunResult) fact(name, format string, args ...any) {
	if r.Facts == nil {
		r.Facts = map[string]string{}
	}
	r.Facts[name] = fmt.Sprintf(format, args...)
}

// Results are the outcome of a Suite run.
type Results struct {
	Config   Config          `json:"config"`
	Started  time.Time       `json:"started"`
	Elapsed  time.Duration   `json:"elapsed"`
	Machine  cluster.Machine `json:"machine"`
	Runs     []*RunResult    `json:"runs"`
	Fuzz     []FuzzResult    `json:"fuzz,omitempty"`
	FuzzTime time.Duration   `json:"fuzz_time,omitempty"`
	// Command is the command line that produced the results, for the
	// report.
	Command string `json:"command"`
}

// Failed reports whether any run or fuzz target failed.
func (r *Results) Failed() bool {
	for _, run := range r.Runs {
		if run.Failed() {
			return true
		}
	}
	for _, f := range r.Fuzz {
		if f.Err != "" {
			return true
		}
	}
	return false
}

// suite holds what the runs share.
type suite struct {
	cfg      Config
	kvserver string
	logDir   string
	logMu    sync.Mutex
	zkOnce   sync.Once
	zk       *harness.ZooKeeper
	zkErr    error
}

func (s *suite) logf(format string, args ...any) {
	if s.cfg.Log == nil {
		return
	}
	s.logMu.Lock()
	defer s.logMu.Unlock()
	fmt.Fprintf(s.cfg.Log, format+"\n", args...)
}

// standalone returns the suite's standalone ZooKeeper, started on first
// use. Runs share it, each under its own paths.
func (s *suite) standalone(ctx context.Context) (*harness.ZooKeeper, error) {
	s.zkOnce.Do(func() {
		s.zk, s.zkErr = harness.StartZooKeeper(ctx, harness.ZooKeeperOptions{Dir: filepath.Join(s.logDir, "zookeeper")})
		if s.zkErr == nil {
			s.logf("ZooKeeper %s (pid %d)", s.zk.Addr(), s.zk.PID())
		}
	})
	return s.zk, s.zkErr
}

// Suite runs the configured cases and returns their results. A setup
// failure of one run is recorded in that run and the suite goes on; only a
// cancelled ctx ends it early.
func Suite(ctx context.Context, cfg Config) (*Results, error) {
	if cfg.KVServer == "" {
		return nil, errors.New("chaos: no kvserver binary")
	}
	if cfg.Runs < 1 {
		return nil, fmt.Errorf("chaos: %d runs", cfg.Runs)
	}
	sel, err := selectCases(cfg.Cases)
	if err != nil {
		return nil, err
	}
	if cfg.LogDir == "" {
		cfg.LogDir = filepath.Join("logs", "chaos", time.Now().Format("20060102-150405"))
	}
	logDir, err := filepath.Abs(cfg.LogDir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, err
	}
	s := &suite{cfg: cfg, kvserver: cfg.KVServer, logDir: logDir}
	defer func() {
		if s.zk != nil {
			_ = s.zk.Stop()
		}
	}()
	res := &Results{Config: cfg, Started: time.Now(), Machine: cluster.DescribeMachine(ctx)}
	s.logf("chaos: %d case(s), %d run(s) each; logs in %s", len(sel), cfg.Runs, cfg.LogDir)
	for _, c := range sel {
		variants := c.variants
		if len(variants) == 0 {
			variants = []string{""}
		}
		for _, v := range variants {
			if cfg.Quick && slices.Contains(c.slow, v) {
				continue
			}
			for i := 1; i <= cfg.Runs; i++ {
				if ctx.Err() != nil {
					return res, ctx.Err()
				}
				r := &RunResult{Case: c.name, Variant: v, Run: i, Started: time.Now()}
				label := c.name
				if v != "" {
					label += "/" + v
				}
				s.logf("== %s run %d/%d", label, i, cfg.Runs)
				err := c.run(ctx, s, r)
				r.Elapsed = time.Since(r.Started)
				if err != nil {
					r.Err = err.Error()
					s.logf("   ERROR %v", err)
				}
				s.logf("   %s: %d ops, lin=%s, lost=%d, stale-epoch=%d, violations=%d (%s)",
					verdictWord(r), r.Counts.Total, r.Lin.Verdict, r.Lost, r.StaleEpoch, len(r.Violations), r.Elapsed.Round(100*time.Millisecond))
				res.Runs = append(res.Runs, r)
			}
		}
	}
	res.Elapsed = time.Since(res.Started)
	return res, nil
}

func verdictWord(r *RunResult) string {
	switch {
	case r.Err != "":
		return "ERROR"
	case len(r.Violations) > 0:
		return "FAIL"
	}
	return "PASS"
}

func selectCases(names []string) ([]caseDef, error) {
	if len(names) == 0 {
		return cases, nil
	}
	var out []caseDef
	for _, n := range names {
		n = strings.TrimSpace(n)
		if n == "" || n == "all" {
			return cases, nil
		}
		i := slices.IndexFunc(cases, func(c caseDef) bool { return c.name == n })
		if i < 0 {
			return nil, fmt.Errorf("chaos: unknown case %q (cases: %s)", n, strings.Join(CaseNames(), ", "))
		}
		out = append(out, cases[i])
	}
	return out, nil
}

// phases are the durations of a run's load phases.
func (s *suite) warmup() time.Duration {
	if s.cfg.Quick {
		return 1500 * time.Millisecond
	}
	return 3 * time.Second
}

func (s *suite) settle() time.Duration {
	if s.cfg.Quick {
		return 2 * time.Second
	}
	return 4 * time.Second
}

// keys are the keys the clients share.
func (s *suite) keys() []string {
	keys := make([]string, s.cfg.Keys)
	for i := range keys {
		keys[i] = fmt.Sprintf("k%02d", i)
	}
	return keys
}

func (s *suite) loadOptions(acks string) loadOptions {
	return loadOptions{clients: s.cfg.Clients, keys: s.keys(), acks: acks, interval: s.cfg.OpInterval, writes: 0.45, leaderReads: 0.3, ownReads: 0.1,
		deletes: 0.1, creates: 0.1, cas: 0.15, via: 0.3, ttl: 0.04, ttlMin: time.Second, ttlMax: 3 * time.Second}
}

// ----------------------------------------------------------------------------
// The final checks every run shares.

// finishOptions says what finish checks.
type finishOptions struct {
	// survivors are the nodes whose local copies must hold every
	// acknowledged write (unless they report stale).
	survivors []string
	// lin checks linearizability.
	lin bool
	// linExpected marks an illegal verdict as the documented outcome.
	linExpected bool
	// converge bounds the wait for the survivors to agree with the leader.
	converge time.Duration
	// lossAllowed: the setting does not promise that acknowledged writes
	// survive the fault, so lost acknowledgements (and the illegal
	// linearizability verdict and the min_revision reads that miss a
	// client's own lost write) are counted, not violations.
	lossAllowed bool
}

// finish stops the load, reads every key from the leader and from every
// survivor, and runs the checks on the whole history.
func (e *runEnv) finish(ctx context.Context, o finishOptions) {
	for _, l := range e.loads {
		l.Stop()
	}
	e.finishWatch(ctx, o.lossAllowed)
	keys := e.allKeys()
	// The leader's view of every key (retried while an election runs).
	leaderVals := map[string]Op{}
	var finals []Op
	for _, k := range keys {
		var op Op
		for i := 0; i < 10; i++ {
			if op = e.own.leaderGet(k); op.Outcome == OK {
				break
			}
		}
		if op.Outcome == OK {
			leaderVals[k] = op
			finals = append(finals, op)
		}
	}
	if len(leaderVals) < len(keys) {
		e.note("the leader answered %d of %d final reads", len(leaderVals), len(keys))
	}
	// Each survivor, until it agrees with the leader or the wait ends.
	if o.converge == 0 {
		o.converge = 10 * time.Second
	}
	deadline := time.Now().Add(o.converge)
	for _, id := range o.survivors {
		var last []Op
		for {
			last = last[:0]
			agree := true
			for _, k := range keys {
				op := e.own.localGet(id, k)
				last = append(last, op)
				if l, ok := leaderVals[k]; !ok || op.Outcome != OK || op.Found != l.Found || op.Value != l.Value {
					agree = false
				}
			}
			if agree || time.Now().After(deadline) {
				if !agree {
					e.note("%s still differs from the leader after %s", id, o.converge)
				}
				break
			}
			if harness.Sleep(ctx, 200*time.Millisecond) != nil {
				break
			}
		}
		st, err := e.status(id, 2*time.Second)
		if err == nil && st.Stale {
			// A copy that says it is stale may miss writes: check it, but
			// report what it misses as a note.
			_, v := CheckFresh(e.hist.Ops(), last)
			if len(v) > 0 {
				e.note("%s reports stale (gaps %d) and misses %d acknowledged write(s), as a stale copy may", id, st.Gaps, len(v))
			}
			continue
		}
		finals = append(finals, last...)
	}
	e.finishTTL(ctx, o.survivors)
	ops := e.hist.Ops()
	if dup := duplicateWrite(ops); dup != "" {
		e.res.Err = "the suite wrote a value twice, so its checks cannot tell the writes apart: " + dup
	}
	n, lost := CheckFresh(ops, finals)
	e.res.Fresh += n
	if o.lossAllowed {
		e.res.ExpectedLost += len(lost)
		for _, v := range lost {
			e.note("allowed loss: %s", v.Detail)
		}
	} else {
		e.res.Lost += len(lost)
		for _, v := range lost {
			e.violate(v)
		}
	}
	for _, v := range CheckReadValues(ops) {
		e.violate(v)
	}
	nOwn, own := CheckReadYourWrites(ops)
	e.res.OwnReads = nOwn
	for _, v := range own {
		if o.lossAllowed {
			// The client's own write may be one of the lost ones.
			e.note("allowed with losses: %s", v.Detail)
			continue
		}
		e.violate(v)
	}
	st, ev := CheckEpochs(ops, e.wire.Updates())
	e.res.Epochs = st
	e.res.StaleEpoch = len(ev)
	for _, v := range ev {
		e.violate(v)
	}
	e.res.Counts = Count(ops)
	if c := e.res.Counts; c.Deletes+c.Creates+c.Conditional > 0 {
		e.res.fact("writes besides plain puts", "%d deletes, %d creates, %d with if_revision; %d refused (conflict or exists); %d sent through a server's write subject; %d puts with a time to live",
			c.Deletes, c.Creates, c.Conditional, c.Refused, c.ViaNode, c.TTL)
	}
	e.res.Unconfirmable = unconfirmable(ops)
	if o.lin {
		e.checkLin(o.linExpected || o.lossAllowed)
	} else {
		e.res.Lin = LinResult{Verdict: VerdictSkipped}
	}
	e.res.Notes = append(e.res.Notes, e.notes...)
}

// finishTTL reads every key the load wrote with a time to live from the
// leader and from each survivor, and checks that those whose time to live
// passed well before (by the session timeout and 2 s more) are gone on
// every one of them, re-reading for up to 3 s while some are not. A
// survivor that reports stale may miss the expiry: what it still holds is
// a note.
func (e *runEnv) finishTTL(ctx context.Context, survivors []string) {
	keys := e.writtenKeys(isTTLKey)
	if len(keys) == 0 {
		return
	}
	margin := e.opts.session + 2*time.Second
	deadline := time.Now().Add(3 * time.Second)
	for {
		var reads, stale []Op
		for _, k := range keys {
			reads = append(reads, e.own.leaderGet(k))
		}
		for _, id := range survivors {
			st, err := e.status(id, 2*time.Second)
			for _, k := range keys {
				op := e.own.localGet(id, k)
				if err == nil && st.Stale {
					stale = append(stale, op)
				} else {
					reads = append(reads, op)
				}
			}
		}
		ops := e.hist.Ops()
		n, v := CheckExpired(ops, reads, margin)
		if len(v) > 0 && time.Now().Before(deadline) && harness.Sleep(ctx, 300*time.Millisecond) == nil {
			continue
		}
		_, sv := CheckExpired(ops, stale, margin)
		for _, x := range sv {
			e.note("a copy that reports stale still holds an expired key: %s", x.Detail)
		}
		for _, x := range v {
			e.violate(x)
		}
		e.res.fact("time to live", "%d keys written with a time to live; %d of them past it by %s, read gone from the leader and %d survivor(s)",
			len(keys), n, margin, len(survivors))
		return
	}
}

// checkLin runs the linearizability check of the run's history.
func (e *runEnv) checkLin(expected bool) {
	start := time.Now()
	e.res.Lin = CheckLinearizable(withoutTTLKeys(e.hist.Ops()), e.s.cfg.LinTimeout)
	e.res.LinExpected = expected
	e.res.fact("lin check took", "%s", time.Since(start).Round(time.Millisecond))
	if e.res.Lin.Verdict == VerdictIllegal {
		_ = e.res.Lin.WriteVisualizations(e.dir)
		if !expected {
			for _, v := range e.res.Lin.Violations() {
				e.violate(v)
			}
		}
	}
	if e.res.Lin.Verdict == VerdictUnknown {
		e.note("linearizability check timed out on keys %v", e.res.Lin.Unknown)
	}
}

// unconfirmable counts the ambiguous puts last answered "no longer known".
func unconfirmable(ops []Op) int {
	n := 0
	for _, op := range ops {
		if op.isWriteKind() && op.Outcome == Ambiguous && strings.Contains(op.Err, "no longer known") {
			n++
		}
	}
	return n
}

// duplicateWrite returns a key and value that two puts wrote, or "".
func duplicateWrite(ops []Op) string {
	seen := map[string]bool{}
	for _, op := range ops {
		if !op.writesValue() {
			continue
		}
		k := op.Key + "=" + op.Value
		if seen[k] {
			return k
		}
		seen[k] = true
	}
	return ""
}

// allKeys returns every key a put of the run wrote (or tried to), sorted,
// but the keys with a time to live.
func (e *runEnv) allKeys() []string {
	return e.writtenKeys(func(k string) bool { return !isTTLKey(k) })
}

// writtenKeys returns the keys that a write of the run tried and keep
// accepts, sorted.
func (e *runEnv) writtenKeys(keep func(string) bool) []string {
	seen := map[string]bool{}
	var keys []string
	for _, op := range e.hist.Ops() {
		if op.isWriteKind() && !seen[op.Key] && keep(op.Key) {
			seen[op.Key] = true
			keys = append(keys, op.Key)
		}
	}
	slices.Sort(keys)
	return keys
}

// acks returns the acknowledged puts of the run, by return time.
func (e *runEnv) acks() []Op {
	var out []Op
	for _, op := range e.hist.Ops() {
		if op.Acked() {
			out = append(out, op)
		}
	}
	slices.SortFunc(out, func(a, b Op) int { return int(a.Return - b.Return) })
	return out
}

// ackGap returns the longest time between two consecutive acknowledgements
// (by return time) among those that returned in [from, to], counting from
// the last one before from.
func ackGap(acks []Op, from, to time.Duration) time.Duration {
	var gap time.Duration
	prev := time.Duration(-1)
	for _, a := range acks {
		if a.Return < from {
			prev = a.Return
			continue
		}
		if a.Return > to {
			break
		}
		if prev >= 0 {
			gap = max(gap, a.Return-prev)
		}
		prev = a.Return
	}
	if prev >= 0 && to-prev > gap {
		gap = to - prev
	}
	return gap
}

// statuses asks every node in ids for its status.
func (e *runEnv) statuses(ids []string) map[string]bus.Status {
	out := map[string]bus.Status{}
	for _, id := range ids {
		if st, err := e.status(id, 2*time.Second); err == nil {
			out[id] = st
		}
	}
	return out
}
