// Command testdriver runs zkv's end-to-end scenarios on a local cluster of
// real processes (run), or starts such a cluster and keeps it up for
// trying things by hand (up).
//
//	testdriver run                          # add-read, leader-election, stale-read
//	testdriver run --scenario stale-read --kill sigterm
//	testdriver up                           # until Ctrl-C
//
// It finds kvserver (and kvctl, for the commands up prints) next to its
// own executable, where `make build` puts them.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"zkv/testdriver"
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

Exit codes:
   0  every scenario passed (up: stopped by Ctrl-C)
   1  a scenario failed
   2  usage error
   3  the cluster could not be started or reached
 130  interrupted`

func newApp(stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Name:        "testdriver",
		Usage:       "run zkv's end-to-end scenarios on a local cluster, or keep one up",
		Description: description,
		Writer:      stdout,
		ErrWriter:   stderr,
		HideVersion: true,
		Commands: []*cli.Command{
			{
				Name:   "run",
				Usage:  "start a cluster, run the scenarios step by step, print a summary",
				Flags:  append(clusterFlags(), runFlags()...),
				Action: runAction,
			},
			{
				Name:   "up",
				Usage:  "start a cluster, print how to reach it, and keep it up until Ctrl-C",
				Flags:  append(clusterFlags(), upFlags()...),
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

// clusterFlags are the flags of both commands.
func clusterFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "servers", Value: testdriver.DefaultServers, Usage: "number of kvserver processes (IDs n1..nN)", EnvVars: []string{"ZKV_SERVERS"}},
		&cli.DurationFlag{Name: "session-timeout", Value: testdriver.DefaultSessionTimeout, Usage: "the servers' ZooKeeper session timeout: a crashed leader is replaced after about this long", EnvVars: []string{"ZKV_SESSION_TIMEOUT"}},
		&cli.StringFlag{Name: "zookeeper", Usage: "use the running ZooKeeper at `HOST:PORT[,HOST:PORT...]` instead of starting one", EnvVars: []string{"ZKV_ZOOKEEPER"}},
		&cli.StringFlag{Name: "nats", Usage: "use the running NATS server at `URL` instead of an embedded one", EnvVars: []string{"ZKV_NATS"}},
		&cli.StringFlag{Name: "kvserver", Usage: "kvserver binary `PATH` (default: kvserver next to this program)", EnvVars: []string{"ZKV_KVSERVER"}},
		&cli.StringFlag{Name: "server-log-level", Value: "debug", Usage: "the servers' --log-level (debug, info, warn, error)", EnvVars: []string{"ZKV_SERVER_LOG_LEVEL"}},
		&cli.StringFlag{Name: "log-dir", Value: testdriver.DefaultLogRoot, Usage: "each invocation logs to a new `DIR`/<timestamp>", EnvVars: []string{"ZKV_LOG_DIR"}},
	}
}

func runFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "scenario", Value: "all", Usage: "comma-separated scenarios to run: add-read, leader-election, stale-read, or all", EnvVars: []string{"ZKV_SCENARIO"}},
		&cli.StringFlag{Name: "kill", Value: string(testdriver.StopKill), Usage: "how leader-election stops the leader: sigkill (crash) or sigterm (clean resign)", EnvVars: []string{"ZKV_KILL"}},
		&cli.DurationFlag{Name: "step-timeout", Value: testdriver.DefaultTimeout, Usage: "deadline of each step (the election after a stop gets the session timeout on top)", EnvVars: []string{"ZKV_STEP_TIMEOUT"}},
		&cli.DurationFlag{Name: "read-timeout", Value: testdriver.DefaultReadTimeout, Usage: "how long a server is polled for the value it should return", EnvVars: []string{"ZKV_READ_TIMEOUT"}},
	}
}

func upFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "nats-port", Value: testdriver.DefaultNATSPort, Usage: "port of the embedded NATS server (the default falls back to a free port when busy; 0: a free port)", EnvVars: []string{"ZKV_NATS_PORT"}},
		&cli.IntFlag{Name: "http-base-port", Usage: "give nI the HTTP port BASE+I-1 (default: free ports)", EnvVars: []string{"ZKV_HTTP_BASE_PORT"}},
		&cli.StringFlag{Name: "kvctl", Usage: "kvctl binary `PATH` for the printed commands (default: kvctl next to this program)", EnvVars: []string{"ZKV_KVCTL"}},
	}
}

// localOptions reads the cluster flags.
func localOptions(c *cli.Context) (testdriver.LocalOptions, error) {
	if c.NArg() > 0 {
		return testdriver.LocalOptions{}, usage("unexpected argument %q", c.Args().First())
	}
	servers := c.Int("servers")
	if servers < 1 {
		return testdriver.LocalOptions{}, usage("--servers %d: need at least one", servers)
	}
	if d := c.Duration("session-timeout"); d <= 0 {
		return testdriver.LocalOptions{}, usage("--session-timeout %v is not positive", d)
	}
	switch l := c.String("server-log-level"); l {
	case "debug", "info", "warn", "error":
	default:
		return testdriver.LocalOptions{}, usage("--server-log-level %q: want debug, info, warn or error", l)
	}
	bin, err := testdriver.LocateBinary("kvserver", c.String("kvserver"))
	if err != nil {
		return testdriver.LocalOptions{}, cli.Exit(err.Error(), ExitSetup)
	}
	return testdriver.LocalOptions{
		KVServer:       bin,
		Servers:        servers,
		SessionTimeout: c.Duration("session-timeout"),
		ZooKeeper:      c.String("zookeeper"),
		NATSURL:        c.String("nats"),
		ServerLogLevel: c.String("server-log-level"),
	}, nil
}

func runAction(c *cli.Context) error {
	scenarios, err := testdriver.ParseScenarios(c.String("scenario"))
	if err != nil {
		return usage("--scenario: %v", err)
	}
	kill, err := testdriver.ParseStop(c.String("kill"))
	if err != nil {
		return usage("--kill: %v", err)
	}
	for _, name := range []string{"step-timeout", "read-timeout"} {
		if d := c.Duration(name); d <= 0 {
			return usage("--%s %v is not positive", name, d)
		}
	}
	local, err := localOptions(c)
	if err != nil {
		return err
	}
	sum, err := testdriver.RunLocal(c.Context, testdriver.LocalRun{
		Config: testdriver.Config{
			Scenarios:   scenarios,
			Kill:        kill,
			Timeout:     c.Duration("step-timeout"),
			ReadTimeout: c.Duration("read-timeout"),
		},
		Local:   local,
		LogRoot: c.String("log-dir"),
	}, c.App.Writer)
	switch {
	case errors.Is(err, testdriver.ErrInterrupted):
		return cli.Exit("interrupted", ExitInterrupted)
	case err != nil:
		return cli.Exit(err.Error(), ExitSetup)
	case !sum.Passed():
		return cli.Exit("", ExitFailed)
	}
	return nil
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
	kvctl, err := testdriver.LocateBinary("kvctl", c.String("kvctl"))
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
