package testdriver

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/zkvstore/zkv/testdriver/cluster"
)

// ComposeLogSubdir is the subdirectory of a run's timestamped log
// directory that RunCompose writes to: logs/<timestamp>/compose, where
// compose/compose-test.sh keeps the containers' logs too.
const ComposeLogSubdir = "compose"

// saveLogsTimeout bounds saving every container's log.
const saveLogsTimeout = 30 * time.Second

// ComposeRun configures RunCompose.
type ComposeRun struct {
	// Config configures the scenarios. Logger is set by RunCompose; a
	// zero SessionTimeout is taken from the kvserver containers
	// (cluster.Compose.SessionTimeout).
	Config Config
	// Docker names the compose project and how to reach it. The project
	// must be up: RunCompose starts nothing.
	Docker cluster.ComposeConfig
	// LogRoot is where the run's log directory, <timestamp>/compose, is
	// created; "" means DefaultLogRoot.
	LogRoot string
	// LogDir, if set, is the run's log directory itself (created if
	// needed), instead of a new one under LogRoot.
	LogDir string
	// SaveLogs also saves every container's log to the log directory
	// (<service>.log) at the end.
	SaveLogs bool
}

// RunCompose runs the scenarios on a cluster.Compose, a docker compose
// project that is up: it creates the log directory, finds the project's
// containers, runs Run (where stopping a node kills its container, and
// zookeeper-loss kills a ZooKeeper member's), optionally saves the
// containers' logs, writes summary.json and prints where the logs are.
// Everything printed to out also goes to driver.log. It leaves the
// project as it found it, up.
//
// The error is non-nil when the run could not happen or complete (the
// project could not be reached, ctx ended: it then wraps ErrInterrupted);
// failed scenarios are in the Summary. The Summary's LogDir is set
// whenever the directory was created.
func RunCompose(ctx context.Context, cr ComposeRun, out io.Writer) (Summary, error) {
	dir, err := openRunLogDir(cr.LogDir, cr.LogRoot, ComposeLogSubdir, time.Now())
	if err != nil {
		return Summary{Result: Fail, Error: err.Error()}, err
	}
	defer dir.Close()
	out = dir.Tee(out)
	log := dir.Logger()
	cfg := cr.Config
	cfg.Logger = log
	fmt.Fprintf(out, "logs: %s\n", dir.Path)

	started := time.Now()
	cluster, err := cluster.NewCompose(ctx, cr.Docker)
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w: %w", ErrInterrupted, err)
		}
		sum := Summary{Result: Fail, Error: err.Error(), Started: started, Duration: time.Since(started),
			SessionTimeout: cfg.SessionTimeout, Kill: cfg.Kill, LogDir: dir.Path}
		fmt.Fprintf(out, "\nthe compose project could not be reached: %v\n", err)
		finish(out, dir, sum, log)
		return sum, err
	}
	if cfg.SessionTimeout <= 0 {
		cfg.SessionTimeout = cluster.SessionTimeout()
	}
	zk := strings.Join(cluster.ZooKeeperMembers(), " ")
	if zk == "" {
		zk = "none found"
	}
	log.Info("compose run", "project", cluster.Project(), "nodes", cluster.Nodes(), "zookeeper", cluster.ZooKeeperMembers(),
		"nats", cluster.NATSURL(), "in_network", cr.Docker.InNetwork, "session_timeout", cfg.SessionTimeout,
		"scenarios", cfg.Scenarios, "kill", cfg.Kill)
	fmt.Fprintf(out, "compose project %s: kvservers %s, ZooKeeper %s, NATS %s\n\n",
		cluster.Project(), strings.Join(cluster.Nodes(), " "), zk, cluster.NATSURL())

	sum, runErr := Run(ctx, cfg, cluster, out)
	sum.LogDir = dir.Path

	if cr.SaveLogs {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), saveLogsTimeout)
		if err := cluster.SaveLogs(lctx, dir.Path); err != nil {
			fmt.Fprintf(out, "\nsaving the containers' logs: %v\n", err)
			log.Warn("save logs", "err", err)
		}
		cancel()
	}
	_ = cluster.Close(context.WithoutCancel(ctx))
	finish(out, dir, sum, log)
	return sum, runErr
}
