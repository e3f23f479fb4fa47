// Command composedriver runs zkv's scenarios (add-read, leader-election,
// stale-read) against the docker compose deployment of compose/, where
// stopping a node means killing its container, and then checks that the
// cluster survives the loss of one ZooKeeper member: with that member's
// container killed, the kvserver leader's container is killed too, and the
// two remaining servers must elect a new leader and take writes.
//
// From the host, against a project brought up with a name:
//
//	composedriver --project zkv
//
// From the driver service inside the compose network (compose/driver.yml):
// the project is the driver container's own, and nodes are reached by
// service name (--http network).
//
// The scenarios are testdriver.Run's; the cluster is a
// testdriver.DockerCluster. Exit codes: 0 all passed, 1 a check failed,
// 2 usage, 3 the deployment could not be reached, 130 interrupted.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/urfave/cli/v2"

	"zkv/bus"
	"zkv/testdriver"
)

// Exit codes.
const (
	exitFailed      = 1
	exitUsage       = 2
	exitSetup       = 3
	exitInterrupted = 130
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := app().RunContext(ctx, os.Args)
	stop()
	if err == nil {
		return
	}
	code := exitUsage
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		code = ec.ExitCode()
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintln(os.Stderr, "composedriver:", msg)
	}
	os.Exit(code)
}

func app() *cli.App {
	return &cli.App{
		Name:        "composedriver",
		Usage:       "run zkv's scenarios and a ZooKeeper member loss against a docker compose project",
		HideVersion: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "project", Usage: "compose project `NAME` (default: the project of the container this runs in)", EnvVars: []string{"ZKV_COMPOSE_PROJECT", "COMPOSE_PROJECT_NAME"}},
			&cli.StringFlag{Name: "http", Value: "published", Usage: "how nodes are reached: published (host ports, from the host) or network (service names, inside the compose network)", EnvVars: []string{"ZKV_COMPOSE_HTTP"}},
			&cli.StringFlag{Name: "nats", Usage: "NATS `URL` (default: the nats service, as --http says)", EnvVars: []string{"ZKV_NATS"}},
			&cli.StringFlag{Name: "socket", Usage: "Docker Engine unix socket `PATH` (default: DOCKER_HOST's or " + testdriver.DefaultDockerSocket + ")", EnvVars: []string{"ZKV_DOCKER_SOCKET"}},
			&cli.StringFlag{Name: "nodes", Value: strings.Join(testdriver.DefaultComposeNodes(), ","), Usage: "comma-separated kvserver services", EnvVars: []string{"ZKV_COMPOSE_NODES"}},
			&cli.StringFlag{Name: "zookeeper-services", Value: strings.Join(testdriver.DefaultComposeZooKeeper(), ","), Usage: "comma-separated ZooKeeper services", EnvVars: []string{"ZKV_COMPOSE_ZOOKEEPER"}},
			&cli.StringFlag{Name: "scenario", Value: "all", Usage: "comma-separated scenarios: add-read, leader-election, stale-read, all, or none", EnvVars: []string{"ZKV_SCENARIO"}},
			&cli.StringFlag{Name: "kill", Value: string(testdriver.StopKill), Usage: "how leader-election stops the leader's container: sigkill (docker kill) or sigterm", EnvVars: []string{"ZKV_KILL"}},
			&cli.BoolFlag{Name: "zookeeper-loss", Value: true, Usage: "after the scenarios, kill a ZooKeeper member and then the leader, and check the election and writes", EnvVars: []string{"ZKV_ZOOKEEPER_LOSS"}},
			&cli.DurationFlag{Name: "session-timeout", Value: 4 * time.Second, Usage: "the kvservers' ZooKeeper session timeout (ZKV_SESSION_TIMEOUT of the compose file)", EnvVars: []string{"ZKV_SESSION_TIMEOUT"}},
			&cli.DurationFlag{Name: "step-timeout", Value: 30 * time.Second, Usage: "deadline of each step", EnvVars: []string{"ZKV_STEP_TIMEOUT"}},
			&cli.StringFlag{Name: "log-dir", Usage: "`DIR` for driver.log and summary.json (default: logs/<timestamp>/compose)", EnvVars: []string{"ZKV_LOG_DIR"}},
			&cli.BoolFlag{Name: "save-logs", Value: true, Usage: "also save every container's log to the log dir at the end", EnvVars: []string{"ZKV_SAVE_LOGS"}},
		},
		Action: run,
	}
}

func run(c *cli.Context) error {
	if c.NArg() > 0 {
		return cli.Exit(fmt.Sprintf("unexpected argument %q", c.Args().First()), exitUsage)
	}
	var scenarios []string
	if s := c.String("scenario"); s != "none" {
		var err error
		if scenarios, err = testdriver.ParseScenarios(s); err != nil {
			return cli.Exit("--scenario: "+err.Error(), exitUsage)
		}
	}
	kill, err := testdriver.ParseStop(c.String("kill"))
	if err != nil {
		return cli.Exit("--kill: "+err.Error(), exitUsage)
	}
	inNetwork := false
	switch h := c.String("http"); h {
	case "published":
	case "network":
		inNetwork = true
	default:
		return cli.Exit(fmt.Sprintf("--http %q: want published or network", h), exitUsage)
	}

	dir := c.String("log-dir")
	if dir == "" {
		dir = filepath.Join(testdriver.DefaultLogRoot, time.Now().Format("20060102-150405"), "compose")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return cli.Exit(err.Error(), exitSetup)
	}
	logFile, err := os.Create(filepath.Join(dir, testdriver.DriverLogName))
	if err != nil {
		return cli.Exit(err.Error(), exitSetup)
	}
	defer logFile.Close()
	out := io.MultiWriter(c.App.Writer, logFile)
	log := slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelDebug}))

	ctx := c.Context
	cluster, err := testdriver.NewDockerCluster(ctx, testdriver.DockerConfig{
		Project:   c.String("project"),
		Socket:    c.String("socket"),
		Nodes:     splitList(c.String("nodes")),
		ZooKeeper: splitList(c.String("zookeeper-services")),
		InNetwork: inNetwork,
		NATSURL:   c.String("nats"),
	})
	if err != nil {
		return cli.Exit(err.Error(), exitSetup)
	}
	defer cluster.Close(context.WithoutCancel(ctx))
	fmt.Fprintf(out, "compose project %s: kvservers %s, ZooKeeper %s, NATS %s\nlogs: %s\n\n",
		cluster.Project(), strings.Join(cluster.Nodes(), " "), strings.Join(cluster.ZooKeeperMembers(), " "), cluster.NATSURL(), dir)

	passed := true
	if len(scenarios) > 0 {
		sum, err := testdriver.Run(ctx, testdriver.Config{
			Scenarios:      scenarios,
			Kill:           kill,
			SessionTimeout: c.Duration("session-timeout"),
			Timeout:        c.Duration("step-timeout"),
			Logger:         log,
		}, cluster, out)
		sum.LogDir = dir
		if werr := sum.WriteJSON(filepath.Join(dir, testdriver.SummaryName)); werr != nil {
			fmt.Fprintln(out, werr)
		}
		switch {
		case errors.Is(err, testdriver.ErrInterrupted):
			return cli.Exit("interrupted", exitInterrupted)
		case err != nil:
			return cli.Exit(err.Error(), exitSetup)
		}
		passed = sum.Passed()
	}
	if c.Bool("zookeeper-loss") && ctx.Err() == nil {
		z := &zkLoss{cluster: cluster, out: out, log: log, timeout: c.Duration("step-timeout") + c.Duration("session-timeout")}
		if err := z.run(ctx); err != nil {
			fmt.Fprintf(out, "FAIL: %v\n", err)
			passed = false
		} else {
			fmt.Fprintln(out, "PASS: with one ZooKeeper member down, the remaining servers elected a new leader and took writes")
		}
	}
	if c.Bool("save-logs") {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		if err := cluster.SaveLogs(lctx, dir); err != nil {
			fmt.Fprintf(out, "saving container logs: %v\n", err)
		}
		cancel()
	}
	fmt.Fprintf(out, "\nlogs: %s\n", dir)
	switch {
	case ctx.Err() != nil:
		return cli.Exit("interrupted", exitInterrupted)
	case !passed:
		return cli.Exit("", exitFailed)
	}
	return nil
}

// splitList splits a comma-separated list, dropping empty entries.
func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// zkLoss is the ZooKeeper member loss check.
type zkLoss struct {
	cluster *testdriver.DockerCluster
	out     io.Writer
	log     *slog.Logger
	timeout time.Duration
	client  *bus.Client
	step    int
}

// say prints one numbered step.
func (z *zkLoss) say(format string, args ...any) {
	z.step++
	fmt.Fprintf(z.out, "[zk.%d] %s\n", z.step, fmt.Sprintf(format, args...))
}

func (z *zkLoss) run(ctx context.Context) error {
	fmt.Fprintln(z.out, "\n== zookeeper-member-loss: a ZooKeeper member's container is killed; the ensemble keeps a quorum, the kvservers still elect a leader and take writes")
	nc, err := nats.Connect(z.cluster.NATSURL(), nats.Name("zkv composedriver"), nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connect to NATS %s: %w", z.cluster.NATSURL(), err)
	}
	defer nc.Close()
	if z.client, err = bus.NewClient(nc, bus.WithRequestTimeout(time.Second), bus.WithRetryBackoff(20*time.Millisecond, 200*time.Millisecond)); err != nil {
		return err
	}

	// The member to kill: the ZooKeeper leader, so that the ensemble must
	// elect a new one too.
	members := z.cluster.ZooKeeperMembers()
	if len(members) < 3 {
		return fmt.Errorf("need a ZooKeeper ensemble of at least 3 members, have %d", len(members))
	}
	victim, modes := "", []string{}
	for _, m := range members {
		mode, err := z.cluster.ZooKeeperMode(ctx, m)
		if err != nil {
			return err
		}
		modes = append(modes, m+"="+mode)
		if mode == "leader" {
			victim = m
		}
	}
	if victim == "" {
		victim = members[0]
	}
	z.say("ZooKeeper ensemble: %s", strings.Join(modes, " "))
	if err := z.cluster.KillZooKeeper(ctx, victim); err != nil {
		return err
	}
	z.say("docker kill %s (the ZooKeeper leader): 2 of 3 members remain, still a quorum", victim)
	begin := time.Now()
	modes = modes[:0]
	for _, m := range members {
		if m == victim {
			continue
		}
		var mode string
		err := z.poll(ctx, func(ctx context.Context) error {
			var err error
			mode, err = z.cluster.ZooKeeperMode(ctx, m)
			if err == nil && mode != "leader" && mode != "follower" {
				err = fmt.Errorf("mode %s", mode)
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("ZooKeeper %s did not serve again: %w", m, err)
		}
		modes = append(modes, m+"="+mode)
	}
	z.say("the remaining members serve again after %s: %s", testdriver.FormatDuration(time.Since(begin)), strings.Join(modes, " "))

	old, err := z.agreedLeader(ctx, z.cluster.Nodes(), 0)
	if err != nil {
		return fmt.Errorf("no agreed kvserver leader with a ZooKeeper member down: %w", err)
	}
	z.say("kvserver leader is %s (epoch %d), %s", old.Node, old.Epoch, z.cluster.Describe(old.Node))
	if err := z.cluster.Stop(ctx, old.Node, testdriver.StopKill); err != nil {
		return err
	}
	killed := time.Now()
	z.say("docker kill %s: the leader's container is gone", old.Node)
	var rest []string
	for _, id := range z.cluster.Nodes() {
		if id != old.Node {
			rest = append(rest, id)
		}
	}
	leader, err := z.agreedLeader(ctx, rest, old.Epoch)
	if err != nil {
		return fmt.Errorf("the remaining servers %s elected no new leader: %w", strings.Join(rest, ", "), err)
	}
	z.say("%s leads epoch %d, %s after the kill; %s follow it", leader.Node, leader.Epoch,
		testdriver.FormatDuration(time.Since(killed)), strings.Join(rest, ", "))

	key, value := "zookeeper-loss", "written-"+time.Now().UTC().Format("150405.000")
	wctx, cancel := context.WithTimeout(ctx, z.timeout)
	reply, err := z.client.Put(wctx, key, value)
	cancel()
	if err != nil {
		return fmt.Errorf("write %s=%s: %w", key, value, err)
	}
	if reply.Leader != leader.Node {
		return fmt.Errorf("write %s=%s was answered by %s, want the new leader %s", key, value, reply.Leader, leader.Node)
	}
	z.say("write %s=%q: ok, revision %d, epoch %d, by %s", key, value, reply.Revision, reply.Epoch, reply.Leader)
	for _, id := range rest {
		err := z.poll(ctx, func(ctx context.Context) error {
			r, err := z.client.Get(ctx, id, key)
			if err == nil && (!r.Found || r.Value != value) {
				err = fmt.Errorf("%s has found=%v value=%q", id, r.Found, r.Value)
			}
			return err
		})
		if err != nil {
			return fmt.Errorf("read %s from %s: %w", key, id, err)
		}
	}
	z.say("read %s from %s: %q on each", key, strings.Join(rest, " and "), value)

	if err := z.cluster.StartZooKeeper(ctx, victim); err != nil {
		return err
	}
	mode, _ := z.cluster.ZooKeeperMode(ctx, victim)
	z.say("started %s again: it serves as %s", victim, mode)
	if err := z.cluster.Start(ctx, old.Node); err != nil {
		return err
	}
	st, err := z.agreedLeader(ctx, z.cluster.Nodes(), old.Epoch)
	if err != nil {
		return fmt.Errorf("after %s came back: %w", old.Node, err)
	}
	z.say("started %s again: every server follows %s (epoch %d)", old.Node, st.Node, st.Epoch)
	return nil
}

// agreedLeader polls the status of ids until one of them leads an epoch
// above minEpoch and all of them name it as leader, connected to ZooKeeper.
// It returns the leader's status.
func (z *zkLoss) agreedLeader(ctx context.Context, ids []string, minEpoch uint64) (bus.Status, error) {
	var leader bus.Status
	err := z.poll(ctx, func(ctx context.Context) error {
		leader = bus.Status{}
		var sts []bus.Status
		for _, id := range ids {
			st, err := z.client.Status(ctx, id)
			if err != nil {
				return fmt.Errorf("status of %s: %w", id, err)
			}
			if st.Role == bus.RoleLeader {
				leader = st
			}
			sts = append(sts, st)
		}
		if leader.Node == "" || leader.Epoch <= minEpoch {
			return fmt.Errorf("no leader above epoch %d yet (%s)", minEpoch, describe(sts))
		}
		for _, st := range sts {
			if st.Leader != leader.Node || st.Epoch != leader.Epoch || st.ZooKeeper != "connected" {
				return fmt.Errorf("servers do not agree yet (%s)", describe(sts))
			}
		}
		return nil
	})
	return leader, err
}

// describe formats statuses for an error message.
func describe(sts []bus.Status) string {
	var parts []string
	for _, st := range sts {
		parts = append(parts, fmt.Sprintf("%s: %s epoch %d leader %q zookeeper %s", st.Node, st.Role, st.Epoch, st.Leader, st.ZooKeeper))
	}
	return strings.Join(parts, "; ")
}

// poll calls f, each call bounded by a second, until it succeeds or the
// step's timeout ends.
func (z *zkLoss) poll(ctx context.Context, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(ctx, z.timeout)
	defer cancel()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		cctx, ccancel := context.WithTimeout(ctx, time.Second)
		err := f(cctx)
		ccancel()
		if err == nil {
			return nil
		}
		z.log.Debug("poll", "err", err)
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %w)", ctx.Err(), err)
		case <-t.C:
		}
	}
}
