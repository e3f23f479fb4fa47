package bench

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/zkvstore/zkv/testdriver/cluster"
)

// Files of the catch-up study, relative to the output directory.
const (
	catchUpMD   = "catchup.md"
	catchUpCSV  = "data/catchup.csv"
	catchUpMeta = "data/catchup-meta.json"
	// notesMarker starts the hand-written part of catchup.md, which a new
	// run keeps.
	notesMarker = "<!-- notes: kept by reruns -->"
)

// Targets of the catch-up study.
const (
	catchUpTarget = 10 * time.Second
	ratioTarget   = 0.5
)

func catchUpCommand() *cli.Command {
	return &cli.Command{
		Name:  "catchup",
		Usage: "time for an empty follower to catch up on 1M keys, and the leader's write throughput meanwhile",
		Flags: append(commonFlags(),
			&cli.IntFlag{Name: "keys", EnvVars: []string{"ZKV_BENCH_KEYS"}, Value: 1_000_000, Usage: "keys loaded before the catch-up"},
			&cli.IntFlag{Name: "value-size", EnvVars: []string{"ZKV_BENCH_VALUE_SIZE"}, Value: 100, Usage: "bytes per value"},
			&cli.IntFlag{Name: "in-flight", EnvVars: []string{"ZKV_BENCH_IN_FLIGHT"}, Value: 1024, Usage: "loader writes outstanding at once"},
			&cli.IntFlag{Name: "writers", EnvVars: []string{"ZKV_BENCH_WRITERS"}, Value: 16, Usage: "clients of the measured writer"},
			&cli.DurationFlag{Name: "baseline", EnvVars: []string{"ZKV_BENCH_BASELINE"}, Value: 5 * time.Second, Usage: "how long the writer is measured before the catch-up"},
			&cli.IntFlag{Name: "pagers", EnvVars: []string{"ZKV_BENCH_PAGERS"}, Value: 4, Usage: "clients paging the leader's snapshot one entry at a time in a phase before the catch-up (0: skip it)"},
			&cli.DurationFlag{Name: "timeout", EnvVars: []string{"ZKV_BENCH_TIMEOUT"}, Value: 5 * time.Minute, Usage: "longest catch-up waited for"},
			&cli.StringFlag{Name: "label", EnvVars: []string{"ZKV_BENCH_LABEL"}, Value: "this tree", Usage: "name of this run in the report (e.g. the kvserver's commit)"},
			&cli.BoolFlag{Name: "append", EnvVars: []string{"ZKV_BENCH_APPEND"}, Usage: "add the run to the existing CSV instead of replacing it"},
		),
		Action: studyAction(nil, func(ctx context.Context, c *cli.Context, out string) error {
			cfg := CatchUpConfig{
				Keys: c.Int("keys"), ValueSize: c.Int("value-size"), InFlight: c.Int("in-flight"),
				Writers: c.Int("writers"), Baseline: c.Duration("baseline"), Timeout: c.Duration("timeout"), Pagers: c.Int("pagers"),
			}
			if c.Bool("quick") {
				if !c.IsSet("keys") {
					cfg.Keys = 50_000
				}
				if !c.IsSet("baseline") {
					cfg.Baseline = time.Second
				}
			}
			if cfg.Keys < 1 || cfg.ValueSize < 1 || cfg.InFlight < 1 || cfg.Writers < 1 || cfg.Baseline <= 0 {
				return errors.New("catchup: --keys, --value-size, --in-flight, --writers and --baseline must be positive")
			}
			return withKVServer(ctx, c, func(bin string) error {
				cfg.KVServer = bin
				return CatchUpStudy(ctx, cfg, out, c.String("label"), c.Bool("append"), c.Bool("quiet"), commandLine())
			})
		}),
	}
}

// CatchUpStudy runs cfg once and writes the CSV and catchup.md under out.
func CatchUpStudy(ctx context.Context, cfg CatchUpConfig, out, label string, appendRun, quiet bool, command string) error {
	meta := Meta{Started: time.Now().UTC().Format(time.RFC3339), Commit: gitCommit(ctx)}
	if appendRun {
		commit := meta.Commit
		meta = readMeta(filepath.Join(out, catchUpMeta))
		meta.Commit = commit // the newest run's tree
	}
	meta.Commands = append(meta.Commands, command)
	if !quiet {
		cfg.Log = os.Stderr
	}
	zkv := "unknown"
	cfg.OnCluster = func(c *cluster.Local) { zkv = zooKeeperVersion(ctx, c) }
	r, err := RunCatchUp(ctx, cfg)
	if err != nil {
		return err
	}
	meta.Finished = time.Now().UTC().Format(time.RFC3339)
	meta.Machine = thisMachine(ctx, zkv)
	rows := []catchUpRow{{Label: label, Command: command, Result: r}}
	if appendRun {
		old, err := readCatchUpCSV(filepath.Join(out, catchUpCSV))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		rows = append(old, rows...)
	}
	if err := writeFile(filepath.Join(out, catchUpCSV), func(w io.Writer) error { return writeCatchUpCSV(w, rows) }); err != nil {
		return err
	}
	if err := writeMeta(filepath.Join(out, catchUpMeta), meta); err != nil {
		return err
	}
	path := filepath.Join(out, catchUpMD)
	notes := ""
	if old, err := os.ReadFile(path); err == nil {
		if _, tail, ok := strings.Cut(string(old), notesMarker); ok {
			notes = tail
		}
	}
	if err := writeFile(path, func(w io.Writer) error { writeCatchUpReport(w, rows, meta, notes); return nil }); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", path)
	return nil
}

// catchUpRow is one run of the study.
type catchUpRow struct {
	Label, Command string
	Result         CatchUpResult
}

var catchUpHeader = []string{"label", "keys", "value_size", "writers", "load_s", "load_errors", "baseline_wps", "during_wps", "ratio", "catchup_s", "restart_s", "writer_errors", "command",
	"pagers", "pagers_wps", "pager_pages", "pager_refused"}

// catchUpFields is the number of fields of rows written before the pager
// phase existed; they read with no pager figures.
const catchUpFields = 13

func writeCatchUpCSV(w io.Writer, rows []catchUpRow) error {
	cw := csv.NewWriter(w)
	_ = cw.Write(catchUpHeader)
	for _, row := range rows {
		r := row.Result
		_ = cw.Write([]string{row.Label, strconv.Itoa(r.Keys), strconv.Itoa(r.ValueSize), strconv.Itoa(r.Writers),
			secs(r.Load), strconv.FormatInt(r.LoadErrors, 10), fmt.Sprintf("%.0f", r.Baseline), fmt.Sprintf("%.0f", r.During),
			fmt.Sprintf("%.3f", r.Ratio()), secs(r.CatchUp), secs(r.Restart), strconv.FormatInt(r.WriterErrors, 10), row.Command,
			strconv.Itoa(r.Pagers), fmt.Sprintf("%.0f", r.WithPagers), strconv.FormatInt(r.Pages, 10), strconv.FormatInt(r.Refused, 10)})
	}
	cw.Flush()
	return cw.Error()
}

func secs(d time.Duration) string { return fmt.Sprintf("%.3f", d.Seconds()) }

func readCatchUpCSV(path string) ([]catchUpRow, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	var rows []catchUpRow
	for _, rec := range recs[min(1, len(recs)):] {
		if len(rec) != len(catchUpHeader) && len(rec) != catchUpFields {
			return nil, fmt.Errorf("%s: a row of %d fields, want %d", path, len(rec), len(catchUpHeader))
		}
		num := func(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }
		dur := func(s string) time.Duration { return time.Duration(num(s) * float64(time.Second)) }
		r := CatchUpResult{
			Keys: int(num(rec[1])), ValueSize: int(num(rec[2])), Writers: int(num(rec[3])), Load: dur(rec[4]),
			LoadErrors: int64(num(rec[5])), Baseline: num(rec[6]), During: num(rec[7]), CatchUp: dur(rec[9]),
			Restart: dur(rec[10]), WriterErrors: int64(num(rec[11])),
		}
		if len(rec) > catchUpFields {
			r.Pagers, r.WithPagers, r.Pages, r.Refused = int(num(rec[13])), num(rec[14]), int64(num(rec[15])), int64(num(rec[16]))
		}
		rows = append(rows, catchUpRow{Label: rec[0], Command: rec[12], Result: r})
	}
	return rows, nil
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}

func writeCatchUpReport(w io.Writer, rows []catchUpRow, meta Meta, notes string) {
	fmt.Fprintf(w, "# Catch-up benchmark\n\n")
	fmt.Fprintf(w, "An empty follower (restarted with `--catch-up`) fetches the leader's store page by page while a writer\n")
	fmt.Fprintf(w, "keeps writing through the leader. Targets: the catch-up completes in under %s, and the writer keeps at\n", catchUpTarget)
	fmt.Fprintf(w, "least %.0f %% of the throughput it had just before (the baseline, measured in the same run).\n\n", ratioTarget*100)
	fmt.Fprintf(w, "Setup: ZooKeeper standalone, one NATS server, three kvservers with `--catch-up`, all on loopback. The keys are\n")
	fmt.Fprintf(w, "loaded through the leader by one client with many writes outstanding; every copy is waited for. The writer is\n")
	fmt.Fprintf(w, "that many clients, each putting its own key one write after another through `kv.write`. The catch-up time runs\n")
	fmt.Fprintf(w, "from the restarted follower answering `/healthz` until its status holds every loaded key and says neither\n")
	fmt.Fprintf(w, "stale nor catching up; the writer's throughput \"during\" is over that same interval.\n\n")
	fmt.Fprintf(w, "| run | keys × bytes | load | writer before | writer during | ratio | catch-up | verdict |\n|---|---|---|---|---|---|---|---|\n")
	for _, row := range rows {
		r := row.Result
		fmt.Fprintf(w, "| %s | %d × %d | %.1f s (%.0f/s) | %.0f/s | %.0f/s | %.2f× | %.2f s | catch-up %s, throughput %s |\n",
			row.Label, r.Keys, r.ValueSize, r.Load.Seconds(), float64(r.Keys)/max(r.Load.Seconds(), 1e-9), r.Baseline, r.During, r.Ratio(),
			r.CatchUp.Seconds(), verdict(r.CatchUp < catchUpTarget), verdict(r.Ratio() >= ratioTarget))
	}
	fmt.Fprintf(w, "\nAbuse phase: clients paging the leader's snapshot one entry at a time (`kv.leader.snapshot`, `limit` 1),\n")
	fmt.Fprintf(w, "measured for as long as the baseline, after it and before the catch-up; the writer's throughput meanwhile\n")
	fmt.Fprintf(w, "against its baseline.\n\n| run | pagers | writer with pagers | ratio | pages served | pages refused |\n|---|---|---|---|---|---|\n")
	for _, row := range rows {
		r := row.Result
		if r.Pagers == 0 {
			fmt.Fprintf(w, "| %s | — | | | | |\n", row.Label)
			continue
		}
		fmt.Fprintf(w, "| %s | %d | %.0f/s | %.2f× | %d | %d |\n", row.Label, r.Pagers, r.WithPagers, r.PagerRatio(), r.Pages, r.Refused)
	}
	fmt.Fprintf(w, "\nWriter errors: ")
	for i, row := range rows {
		if i > 0 {
			fmt.Fprint(w, ", ")
		}
		fmt.Fprintf(w, "%s %d (loader retries %d)", row.Label, row.Result.WriterErrors, row.Result.LoadErrors)
	}
	fmt.Fprintf(w, ". Raw figures: [`%s`](%s).\n\n", catchUpCSV, catchUpCSV)
	var commands []string
	for _, row := range rows {
		commands = append(commands, row.Command)
	}
	writeReportEnd(w, commands, meta, notes)
}

// writeReportEnd ends a report: the commands that made it, the machine and
// tree, then the notes kept by reruns below notesMarker.
func writeReportEnd(w io.Writer, commands []string, meta Meta, notes string) {
	fmt.Fprintf(w, "## Commands\n\n```sh\n")
	for _, c := range commands {
		fmt.Fprintf(w, "%s\n", c)
	}
	fmt.Fprintf(w, "```\n\n")
	m := meta.Machine
	fmt.Fprintf(w, "Machine: %d × %s, %s (kernel %s), %s, nats-server %s, ZooKeeper %s. Tree: %s. Run %s to %s.\n\n",
		m.Cores, m.CPU, m.OS, m.Kernel, m.Go, m.NATS, m.ZooKeeper, meta.Commit, meta.Started, meta.Finished)
	fmt.Fprintf(w, "%s", notesMarker)
	if notes == "" {
		notes = "\n"
	}
	fmt.Fprint(w, notes)
}
