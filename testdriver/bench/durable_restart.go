package bench

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/client"
	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/testdriver/cluster"
)

// RestartResult is a follower's restart from its data directory.
type RestartResult struct {
	Keys, ValueSize int
	// Load is how long loading Keys took through the leader (fsync
	// always); LoadErrors the loader's writes that failed and were sent
	// again.
	Load       time.Duration
	LoadErrors int64
	// SnapshotBytes and LogBytes are the follower's data directory when it
	// was killed: its snapshot file and its log segments.
	SnapshotBytes, LogBytes int64
	// Loaded is from the process start to the time of its "loaded data
	// directory" line; LoadTook, SnapshotTook and ReplayTook are that
	// line's took, snapshot_took and replay_took; SnapshotKeys and
	// LogRecords what it read.
	Loaded, LoadTook, SnapshotTook, ReplayTook time.Duration
	SnapshotKeys, LogRecords                   int
	// Healthy is from the process start to /healthz; Ready to its status
	// being ready with every key, neither stale nor catching up.
	Healthy, Ready time.Duration
	// HeldKeys is the keys the follower held when it was ready.
	HeldKeys int
}

// DeltaResult is a follower's catch-up after an absence under write load.
type DeltaResult struct {
	Writers int
	Absence time.Duration
	// Behind is the bound of "caught up": the follower holds what the
	// leader held that long before.
	Behind time.Duration
	// WriteRate is the writers' acknowledged writes per second while the
	// follower was away; Missed the revisions the leader was ahead when
	// the follower started again.
	WriteRate float64
	Missed    uint64
	// Healthy is from the process start to /healthz; CaughtUp to the
	// first status within Behind of the leader, neither stale nor
	// catching up.
	Healthy, CaughtUp time.Duration
	// Path is how it caught up: "delta" (the leader's updates after its
	// revision) or "full copy" (the whole store); Updates is the delta's
	// updates (or the full copy's keys) and Took its took, from its log.
	Path    string
	Updates int
	Took    time.Duration
	// Log are the follower's lines about its catch-up.
	Log []string
}

// measureRestart loads cfg.Keys keys into main (whose servers keep their
// data under dataDir/<id>), kills a follower with SIGKILL, starts it again
// and times it until it is ready with every key.
func measureRestart(ctx context.Context, cfg DurableConfig, main *cluster.Local, dataDir string) (RestartResult, error) {
	res := RestartResult{Keys: cfg.Keys, ValueSize: cfg.ValueSize}
	kv, closeKV, leader, follower, err := leaderAndFollower(ctx, main)
	if err != nil {
		return res, err
	}
	defer closeKV()
	fmt.Fprintf(cfg.Log, "loading %d keys of %d bytes through %s (fsync always)\n", cfg.Keys, cfg.ValueSize, leader)
	start := time.Now()
	res.LoadErrors, err = load(ctx, main, CatchUpConfig{Keys: cfg.Keys, ValueSize: cfg.ValueSize, InFlight: cfg.InFlight})
	if err != nil {
		return res, err
	}
	res.Load = time.Since(start)
	fmt.Fprintf(cfg.Log, "loaded in %s (%.0f writes/s); waiting for every copy\n", res.Load.Round(time.Millisecond), float64(cfg.Keys)/res.Load.Seconds())
	for _, id := range main.Nodes() {
		if err := waitCaughtUp(ctx, kv, id, cfg.Keys, cfg.Timeout); err != nil {
			return res, err
		}
	}
	st, err := kv.Status(ctx, leader)
	if err != nil {
		return res, err
	}
	want := st.Keys
	if err := main.Stop(ctx, follower, cluster.StopKill); err != nil {
		return res, err
	}
	res.SnapshotBytes, res.LogBytes = dataDirSizes(filepath.Join(dataDir, follower))
	fmt.Fprintf(cfg.Log, "killed %s (snapshot %s, log %s); starting it again\n", follower, mib(res.SnapshotBytes), mib(res.LogBytes))
	t0 := time.Now()
	if err := startBounded(ctx, main, follower, cfg.Timeout); err != nil {
		return res, err
	}
	res.Healthy = time.Since(t0)
	last, err := waitStatus(ctx, kv, follower, cfg.Timeout, func(st bus.Status) bool {
		return st.Ready && st.Keys >= want && !st.Stale && !st.CatchingUp
	})
	if err != nil {
		return res, fmt.Errorf("%s ready with %d keys: %w", follower, want, err)
	}
	res.Ready, res.HeldKeys = time.Since(t0), last.Keys
	line := lastLine(main.Process(follower).LogTail(400), `msg="loaded data directory"`)
	if line == "" {
		return res, fmt.Errorf("%s logged no \"loaded data directory\" line", follower)
	}
	if at, err := time.Parse(time.RFC3339Nano, logField(line, "time")); err == nil {
		res.Loaded = at.Sub(t0)
	}
	res.LoadTook, res.SnapshotTook, res.ReplayTook = logDuration(line, "took"), logDuration(line, "snapshot_took"), logDuration(line, "replay_took")
	res.SnapshotKeys, _ = strconv.Atoi(logField(line, "snapshot_keys"))
	res.LogRecords, _ = strconv.Atoi(logField(line, "log_records"))
	fmt.Fprintf(cfg.Log, "%s: %s\n%s loaded its data directory %s after its start (took %s: snapshot %s, log %s), ready with %d keys after %s\n",
		follower, line, follower, res.Loaded.Round(time.Millisecond), res.LoadTook, res.SnapshotTook, res.ReplayTook, res.HeldKeys, res.Ready.Round(time.Millisecond))
	return res, nil
}

// measureDeltaCatchUp runs cfg.Writers writers on main, kills a follower
// with SIGKILL for cfg.Absence, starts it again and times it until it is
// within cfg.Behind of the leader.
func measureDeltaCatchUp(ctx context.Context, cfg DurableConfig, main *cluster.Local) (DeltaResult, error) {
	res := DeltaResult{Writers: cfg.Writers, Absence: cfg.Absence, Behind: cfg.Behind}
	kv, closeKV, leader, follower, err := leaderAndFollower(ctx, main)
	if err != nil {
		return res, err
	}
	defer closeKV()
	w, err := startLoadWriter(ctx, main, cfg.Writers, cfg.ValueSize)
	if err != nil {
		return res, err
	}
	defer w.stop()
	tl, err := followLeader(ctx, main, leader)
	if err != nil {
		return res, err
	}
	defer tl.stop()
	if harness.Sleep(ctx, cfg.Behind+time.Second) != nil {
		return res, ctx.Err()
	}
	fmt.Fprintf(cfg.Log, "%d writers on; killing %s for %s\n", cfg.Writers, follower, cfg.Absence)
	if err := main.Stop(ctx, follower, cluster.StopKill); err != nil {
		return res, err
	}
	held := tl.at(time.Now())
	n0, t0 := w.count()
	if harness.Sleep(ctx, cfg.Absence) != nil {
		return res, ctx.Err()
	}
	n1, t1 := w.count()
	res.WriteRate = float64(n1-n0) / t1.Sub(t0).Seconds()
	start := time.Now()
	res.Missed = tl.at(start) - held
	if err := startBounded(ctx, main, follower, cfg.Timeout); err != nil {
		return res, err
	}
	res.Healthy = time.Since(start)
	_, err = waitStatus(ctx, kv, follower, cfg.Timeout, func(st bus.Status) bool {
		need := tl.at(time.Now().Add(-cfg.Behind))
		return !st.Stale && !st.CatchingUp && st.HeldRevision >= need && st.AppliedSeq >= need
	})
	if err != nil {
		return res, fmt.Errorf("%s within %s of the leader: %w", follower, cfg.Behind, err)
	}
	res.CaughtUp = time.Since(start)
	if w.errors.Load() > 0 {
		fmt.Fprintf(cfg.Log, "writer errors: %d\n", w.errors.Load())
	}
	for line := range strings.SplitSeq(main.Process(follower).LogTail(400), "\n") {
		if strings.Contains(line, "caught up") || strings.Contains(line, "catch-up failed") {
			res.Log = append(res.Log, line)
		}
	}
	if line := lastLine(strings.Join(res.Log, "\n"), `msg="caught up from a revision"`); line != "" {
		res.Path = "delta"
		res.Updates, _ = strconv.Atoi(logField(line, "updates"))
		res.Took = logDuration(line, "took")
	} else if line := lastLine(strings.Join(res.Log, "\n"), `msg="caught up"`); line != "" {
		res.Path = "full copy"
		res.Updates, _ = strconv.Atoi(logField(line, "keys"))
		res.Took = logDuration(line, "took")
	}
	fmt.Fprintf(cfg.Log, "%s was %d revisions behind (%.0f writes/s); healthy after %s, within %s of the leader after %s (%s: %d updates, took %s)\n",
		follower, res.Missed, res.WriteRate, res.Healthy.Round(time.Millisecond), cfg.Behind, res.CaughtUp.Round(time.Millisecond), res.Path, res.Updates, res.Took)
	return res, nil
}

// mainClient is a client of main's default subjects on a connection of
// its own, and the function that closes it.
func mainClient(main *cluster.Local) (*client.Client, func(), error) {
	nc, err := dial(main)
	if err != nil {
		return nil, nil, err
	}
	kv, err := client.New(nc, client.WithRequestTimeout(5*time.Second))
	if err != nil {
		nc.Close()
		return nil, nil, err
	}
	return kv, nc.Close, nil
}

// leaderAndFollower is a client of main (closeKV closes it), main's
// leader and the follower the study restarts (the last in ID order).
func leaderAndFollower(ctx context.Context, main *cluster.Local) (kv *client.Client, closeKV func(), leader, follower string, err error) {
	kv, closeKV, err = mainClient(main)
	if err != nil {
		return nil, nil, "", "", err
	}
	leader, followers, err := firstLeader(ctx, kv, main)
	if err != nil {
		closeKV()
		return nil, nil, "", "", err
	}
	return kv, closeKV, leader, followers[len(followers)-1], nil
}

// startBounded starts node id of main again, waiting at most timeout for
// its /healthz.
func startBounded(ctx context.Context, main *cluster.Local, id string, timeout time.Duration) error {
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return main.Start(sctx, id)
}

// waitStatus polls id's status every 10 ms until ok accepts it, and
// returns the last status seen.
func waitStatus(ctx context.Context, kv *client.Client, id string, timeout time.Duration, ok func(bus.Status) bool) (bus.Status, error) {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last bus.Status
	err := harness.WaitFor(wctx, 10*time.Millisecond, func() error {
		sctx, cancel := context.WithTimeout(wctx, time.Second)
		defer cancel()
		st, err := kv.Status(sctx, id)
		if err != nil {
			return err
		}
		last = st
		if !ok(st) {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil {
		return last, fmt.Errorf("%w (last status: %d keys, applied %d, held %d, stale %v, catching up %v, ready %v)",
			err, last.Keys, last.AppliedSeq, last.HeldRevision, last.Stale, last.CatchingUp, last.Ready)
	}
	return last, nil
}

// revTimeline samples the leader's applied revision every 10 ms, so that
// what it held at an earlier moment can be looked up.
type revTimeline struct {
	mu      sync.Mutex
	times   []time.Time
	revs    []uint64
	cancel  context.CancelFunc
	stopped chan struct{}
}

// followLeader starts sampling leader's status on a connection of its
// own; stop ends it.
func followLeader(ctx context.Context, main *cluster.Local, leader string) (*revTimeline, error) {
	kv, closeKV, err := mainClient(main)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	tl := &revTimeline{cancel: cancel, stopped: make(chan struct{})}
	go func() {
		defer close(tl.stopped)
		defer closeKV()
		for sctx.Err() == nil {
			rctx, cancel := context.WithTimeout(sctx, time.Second)
			st, err := kv.Status(rctx, leader)
			cancel()
			if err == nil {
				tl.mu.Lock()
				tl.times, tl.revs = append(tl.times, time.Now()), append(tl.revs, st.AppliedSeq)
				tl.mu.Unlock()
			}
			_ = harness.Sleep(sctx, 10*time.Millisecond)
		}
	}()
	return tl, nil
}

// at is the leader's revision at the last sample taken by t (0: none).
func (tl *revTimeline) at(t time.Time) uint64 {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var rev uint64
	for i, s := range tl.times {
		if s.After(t) {
			break
		}
		rev = tl.revs[i]
	}
	return rev
}

func (tl *revTimeline) stop() {
	tl.cancel()
	<-tl.stopped
}

// dataDirSizes is the bytes of a data directory's snapshot file and of
// its log segments (everything under wal/).
func dataDirSizes(dir string) (snapshot, log int64) {
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		switch rel, _ := filepath.Rel(dir, path); {
		case rel == "snapshot":
			snapshot += info.Size()
		case strings.HasPrefix(rel, "wal"+string(filepath.Separator)):
			log += info.Size()
		}
		return nil
	})
	return snapshot, log
}

// lastLine is the last line of text that contains s, or "".
func lastLine(text, s string) string {
	lines := strings.Split(text, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], s) {
			return lines[i]
		}
	}
	return ""
}

// logField is the value of key=value in a line of slog's text format
// (unquoted), or "".
func logField(line, key string) string {
	i := strings.Index(" "+line, " "+key+"=")
	if i < 0 {
		return ""
	}
	v := line[i+len(key)+1:]
	if strings.HasPrefix(v, `"`) {
		if s, err := strconv.QuotedPrefix(v); err == nil {
			u, _ := strconv.Unquote(s)
			return u
		}
	}
	v, _, _ = strings.Cut(v, " ")
	return v
}

// logDuration is logField parsed as a duration (0 if it is not one).
func logDuration(line, key string) time.Duration {
	d, _ := time.ParseDuration(logField(line, key))
	return d
}
