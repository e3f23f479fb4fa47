package testdriver

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/zkvstore/zkv/testdriver/cluster"
)

// LocalRun configures RunLocal.
type LocalRun struct {
	// Config configures the scenarios. SessionTimeout and Logger are
	// taken from Local and the log directory.
	Config Config
	// Local configures the cluster. LogDir, Progress and Logger are set
	// by RunLocal.
	Local cluster.LocalOptions
	// LogRoot is where the run's log directory is created; "" means
	// DefaultLogRoot.
	LogRoot string
	// LogDir, if set, is the run's log directory itself (created if
	// needed), instead of a new one under LogRoot.
	LogDir string
}

// RunLocal runs the scenarios on a cluster.Local: it creates the log
// directory, starts the cluster, runs Run, stops everything (with a fresh
// deadline, also when ctx was cancelled), writes summary.json and prints
// where the logs are. Everything printed to out also goes to driver.log.
//
// The error is non-nil when the run could not happen or complete (the
// cluster did not start, ctx ended: it then wraps ErrInterrupted); failed
// scenarios are in the Summary. The Summary's LogDir is set whenever the
// directory was created.
func RunLocal(ctx context.Context, lr LocalRun, out io.Writer) (Summary, error) {
	dir, err := openRunLogDir(lr.LogDir, lr.LogRoot, "", time.Now())
	if err != nil {
		return Summary{Result: Fail, Error: err.Error()}, err
	}
	defer dir.Close()
	out = dir.Tee(out)
	log := dir.Logger()

	local := lr.Local
	local.LogDir, local.Progress, local.Logger = dir.Path, out, log
	if local.SessionTimeout <= 0 {
		local.SessionTimeout = DefaultSessionTimeout
	}
	cfg := lr.Config
	cfg.SessionTimeout, cfg.Logger = local.SessionTimeout, log
	log.Info("local run", "servers", local.Servers, "session_timeout", local.SessionTimeout,
		"zookeeper", local.ZooKeeper, "zookeeper_ensemble", local.ZooKeeperEnsemble, "nats", local.NATSURL, "kvserver", local.KVServer, "scenarios", cfg.Scenarios, "kill", cfg.Kill)
	fmt.Fprintf(out, "logs: %s\n", dir.Path)

	started := time.Now()
	lc, err := cluster.StartLocal(ctx, local)
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w: %w", ErrInterrupted, err)
		}
		sum := Summary{Result: Fail, Error: err.Error(), Started: started, Duration: time.Since(started),
			SessionTimeout: local.SessionTimeout, Kill: cfg.Kill, LogDir: dir.Path}
		fmt.Fprintf(out, "\nthe cluster did not start: %v\n", err)
		finish(out, dir, sum, log)
		return sum, err
	}
	fmt.Fprintln(out)

	sum, runErr := Run(ctx, cfg, lc, out)
	sum.LogDir = dir.Path

	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cluster.TeardownTimeout)
	defer cancel()
	begin := time.Now()
	if err := lc.Close(tctx); err != nil {
		fmt.Fprintf(out, "\nstopping the cluster: %v\n", err)
		log.Warn("teardown", "err", err)
	}
	log.Debug("cluster stopped", "took", time.Since(begin))
	finish(out, dir, sum, log)
	return sum, runErr
}

// finish writes summary.json and prints where the logs are.
func finish(out io.Writer, dir *LogDir, sum Summary, log *slog.Logger) {
	if err := sum.WriteJSON(dir.File(SummaryName)); err != nil {
		fmt.Fprintf(out, "%v\n", err)
		log.Warn("summary", "err", err)
	}
	fmt.Fprintf(out, "\nlogs: %s (%s)\n", dir.Path, strings.Join(logFiles(dir.Path), ", "))
}

// logFiles lists the files of a log directory, driver.log and
// summary.json first.
func logFiles(dir string) []string {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	names := []string{DriverLogName, SummaryName}
	for _, e := range entries {
		if !e.IsDir() && !slices.Contains(names, e.Name()) {
			names = append(names, e.Name())
		}
	}
	return names
}
