// Command testdriver runs zkv's end-to-end scenarios on a local cluster of
// real processes or on a docker compose project (run), or starts a local
// cluster and keeps it up for trying things by hand (up).
//
//	testdriver run                          # every scenario on a local cluster
//	testdriver run --scenario stale-read --kill sigterm
//	testdriver run --zookeeper-ensemble     # a 3-member ZooKeeper ensemble: zookeeper-loss runs too
//	testdriver run --cluster compose --compose-project zkv
//	testdriver up                           # until Ctrl-C
//
// It finds kvserver (and kvctl, for the commands up prints) next to its
// own executable, where `make build` puts them. The flags are parsed here;
// the clusters and the scenarios are package testdriver's.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/zkvstore/zkv/internal/cliflags"
	"github.com/zkvstore/zkv/testdriver"
	"github.com/zkvstore/zkv/testdriver/bench"
	"github.com/zkvstore/zkv/testdriver/chaos"
	"github.com/zkvstore/zkv/testdriver/cluster"
)

// Exit codes of testdriver.
const (
	ExitOK          = 0   // every scenario passed; up: stopped by a signal
	ExitFailed      = 1   // a scenario failed
	ExitUsage       = 2   // bad command line
	ExitSetup       = 3   // the cluster could not be started or reached
	ExitInterrupted = 130 // run: interrupted before it finished
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs the command line args (args[0] is the program name) and returns
// the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	err := newApp(stdout, stderr).RunContext(ctx, args)
	if err == nil {
		return ExitOK
	}
	var ec cli.ExitCoder
	if errors.As(err, &ec) {
		if msg := ec.Error(); msg != "" {
			fmt.Fprintln(stderr, "testdriver:", msg)
		}
		return ec.ExitCode()
	}
	// Errors cli itself finds in the command line.
	fmt.Fprintln(stderr, "testdriver:", err)
	return ExitUsage
}

const description = `testdriver starts ZooKeeper, an embedded NATS server and kvserver
processes (or uses the ZooKeeper and NATS given), then either runs the
scenarios (run) or stays up until Ctrl-C (up). Each invocation writes its
logs to a new directory under --log-dir.

run --cluster compose runs the scenarios on a docker compose project of
compose/docker-compose.yml that is up instead: stopping a server kills its
container, through the Docker Engine API on --docker-socket. Its logs go to
<log-dir>/<timestamp>/compose.

Exit codes:
   0  every scenario passed (up: stopped by Ctrl-C)
   1  a scenario failed
   2  usage error
   3  the cluster could not be started or reached
 130  interrupted`

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:        "testdriver",
		Usage:       "run zkv's end-to-end scenarios on a local cluster or a compose project, or keep a local cluster up",
		Description: description,
		Writer:      stdout,
		ErrWriter:   stderr,
		Version:     cliflags.Version(),
		Commands: []*cli.Command{
			bench.Command(),
			chaos.Command(),
			{
				Name:   "run",
				Usage:  "start a local cluster (or use a compose project), run the scenarios step by step, print a summary",
				Flags:  append(clusterFlags(true), runFlags()...),
				Action: runAction,
			},
			{
				Name:   "up",
				Usage:  "start a cluster, print how to reach it, and keep it up until Ctrl-C",
				Flags:  append(clusterFlags(false), upFlags()...),
				Action: upAction,
			},
		},
		OnUsageError: func(_ *cli.Context, err error, _ bool) error {
			return cli.Exit(err.Error(), ExitUsage)
		},
		// run prints errors and picks the exit code; cli must not exit.
		ExitErrHandler: func(*cli.Context, error) {},
	}
}

// clusterFlags are the flags of both commands; run also has
// --cluster compose, which some of them describe.
func clusterFlags(run bool) []cli.Flag {
	session := "the servers' ZooKeeper session timeout: a crashed leader is replaced after about this long"
	if run {
		session += " (compose: default the kvserver containers' own)"
	}
	return []cli.Flag{
		&cli.IntFlag{Name: "servers", Value: cluster.DefaultServers, Usage: "number of kvserver processes (IDs n1..nN)", EnvVars: []string{"ZKV_SERVERS"}},
		&cli.DurationFlag{Name: "session-timeout", Value: testdriver.DefaultSessionTimeout, Usage: session, EnvVars: []string{"ZKV_SESSION_TIMEOUT"}},
		&cli.StringFlag{Name: "zookeeper", Usage: "use the running ZooKeeper at `HOST:PORT[,HOST:PORT...]` instead of starting one", EnvVars: []string{"ZKV_ZOOKEEPER"}},
		&cli.StringFlag{Name: "nats", Usage: "use the running NATS server at `URL` instead of an embedded one (compose: instead of the nats service)", EnvVars: []string{"ZKV_NATS"}},
		&cli.BoolFlag{Name: "embedded-nats", Usage: "local: run no NATS server; each kvserver is a NATS node (--nats-listen), clustered with routes, and clients connect to any of them", EnvVars: []string{"ZKV_EMBEDDED_NATS"}},
		&cli.StringFlag{Name: "kvserver", Usage: "kvserver binary `PATH` (default: kvserver next to this program)", EnvVars: []string{"ZKV_KVSERVER"}},
		&cli.StringFlag{Name: "server-log-level", Value: "debug", Usage: "the servers' --log-level (debug, info, warn, error)", EnvVars: []string{"ZKV_SERVER_LOG_LEVEL"}},
		&cli.StringFlag{Name: "log-dir", Value: testdriver.DefaultLogRoot, Usage: "each invocation logs to a new `DIR`/<timestamp>", EnvVars: []string{"ZKV_LOG_DIR"}},
	}
}

func runFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "cluster", Value: clusterLocal, Usage: "where the scenarios run: local (processes started here) or compose (a docker compose project that is up)", EnvVars: []string{"ZKV_CLUSTER"}},
		&cli.StringFlag{Name: "scenario", Usage: "comma-separated scenarios to run: " + strings.Join(testdriver.Scenarios(), ", ") + ", or all (default: the first three, and " + testdriver.ScenarioZooKeeperLoss + " too with --zookeeper-ensemble or --cluster compose; it needs a ZooKeeper ensemble the driver can kill members of, else it is skipped)", EnvVars: []string{"ZKV_SCENARIO"}},
		&cli.StringFlag{Name: "kill", Value: string(cluster.StopKill), Usage: "how leader-election stops the leader: sigkill (crash) or sigterm (clean resign)", EnvVars: []string{"ZKV_KILL"}},
		&cli.DurationFlag{Name: "step-timeout", Value: testdriver.DefaultTimeout, Usage: "deadline of each step (the election after a stop gets the session timeout on top)", EnvVars: []string{"ZKV_STEP_TIMEOUT"}},
		&cli.DurationFlag{Name: "read-timeout", Value: testdriver.DefaultReadTimeout, Usage: "how long a server is polled for the value it should return", EnvVars: []string{"ZKV_READ_TIMEOUT"}},
		&cli.StringFlag{Name: "run-log-dir", Usage: "write this run's logs to `DIR` itself instead of a new directory under --log-dir", EnvVars: []string{"ZKV_RUN_LOG_DIR"}},
		&cli.BoolFlag{Name: "zookeeper-ensemble", Usage: "local: start a " + fmt.Sprint(cluster.EnsembleSize) + "-member ZooKeeper ensemble instead of a standalone ZooKeeper (zookeeper-loss kills its members)", EnvVars: []string{"ZKV_ZOOKEEPER_ENSEMBLE"}},
		&cli.StringFlag{Name: "compose-project", Usage: "compose: the project `NAME` (default: the project of the container the driver runs in)", EnvVars: []string{"ZKV_COMPOSE_PROJECT"}},
		&cli.StringFlag{Name: "compose-http", Value: httpPublished, Usage: "compose: how the driver reaches the containers: published (their published ports, from the host) or network (service names, inside the compose network)", EnvVars: []string{"ZKV_COMPOSE_HTTP"}},
		&cli.StringFlag{Name: "compose-nodes", Value: strings.Join(cluster.DefaultComposeNodes(), ","), Usage: "compose: comma-separated kvserver services", EnvVars: []string{"ZKV_COMPOSE_NODES"}},
		&cli.StringFlag{Name: "compose-zookeeper", Value: strings.Join(cluster.DefaultComposeZooKeeper(), ","), Usage: "compose: comma-separated ZooKeeper services", EnvVars: []string{"ZKV_COMPOSE_ZOOKEEPER"}},
		&cli.StringFlag{Name: "docker-socket", Usage: "compose: the Docker Engine's unix socket `PATH` (default: DOCKER_HOST's unix socket, else " + cluster.DefaultDockerSocket + ")", EnvVars: []string{"ZKV_DOCKER_SOCKET"}},
		&cli.BoolFlag{Name: "container-logs", Value: true, Usage: "compose: save every container's log to the log directory at the end", EnvVars: []string{"ZKV_CONTAINER_LOGS"}},
	}
}

// The values of --cluster and --compose-http.
const (
	clusterLocal   = "local"
	clusterCompose = "compose"
	httpPublished  = "published"
	httpNetwork    = "network"
)

// localOnly and composeOnly are the flags of run that only one --cluster
// takes.
var (
	localOnly   = []string{"servers", "kvserver", "server-log-level", "zookeeper", "zookeeper-ensemble", "embedded-nats"}
	composeOnly = []string{"compose-project", "compose-http", "compose-nodes", "compose-zookeeper", "docker-socket", "container-logs"}
)

func upFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "nats-port", Value: testdriver.DefaultNATSPort, Usage: "port of the embedded NATS server (the default falls back to a free port when busy; 0: a free port)", EnvVars: []string{"ZKV_NATS_PORT"}},
		&cli.IntFlag{Name: "http-base-port", Usage: "give nI the HTTP port BASE+I-1 (default: free ports)", EnvVars: []string{"ZKV_HTTP_BASE_PORT"}},
		&cli.StringFlag{Name: "kvctl", Usage: "kvctl binary `PATH` for the printed commands (default: kvctl next to this program)", EnvVars: []string{"ZKV_KVCTL"}},
		&cli.BoolFlag{Name: "insecure-http", Usage: "serve the HTTP API as plain HTTP without users (default: TLS with a CA made at start, and two users)", EnvVars: []string{"ZKV_INSECURE_HTTP"}},
		&cli.StringFlag{Name: "data-dir", Usage: "give each server a data directory `DIR`/<id> (kvserver --data-dir), so stopping and starting a server, or the whole cluster with the same DIR and --zookeeper, keeps the data", EnvVars: []string{"ZKV_DATA_DIR"}},
	}
}

// localOptions reads the cluster flags.
func localOptions(c *cli.Context) (cluster.LocalOptions, error) {
	if c.NArg() > 0 {
		return cluster.LocalOptions{}, usage("unexpected argument %q", c.Args().First())
	}
	servers := c.Int("servers")
	if servers < 1 {
		return cluster.LocalOptions{}, usage("--servers %d: need at least one", servers)
	}
	if d := c.Duration("session-timeout"); d <= 0 {
		return cluster.LocalOptions{}, usage("--session-timeout %v is not positive", d)
	}
	switch l := c.String("server-log-level"); l {
	case "debug", "info", "warn", "error":
	default:
		return cluster.LocalOptions{}, usage("--server-log-level %q: want debug, info, warn or error", l)
	}
	if c.Bool("embedded-nats") && c.String("nats") != "" {
		return cluster.LocalOptions{}, usage("--embedded-nats and --nats exclude each other")
	}
	bin, _, err := cluster.Binary(c.Context, "kvserver", c.String("kvserver"), false)
	if err != nil {
		return cluster.LocalOptions{}, cli.Exit(err.Error(), ExitSetup)
	}
	return cluster.LocalOptions{
		KVServer:       bin,
		Servers:        servers,
		SessionTimeout: c.Duration("session-timeout"),
		ZooKeeper:      c.String("zookeeper"),
		NATSURL:        c.String("nats"),
		EmbeddedNATS:   c.Bool("embedded-nats"),
		ServerLogLevel: c.String("server-log-level"),
	}, nil
}

func runAction(c *cli.Context) error {
	if c.NArg() > 0 {
		return usage("unexpected argument %q", c.Args().First())
	}
	scenarios, err := testdriver.ParseScenarios(c.String("scenario"))
	if err != nil {
		return usage("--scenario: %v", err)
	}
	if c.String("scenario") == "" {
		scenarios = testdriver.DefaultScenarios(c.String("cluster") == clusterCompose || c.Bool("zookeeper-ensemble"))
	}
	kill, err := cluster.ParseStop(c.String("kill"))
	if err != nil {
		return usage("--kill: %v", err)
	}
	for _, name := range []string{"step-timeout", "read-timeout"} {
		if d := c.Duration(name); d <= 0 {
			return usage("--%s %v is not positive", name, d)
		}
	}
	cfg := testdriver.Config{
		Scenarios:   scenarios,
		Kill:        kill,
		Timeout:     c.Duration("step-timeout"),
		ReadTimeout: c.Duration("read-timeout"),
	}
	var sum testdriver.Summary
	switch cluster := c.String("cluster"); cluster {
	case clusterLocal:
		if err := notFor(c, cluster, composeOnly); err != nil {
			return err
		}
		if c.Bool("zookeeper-ensemble") && c.String("zookeeper") != "" {
			return usage("--zookeeper-ensemble starts an ensemble: it cannot be used with --zookeeper")
		}
		local, err := localOptions(c)
		if err != nil {
			return err
		}
		local.ZooKeeperEnsemble = c.Bool("zookeeper-ensemble")
		sum, err = testdriver.RunLocal(c.Context, testdriver.LocalRun{
			Config:  cfg,
			Local:   local,
			LogRoot: c.String("log-dir"),
			LogDir:  c.String("run-log-dir"),
		}, c.App.Writer)
		if err := runError(err); err != nil {
			return err
		}
	case clusterCompose:
		if err := notFor(c, cluster, localOnly); err != nil {
			return err
		}
		docker, err := dockerConfig(c)
		if err != nil {
			return err
		}
		// Unless given, the session timeout is the kvserver containers'.
		if c.IsSet("session-timeout") {
			if d := c.Duration("session-timeout"); d <= 0 {
				return usage("--session-timeout %v is not positive", d)
			}
			cfg.SessionTimeout = c.Duration("session-timeout")
		}
		sum, err = testdriver.RunCompose(c.Context, testdriver.ComposeRun{
			Config:   cfg,
			Docker:   docker,
			LogRoot:  c.String("log-dir"),
			LogDir:   c.String("run-log-dir"),
			SaveLogs: c.Bool("container-logs"),
		}, c.App.Writer)
		if err := runError(err); err != nil {
			return err
		}
	default:
		return usage("--cluster %q: want %s or %s", cluster, clusterLocal, clusterCompose)
	}
	if !sum.Passed() {
		return cli.Exit("", ExitFailed)
	}
	return nil
}

// runError maps the error of RunLocal or RunCompose to an exit.
func runError(err error) error {
	switch {
	case errors.Is(err, testdriver.ErrInterrupted):
		return cli.Exit("interrupted", ExitInterrupted)
	case err != nil:
		return cli.Exit(err.Error(), ExitSetup)
	}
	return nil
}

// notFor fails when one of flags, which --cluster cluster does not take,
// is set (on the command line or through its environment variable).
func notFor(c *cli.Context, cluster string, flags []string) error {
	for _, name := range flags {
		if c.IsSet(name) {
			return usage("--%s does not apply to --cluster %s", name, cluster)
		}
	}
	return nil
}

// dockerConfig reads the compose flags.
func dockerConfig(c *cli.Context) (cluster.ComposeConfig, error) {
	cfg := cluster.ComposeConfig{
		Project:   c.String("compose-project"),
		Socket:    c.String("docker-socket"),
		Nodes:     splitList(c.String("compose-nodes")),
		ZooKeeper: splitList(c.String("compose-zookeeper")),
		NATSURL:   c.String("nats"),
	}
	switch h := c.String("compose-http"); h {
	case httpPublished:
	case httpNetwork:
		cfg.InNetwork = true
	default:
		return cfg, usage("--compose-http %q: want %s or %s", h, httpPublished, httpNetwork)
	}
	if len(cfg.Nodes) == 0 {
		return cfg, usage("--compose-nodes: no kvserver service given")
	}
	return cfg, nil
}

// splitList splits a comma-separated list, dropping empty entries; nil
// for none.
func splitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func upAction(c *cli.Context) error {
	local, err := localOptions(c)
	if err != nil {
		return err
	}
	port := c.Int("nats-port")
	if port < 0 || port > 65535 {
		return usage("--nats-port %d: want 0 to 65535", port)
	}
	base := c.Int("http-base-port")
	if base < 0 || base+local.Servers-1 > 65535 {
		return usage("--http-base-port %d: want 1 to %d for %d servers", base, 65536-local.Servers, local.Servers)
	}
	local.NATSPort = port
	local.NATSPortFallback = !c.IsSet("nats-port")
	local.HTTPBasePort = base
	local.DataDir = c.String("data-dir")
	kvctl, _, err := cluster.Binary(c.Context, "kvctl", c.String("kvctl"), false)
	if err != nil {
		if c.IsSet("kvctl") {
			return cli.Exit(err.Error(), ExitSetup)
		}
		kvctl = "" // the commands then say plain "kvctl"
	}
	err = testdriver.Up(c.Context, testdriver.UpConfig{
		Local:   local,
		KVCtl:   kvctl,
		LogRoot: c.String("log-dir"),

		InsecureHTTP: c.Bool("insecure-http"),
	}, c.App.Writer)
	switch {
	case err != nil && c.Context.Err() != nil:
		return cli.Exit("interrupted", ExitInterrupted)
	case err != nil:
		return cli.Exit(err.Error(), ExitSetup)
	}
	return nil
}

// usage is a usage error.
func usage(format string, args ...any) error {
	return cli.Exit(fmt.Sprintf(format, args...)+"\nRun 'testdriver --help' for usage.", ExitUsage)
}
