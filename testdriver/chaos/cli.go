package chaos

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/testdriver/cluster"
)

// Exit codes of the chaos command.
const (
	ExitViolations = 1 // some run found a violation, or a fuzz target failed
	ExitSetup      = 3 // the suite could not run
)

// DefaultReport is where the full suite writes its report, relative to the
// module root.
const DefaultReport = "docs/reliability.md"

// Command returns the `chaos` command, for mounting in a urfave/cli
// application:
//
//	app.Commands = append(app.Commands, chaos.Command())
func Command() *cli.Command {
	d := DefaultConfig()
	return &cli.Command{
		Name:  "chaos",
		Usage: "the fault suite: kill, pause and partition servers under load, check the histories, write docs/reliability.md",
		Description: "Starts its own ZooKeeper, NATS and kvserver processes on loopback for every run (a free port each),\n" +
			"records every client operation, injects one fault per case and checks the history. Exits 1 on any\n" +
			"violation, 3 if the suite cannot run. Cases: " + strings.Join(CaseNames(), ", ") + ".",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "runs", Value: d.Runs, EnvVars: []string{"ZKV_CHAOS_RUNS"}, Usage: "runs of every case and variant (--quick: 1 unless given)"},
			&cli.BoolFlag{Name: "quick", EnvVars: []string{"ZKV_CHAOS_QUICK"}, Usage: "CI mode: one run each, shorter phases, no fuzzing, the report goes to the log directory unless --out is given"},
			&cli.StringSliceFlag{Name: "case", EnvVars: []string{"ZKV_CHAOS_CASES"}, Usage: "run only these cases (repeat or comma-separate; default all)"},
			&cli.IntFlag{Name: "clients", Value: d.Clients, EnvVars: []string{"ZKV_CHAOS_CLIENTS"}, Usage: "concurrent clients per run"},
			&cli.IntFlag{Name: "keys", Value: d.Keys, EnvVars: []string{"ZKV_CHAOS_KEYS"}, Usage: "keys the clients share"},
			&cli.DurationFlag{Name: "op-interval", Value: d.OpInterval, EnvVars: []string{"ZKV_CHAOS_OP_INTERVAL"}, Usage: "mean pause between two operations of a client"},
			&cli.DurationFlag{Name: "session-timeout", Value: d.SessionTimeout, EnvVars: []string{"ZKV_CHAOS_SESSION_TIMEOUT"}, Usage: "the servers' ZooKeeper session timeout (some cases use twice it, at least 4s)"},
			&cli.DurationFlag{Name: "write-timeout", Value: d.WriteTimeout, EnvVars: []string{"ZKV_CHAOS_WRITE_TIMEOUT"}, Usage: "the servers' --write-timeout"},
			&cli.DurationFlag{Name: "margin", Value: d.Margin, EnvVars: []string{"ZKV_CHAOS_MARGIN"}, Usage: "added to the session timeout in the bounds of stopping acknowledgements"},
			&cli.DurationFlag{Name: "fuzz-time", Value: time.Minute, EnvVars: []string{"ZKV_CHAOS_FUZZ_TIME"}, Usage: "after the cases, run every fuzz target of ./bus this long (0: none; --quick: 0 unless given)"},
			&cli.StringFlag{Name: "kvserver", EnvVars: []string{"ZKV_CHAOS_KVSERVER"}, Usage: "kvserver binary `PATH` (default: kvserver next to this program, else the module's commands built into a temporary directory)"},
			&cli.StringFlag{Name: "log-dir", EnvVars: []string{"ZKV_CHAOS_LOG_DIR"}, Usage: "`DIR` for server logs, histories and results (default logs/chaos/<timestamp>)"},
			&cli.StringFlag{Name: "out", Value: DefaultReport, EnvVars: []string{"ZKV_CHAOS_OUT"}, Usage: "the Markdown report `FILE`"},
			&cli.BoolFlag{Name: "quiet", EnvVars: []string{"ZKV_CHAOS_QUIET"}, Usage: "no progress output"},
		},
		Action: action,
	}
}

func action(c *cli.Context) error {
	ctx := c.Context
	if c.NArg() > 0 {
		return cli.Exit(fmt.Sprintf("chaos: unexpected argument %q", c.Args().First()), 2)
	}
	cfg := DefaultConfig()
	cfg.Quick = c.Bool("quick")
	cfg.Runs = c.Int("runs")
	if cfg.Quick && !c.IsSet("runs") {
		cfg.Runs = 1
	}
	for _, v := range c.StringSlice("case") {
		for _, n := range strings.Split(v, ",") {
			if n = strings.TrimSpace(n); n != "" {
				cfg.Cases = append(cfg.Cases, n)
			}
		}
	}
	cfg.Clients, cfg.Keys, cfg.OpInterval = c.Int("clients"), c.Int("keys"), c.Duration("op-interval")
	cfg.SessionTimeout, cfg.WriteTimeout, cfg.Margin = c.Duration("session-timeout"), c.Duration("write-timeout"), c.Duration("margin")
	if cfg.Runs < 1 || cfg.Clients < 1 || cfg.Keys < 1 || cfg.SessionTimeout <= 0 || cfg.WriteTimeout <= 0 {
		return cli.Exit("chaos: --runs, --clients, --keys, --session-timeout and --write-timeout must be positive", 2)
	}
	if _, err := selectCases(cfg.Cases); err != nil {
		return cli.Exit(err.Error(), 2)
	}
	fuzzTime := c.Duration("fuzz-time")
	if cfg.Quick && !c.IsSet("fuzz-time") {
		fuzzTime = 0
	}
	var log io.Writer = c.App.Writer
	if c.Bool("quiet") {
		log = nil
	}
	cfg.Log = log
	cfg.LogDir = c.String("log-dir")
	if cfg.LogDir == "" {
		cfg.LogDir = filepath.Join("logs", "chaos", time.Now().Format("20060102-150405"))
	}

	root, err := harness.ModuleRoot(ctx)
	if err != nil {
		return cli.Exit(fmt.Sprintf("chaos: %v", err), ExitSetup)
	}
	bin, cleanup, err := cluster.Binary(ctx, "kvserver", c.String("kvserver"), true)
	if err != nil {
		return cli.Exit(fmt.Sprintf("chaos: %v", err), ExitSetup)
	}
	defer cleanup()
	cfg.KVServer = bin

	res, err := Suite(ctx, cfg)
	if res == nil {
		return cli.Exit(fmt.Sprintf("chaos: %v", err), ExitSetup)
	}
	if err == nil && fuzzTime > 0 {
		res.FuzzTime = fuzzTime
		res.Fuzz, err = RunFuzz(ctx, root, fuzzTime, log)
	}
	res.Elapsed = time.Since(res.Started)
	res.Command = renderCommand(c, cfg, fuzzTime)

	out := c.String("out")
	if (cfg.Quick && !c.IsSet("out")) || err != nil {
		// A quick run, or one cut short, does not replace the report.
		out = filepath.Join(cfg.LogDir, "reliability.md")
	}
	if werr := writeFileAtomic(out, Report(res)); werr != nil {
		return cli.Exit(fmt.Sprintf("chaos: write report: %v", werr), ExitSetup)
	}
	if b, jerr := json.MarshalIndent(res, "", "  "); jerr == nil {
		_ = os.WriteFile(filepath.Join(cfg.LogDir, "results.json"), b, 0o644)
	}
	summarize(c.App.Writer, res, out, cfg.LogDir)
	switch {
	case err != nil:
		return cli.Exit(fmt.Sprintf("chaos: %v", err), ExitSetup)
	case res.Failed():
		return cli.Exit("chaos: FAILED: see the violations above and in "+out, ExitViolations)
	}
	return nil
}

// summarize prints one line per run group and where the report went.
func summarize(w io.Writer, res *Results, out, logDir string) {
	fmt.Fprintf(w, "\n%-36s %5s %8s %6s %5s %5s %s\n", "case", "runs", "ops", "acked", "lost", "viol", "linearizable")
	for _, g := range groupRuns(res.Runs) {
		t := totalsOf(g.runs)
		linearizable := strings.ReplaceAll(verdictSummary(t.verdicts), "illegal (expected)", "illegal(expected)")
		fmt.Fprintf(w, "%-36s %5d %8d %6d %5d %5d %s\n", g.label, len(g.runs), t.ops, t.acked, t.lost, t.viol, linearizable)
	}
	for _, f := range res.Fuzz {
		fmt.Fprintf(w, "fuzz %-31s %s execs%s\n", f.Target, thousands(f.Execs), map[bool]string{true: " FAILED", false: ""}[f.Err != ""])
	}
	fmt.Fprintf(w, "took %s; report %s; logs %s\n", res.Elapsed.Round(time.Second), out, logDir)
}

// renderCommand is the command line of the report: the program and the
// settings that shape the figures.
func renderCommand(c *cli.Context, cfg Config, fuzzTime time.Duration) string {
	prog := c.App.Name
	if prog == EntryPointName {
		prog = "bin/" + EntryPointName
	}
	parts := []string{prog, "chaos", "--runs", fmt.Sprint(cfg.Runs)}
	if cfg.Quick {
		parts = append(parts, "--quick")
	}
	if len(cfg.Cases) > 0 {
		parts = append(parts, "--case", strings.Join(cfg.Cases, ","))
	}
	d := DefaultConfig()
	if cfg.Clients != d.Clients {
		parts = append(parts, "--clients", fmt.Sprint(cfg.Clients))
	}
	if cfg.Keys != d.Keys {
		parts = append(parts, "--keys", fmt.Sprint(cfg.Keys))
	}
	if cfg.OpInterval != d.OpInterval {
		parts = append(parts, "--op-interval", cfg.OpInterval.String())
	}
	if cfg.SessionTimeout != d.SessionTimeout {
		parts = append(parts, "--session-timeout", cfg.SessionTimeout.String())
	}
	if cfg.WriteTimeout != d.WriteTimeout {
		parts = append(parts, "--write-timeout", cfg.WriteTimeout.String())
	}
	if cfg.Margin != d.Margin {
		parts = append(parts, "--margin", cfg.Margin.String())
	}
	parts = append(parts, "--fuzz-time", fuzzTime.String())
	if out := c.String("out"); c.IsSet("out") || !cfg.Quick {
		parts = append(parts, "--out", out)
	}
	return strings.Join(parts, " ")
}

// EntryPointName is the program the suite runs under (cmd/testdriver), as
// the reports print it.
const EntryPointName = "testdriver"
