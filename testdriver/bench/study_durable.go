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

// Files of the durability study, relative to the output directory.
const (
	durableMD        = "durable.md"
	durableCSV       = "data/durable.csv"
	durableRestartCS = "data/durable-restart.csv"
	durableMeta      = "data/durable-meta.json"
)

// Goals of the durability study (issue 14).
const (
	restartGoal = 3 * time.Second
	catchUpGoal = 2 * time.Second
)

func durableCommand() *cli.Command {
	return &cli.Command{
		Name:  "durable",
		Usage: "durability: write throughput with --fsync always/interval beside JetStream KV syncing every write, restart-to-ready on 1M keys, catch-up after an absence",
		Flags: append(commonFlags(),
			&cli.DurationFlag{Name: "duration", EnvVars: []string{"ZKV_BENCH_DURATION"}, Value: 2 * time.Second, Usage: "length of one write measurement (one operation, one concurrency, one round)"},
			&cli.IntFlag{Name: "rounds", EnvVars: []string{"ZKV_BENCH_ROUNDS"}, Value: 3, Usage: "rounds; each measures every operation once, interleaved"},
			&cli.IntSliceFlag{Name: "clients", EnvVars: []string{"ZKV_BENCH_CLIENTS"}, Value: cli.NewIntSlice(1, 16), Usage: "concurrency levels of the write measurements"},
			&cli.IntFlag{Name: "value-size", EnvVars: []string{"ZKV_BENCH_VALUE_SIZE"}, Value: 100, Usage: "bytes per value"},
			&cli.IntFlag{Name: "keys", EnvVars: []string{"ZKV_BENCH_KEYS"}, Value: 1_000_000, Usage: "keys loaded before the restart"},
			&cli.IntFlag{Name: "in-flight", EnvVars: []string{"ZKV_BENCH_IN_FLIGHT"}, Value: 1024, Usage: "loader writes outstanding at once"},
			&cli.IntFlag{Name: "writers", EnvVars: []string{"ZKV_BENCH_WRITERS"}, Value: 8, Usage: "clients writing while the follower is away and catching up"},
			&cli.DurationFlag{Name: "absence", EnvVars: []string{"ZKV_BENCH_ABSENCE"}, Value: 10 * time.Second, Usage: "how long the follower is away (killed) under write load"},
			&cli.DurationFlag{Name: "behind", EnvVars: []string{"ZKV_BENCH_BEHIND"}, Value: time.Second, Usage: "caught up means holding what the leader held this long before"},
			&cli.BoolFlag{Name: "report-only", Usage: "only render the report from the existing CSV"},
		),
		Action: studyAction(RenderDurable, func(ctx context.Context, c *cli.Context, out string) error {
			cfg := DurableConfig{
				Duration: c.Duration("duration"), Rounds: c.Int("rounds"), Clients: c.IntSlice("clients"), ValueSize: c.Int("value-size"),
				Keys: c.Int("keys"), InFlight: c.Int("in-flight"), Writers: c.Int("writers"), Absence: c.Duration("absence"), Behind: c.Duration("behind"),
			}
			if c.Bool("quick") {
				quick := []struct {
					flag string
					set  func()
				}{
					{"duration", func() { cfg.Duration = 200 * time.Millisecond }},
					{"rounds", func() { cfg.Rounds = 1 }},
					{"keys", func() { cfg.Keys = 20_000 }},
					{"absence", func() { cfg.Absence = 2 * time.Second }},
				}
				for _, q := range quick {
					if !c.IsSet(q.flag) {
						q.set()
					}
				}
			}
			if cfg.Keys < 1 || cfg.Writers < 1 || cfg.Absence <= 0 || cfg.Duration <= 0 {
				return errors.New("durable: --keys, --writers, --absence and --duration must be positive")
			}
			return withKVServer(ctx, c, func(bin string) error {
				cfg.KVServer = bin
				return DurableStudy(ctx, cfg, out, c.Bool("quiet"), commandLine())
			})
		}),
	}
}

// DurableStudy runs cfg once and writes the CSV and durable.md under out.
func DurableStudy(ctx context.Context, cfg DurableConfig, out string, quiet bool, command string) error {
	cfg = cfg.withDefaults()
	meta := Meta{Commands: []string{command}, Started: time.Now().UTC().Format(time.RFC3339), Commit: gitCommit(ctx)}
	pr := NewProgress("durable", cfg.DurableSteps(), quiet)
	cfg.Log = pr.Log()
	cfg.OnStep = pr.Step
	zkv := "unknown"
	cfg.OnCluster = func(c *cluster.Local) { zkv = zooKeeperVersion(ctx, c) }
	r, err := RunDurable(ctx, cfg)
	pr.Done()
	if err != nil {
		return err
	}
	meta.Finished = time.Now().UTC().Format(time.RFC3339)
	meta.Machine = thisMachine(ctx, zkv)
	meta.Notes = []string{fmt.Sprintf("Setup: %d round(s) of %v per operation and concurrency, clients %v, %d-byte values; restart on %d keys; %d writers during an absence of %v; caught up = within %v of the leader.",
		cfg.Rounds, cfg.Duration, cfg.Clients, cfg.ValueSize, cfg.Keys, cfg.Writers, cfg.Absence, cfg.Behind)}
	if err := writeFile(filepath.Join(out, durableCSV), func(w io.Writer) error { return WriteKVCSV(w, r.Writes) }); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(out, durableRestartCS), func(w io.Writer) error { return writeDurableFields(w, &r) }); err != nil {
		return err
	}
	if err := writeMeta(filepath.Join(out, durableMeta), meta); err != nil {
		return err
	}
	if err := RenderDurable(out); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "wrote %s\n", filepath.Join(out, durableMD))
	return nil
}

// RenderDurable renders durable.md from the CSV under out, keeping the
// notes below notesMarker of an earlier durable.md.
func RenderDurable(out string) error {
	var r DurableResult
	var err error
	if r.Writes, err = readKVFile(filepath.Join(out, durableCSV)); err != nil {
		return err
	}
	f, err := os.Open(filepath.Join(out, durableRestartCS))
	if err != nil {
		return err
	}
	defer f.Close()
	if err := readDurableFields(f, &r); err != nil {
		return err
	}
	meta := readMeta(filepath.Join(out, durableMeta))
	path := filepath.Join(out, durableMD)
	notes := ""
	if old, err := os.ReadFile(path); err == nil {
		if _, tail, ok := strings.Cut(string(old), notesMarker); ok {
			notes = tail
		}
	}
	return writeFile(path, func(w io.Writer) error { WriteDurableReport(w, r, meta, notes); return nil })
}

// durableField is one figure of the restart or the catch-up, as a CSV row
// "phase,name,value" (durations in seconds).
type durableField struct {
	phase, name string
	p           any // *int, *int64, *uint64, *float64, *time.Duration or *string
}

func durableFields(r *DurableResult) []durableField {
	s, c := &r.Restart, &r.CatchUp
	return []durableField{
		{"restart", "keys", &s.Keys}, {"restart", "value_size", &s.ValueSize}, {"restart", "load_s", &s.Load}, {"restart", "load_errors", &s.LoadErrors},
		{"restart", "snapshot_bytes", &s.SnapshotBytes}, {"restart", "log_bytes", &s.LogBytes},
		{"restart", "loaded_s", &s.Loaded}, {"restart", "load_took_s", &s.LoadTook}, {"restart", "snapshot_took_s", &s.SnapshotTook}, {"restart", "replay_took_s", &s.ReplayTook},
		{"restart", "snapshot_keys", &s.SnapshotKeys}, {"restart", "log_records", &s.LogRecords},
		{"restart", "healthy_s", &s.Healthy}, {"restart", "ready_s", &s.Ready}, {"restart", "held_keys", &s.HeldKeys},
		{"catchup", "writers", &c.Writers}, {"catchup", "absence_s", &c.Absence}, {"catchup", "behind_s", &c.Behind},
		{"catchup", "write_rate", &c.WriteRate}, {"catchup", "missed_revisions", &c.Missed},
		{"catchup", "healthy_s", &c.Healthy}, {"catchup", "caught_up_s", &c.CaughtUp},
		{"catchup", "path", &c.Path}, {"catchup", "updates", &c.Updates}, {"catchup", "took_s", &c.Took},
	}
}

func (f durableField) format() string {
	switch v := f.p.(type) {
	case *int:
		return strconv.Itoa(*v)
	case *int64:
		return strconv.FormatInt(*v, 10)
	case *uint64:
		return strconv.FormatUint(*v, 10)
	case *float64:
		return strconv.FormatFloat(*v, 'f', 1, 64)
	case *time.Duration:
		return secs(*v)
	case *string:
		return *v
	}
	panic(fmt.Sprintf("durable field %s: type %T", f.name, f.p))
}

func (f durableField) parse(s string) error {
	var err error
	switch v := f.p.(type) {
	case *int:
		*v, err = strconv.Atoi(s)
	case *int64:
		*v, err = strconv.ParseInt(s, 10, 64)
	case *uint64:
		*v, err = strconv.ParseUint(s, 10, 64)
	case *float64:
		*v, err = strconv.ParseFloat(s, 64)
	case *time.Duration:
		var x float64
		x, err = strconv.ParseFloat(s, 64)
		*v = time.Duration(x * float64(time.Second))
	case *string:
		*v = s
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", f.phase, f.name, err)
	}
	return nil
}

func writeDurableFields(w io.Writer, r *DurableResult) error {
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"phase", "name", "value"})
	for _, f := range durableFields(r) {
		_ = cw.Write([]string{f.phase, f.name, f.format()})
	}
	cw.Flush()
	return cw.Error()
}

func readDurableFields(rd io.Reader, r *DurableResult) error {
	recs, err := csv.NewReader(rd).ReadAll()
	if err != nil {
		return fmt.Errorf("durable csv: %w", err)
	}
	byName := map[string]string{}
	for _, rec := range recs[min(1, len(recs)):] {
		if len(rec) != 3 {
			return fmt.Errorf("durable csv: a row of %d fields, want 3", len(rec))
		}
		byName[rec[0]+"/"+rec[1]] = rec[2]
	}
	for _, f := range durableFields(r) {
		if s, ok := byName[f.phase+"/"+f.name]; ok {
			if err := f.parse(s); err != nil {
				return fmt.Errorf("durable csv: %w", err)
			}
		}
	}
	return nil
}
