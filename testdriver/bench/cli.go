package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/testdriver/cluster"
)

// DefaultOut is where the reports go, relative to the module root.
const DefaultOut = "docs/benchmarks"

// Command returns the `bench` command with its subcommands `election`
// and `kv`, for mounting in the testdriver app:
//
//	app.Commands = append(app.Commands, bench.Command())
func Command() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "benchmarks: leader election latency and key-value performance",
		Description: "Both subcommands start their own ZooKeeper, NATS and kvserver processes on loopback and\n" +
			"write a Markdown report, PNG charts and the raw CSV under --out (docs/benchmarks by default).",
		Subcommands: []*cli.Command{electionCommand(), kvCommand(), catchUpCommand(), durableCommand(), echoCommand()},
	}
}

func commonFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "quick", EnvVars: []string{"ZKV_BENCH_QUICK"}, Usage: "a smoke run of under a minute (few runs, short durations); writes to a temporary directory unless --out is given"},
		&cli.StringFlag{Name: "out", EnvVars: []string{"ZKV_BENCH_OUT"}, Value: DefaultOut, Usage: "directory of the report; CSV goes to <out>/data"},
		&cli.StringFlag{Name: "kvserver", EnvVars: []string{"ZKV_BENCH_KVSERVER"}, Usage: "kvserver binary (default: the one beside this program, else ./cmd/kvserver built into a temporary directory)"},
		&cli.BoolFlag{Name: "quiet", EnvVars: []string{"ZKV_BENCH_QUIET"}, Usage: "no progress output"},
	}
}

func electionCommand() *cli.Command {
	return &cli.Command{
		Name:  "election",
		Usage: "leader failover latency: local, ensemble and remote ZooKeeper; SIGKILL, SIGTERM and pause",
		Flags: append(commonFlags(),
			&cli.IntFlag{Name: "runs", EnvVars: []string{"ZKV_BENCH_RUNS"}, Value: 30, Usage: "runs per setting"},
			&cli.StringSliceFlag{Name: "zk", EnvVars: []string{"ZKV_BENCH_ZK"}, Value: cli.NewStringSlice(ZKStandalone), Usage: "ZooKeeper deployments: standalone, ensemble, remote (a list sweeps)"},
			&cli.StringSliceFlag{Name: "stop", EnvVars: []string{"ZKV_BENCH_STOP"}, Value: cli.NewStringSlice(StopKill, StopTerm, StopPause), Usage: "how the leader is stopped: sigkill, sigterm, pause (a list sweeps)"},
			&cli.StringSliceFlag{Name: "session-timeout", EnvVars: []string{"ZKV_BENCH_SESSION_TIMEOUT"}, Value: cli.NewStringSlice("2s"), Usage: "kvserver session timeouts (a list sweeps)"},
			&cli.StringSliceFlag{Name: "fast-failover", EnvVars: []string{"ZKV_BENCH_FAST_FAILOVER"}, Value: cli.NewStringSlice("on"), Usage: "kvserver --fast-failover: on, off (a list compares both, each on a cluster of its own)"},
			&cli.DurationFlag{Name: "tick-time", EnvVars: []string{"ZKV_BENCH_TICK_TIME"}, Value: harness.DefaultTickTime, Usage: "tickTime of the local ZooKeeper servers"},
			&cli.DurationFlag{Name: "latency", EnvVars: []string{"ZKV_BENCH_LATENCY"}, Value: 25 * time.Millisecond, Usage: "remote: one-way delay the proxy adds in each direction"},
			&cli.DurationFlag{Name: "jitter", EnvVars: []string{"ZKV_BENCH_JITTER"}, Value: 2 * time.Millisecond, Usage: "remote: ± jitter of that delay"},
			&cli.StringFlag{Name: "zookeeper", EnvVars: []string{"ZKV_BENCH_ZOOKEEPER"}, Usage: "host:port of a real (remote) ZooKeeper to use instead of a local one; --zk is then only a label"},
			&cli.BoolFlag{Name: "append", EnvVars: []string{"ZKV_BENCH_APPEND"}, Usage: "add the runs to the existing CSV instead of replacing it; the report covers all of them"},
			&cli.BoolFlag{Name: "report-only", Usage: "only render the report and charts from the existing CSV"},
		),
		Action: studyAction(RenderElection, func(ctx context.Context, c *cli.Context, out string) error {
			cfg, err := electionConfig(c)
			if err != nil {
				return err
			}
			return withKVServer(ctx, c, func(bin string) error {
				cfg.KVServer = bin
				return ElectionStudy(ctx, cfg, out, c.Bool("append"), c.Bool("quiet"), commandLine())
			})
		}),
	}
}

func electionConfig(c *cli.Context) (ElectionConfig, error) {
	cfg := ElectionConfig{
		Runs:       c.Int("runs"),
		TickTime:   c.Duration("tick-time"),
		Latency:    c.Duration("latency"),
		Jitter:     c.Duration("jitter"),
		ExternalZK: c.String("zookeeper"),
	}
	zks, stops, sts := c.StringSlice("zk"), c.StringSlice("stop"), c.StringSlice("session-timeout")
	if c.Bool("quick") {
		if !c.IsSet("runs") {
			cfg.Runs = 2
		}
		if !c.IsSet("stop") {
			stops = []string{StopTerm, StopKill}
		}
		if !c.IsSet("session-timeout") {
			sts = []string{"1s"}
		}
	}
	for _, s := range splitList(zks) {
		m, err := ParseZKMode(s)
		if err != nil {
			return cfg, err
		}
		cfg.ZK = append(cfg.ZK, m)
	}
	for _, s := range splitList(stops) {
		m, err := ParseStop(s)
		if err != nil {
			return cfg, err
		}
		cfg.Stops = append(cfg.Stops, m)
	}
	for _, s := range splitList(sts) {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return cfg, fmt.Errorf("session timeout %q: want a positive duration such as 2s", s)
		}
		cfg.SessionTimeouts = append(cfg.SessionTimeouts, d)
	}
	for _, s := range splitList(c.StringSlice("fast-failover")) {
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "on", "true":
			cfg.FastFailover = append(cfg.FastFailover, true)
		case "off", "false":
			cfg.FastFailover = append(cfg.FastFailover, false)
		default:
			return cfg, fmt.Errorf("fast failover %q: want on or off", s)
		}
	}
	if cfg.Runs < 1 || len(cfg.ZK) == 0 || len(cfg.Stops) == 0 || len(cfg.SessionTimeouts) == 0 {
		return cfg, errors.New("election: need --runs ≥ 1 and at least one --zk, --stop and --session-timeout")
	}
	return cfg, nil
}

// splitList splits every element at commas (an env var gives one string).
func splitList(in []string) []string {
	var out []string
	for _, s := range in {
		for p := range strings.SplitSeq(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				out = append(out, p)
			}
		}
	}
	return out
}

// studyAction is the Action of a study command: run gets a context that
// Ctrl-C ends and the report directory; with --report-only, render
// (when the study has one) renders the existing CSV instead.
func studyAction(render func(out string) error, run func(ctx context.Context, c *cli.Context, out string) error) cli.ActionFunc {
	return func(c *cli.Context) error {
		ctx, stop := signalContext(c.Context)
		defer stop()
		out, err := outDir(c)
		if err != nil {
			return err
		}
		if render != nil && c.Bool("report-only") {
			return render(out)
		}
		return run(ctx, c, out)
	}
}

// withKVServer runs f with the kvserver binary of --kvserver, the one
// beside this program, or one built for the run and removed after it.
func withKVServer(ctx context.Context, c *cli.Context, f func(bin string) error) error {
	bin, cleanup, err := cluster.Binary(ctx, "kvserver", c.String("kvserver"), true)
	if err != nil {
		return err
	}
	defer cleanup()
	return f(bin)
}

func outDir(c *cli.Context) (string, error) {
	if c.Bool("quick") && !c.IsSet("out") {
		d := filepath.Join(os.TempDir(), "zkv-bench-quick")
		return d, os.MkdirAll(filepath.Join(d, "data"), 0o755)
	}
	d := c.String("out")
	return d, os.MkdirAll(filepath.Join(d, "data"), 0o755)
}

func signalContext(parent context.Context) (context.Context, context.CancelFunc) {
	if parent == nil {
		parent = context.Background()
	}
	return signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
}

// commandLine is the command as typed, for the report, without the
// arguments that name local files (--kvserver: the binary, which is
// always ./cmd/kvserver of the same tree).
func commandLine() string {
	return sanitizeArgs(append([]string{filepath.Base(os.Args[0])}, os.Args[1:]...))
}

func sanitizeArgs(in []string) string {
	var args []string
	for i := 0; i < len(in); i++ {
		a := in[i]
		if a == "--kvserver" || a == "-kvserver" {
			i++
			continue
		}
		if strings.HasPrefix(a, "--kvserver=") || strings.HasPrefix(a, "-kvserver=") {
			continue
		}
		if strings.ContainsAny(a, " \t'\"") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		args = append(args, a)
	}
	return strings.Join(args, " ")
}

// echoCommand is the hidden responder process of the kv benchmark.
func echoCommand() *cli.Command {
	return &cli.Command{
		Name:   "echo-responder",
		Hidden: true,
		Usage:  "answer NATS requests with their body (used by bench kv)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "nats", Required: true},
			&cli.StringFlag{Name: "subject", Required: true},
		},
		Action: func(c *cli.Context) error { return EchoResponder(c.String("nats"), c.String("subject")) },
	}
}
