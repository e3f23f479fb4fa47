package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/zkvstore/zkv/testdriver/cluster"
)

// Files of the kv study, relative to the output directory.
const (
	kvMD         = "kv.md"
	kvCSV        = "data/kv.csv"
	kvMeta       = "data/kv-meta.json"
	kvLatencyPNG = "kv-latency.png"
	kvTputPNG    = "kv-throughput.png"
	kvClientsPNG = "kv-throughput-clients.png"
)

func kvCommand() *cli.Command {
	return &cli.Command{
		Name:  "kv",
		Usage: "read/write latency and throughput of zkv next to bare NATS request/reply and JetStream KV",
		Flags: append(commonFlags(),
			&cli.DurationFlag{Name: "duration", EnvVars: []string{"ZKV_BENCH_DURATION"}, Value: 2 * time.Second, Usage: "length of one measurement (one operation, one concurrency, one round)"},
			&cli.IntFlag{Name: "rounds", EnvVars: []string{"ZKV_BENCH_ROUNDS"}, Value: 3, Usage: "rounds; each measures every operation once, interleaved"},
			&cli.IntSliceFlag{Name: "clients", EnvVars: []string{"ZKV_BENCH_CLIENTS"}, Value: cli.NewIntSlice(1, 16, 64), Usage: "concurrency levels"},
			&cli.IntFlag{Name: "lag-samples", EnvVars: []string{"ZKV_BENCH_LAG_SAMPLES"}, Value: 500, Usage: "replication-lag samples"},
			&cli.IntFlag{Name: "value-size", EnvVars: []string{"ZKV_BENCH_VALUE_SIZE"}, Value: 100, Usage: "bytes per written value"},
			&cli.StringSliceFlag{Name: "js-storage", EnvVars: []string{"ZKV_BENCH_JS_STORAGE"}, Value: cli.NewStringSlice(StorageFile, StorageMemory), Usage: "JetStream KV storages measured: file, memory (a list measures each)"},
			&cli.IntFlag{Name: "mem-keys", EnvVars: []string{"ZKV_BENCH_MEM_KEYS"}, Value: 1_000_000, Usage: "distinct keys loaded into one cluster to measure memory per key (0: skip)"},
			&cli.BoolFlag{Name: "r3", EnvVars: []string{"ZKV_BENCH_R3"}, Value: true, Usage: "also run a 3-server NATS cluster and a JetStream KV R3 bucket"},
			&cli.BoolFlag{Name: "embedded", EnvVars: []string{"ZKV_BENCH_EMBEDDED"}, Value: true, Usage: "also run three kvservers in embedded mode (each a NATS node) and measure zkv on them"},
			&cli.BoolFlag{Name: "report-only", Usage: "only render the report and charts from the existing CSV"},
		),
		Action: studyAction(RenderKV, func(ctx context.Context, c *cli.Context, out string) error {
			cfg, err := kvConfig(c)
			if err != nil {
				return err
			}
			return withKVServer(ctx, c, func(bin string) error {
				cfg.KVServer = bin
				return KVStudy(ctx, cfg, out, c.Bool("quiet"), commandLine())
			})
		}),
	}
}

// kvConfig is the configuration the flags of the kv command ask for;
// --quick shortens what was not set explicitly.
func kvConfig(c *cli.Context) (KVConfig, error) {
	cfg := KVConfig{
		Duration:   c.Duration("duration"),
		Rounds:     c.Int("rounds"),
		Clients:    c.IntSlice("clients"),
		LagSamples: c.Int("lag-samples"),
		ValueSize:  c.Int("value-size"),
		JSStorages: splitList(c.StringSlice("js-storage")),
		R3:         c.Bool("r3"),
		Embedded:   c.Bool("embedded"),
		MemKeys:    c.Int("mem-keys"),
	}
	if c.Bool("quick") {
		quick := []struct {
			flag string
			set  func()
		}{
			{"duration", func() { cfg.Duration = 300 * time.Millisecond }},
			{"rounds", func() { cfg.Rounds = 1 }},
			{"lag-samples", func() { cfg.LagSamples = 50 }},
			{"clients", func() { cfg.Clients = []int{1, 16} }},
			{"mem-keys", func() { cfg.MemKeys = 20_000 }},
		}
		for _, q := range quick {
			if !c.IsSet(q.flag) {
				q.set()
			}
		}
	}
	for _, st := range cfg.JSStorages {
		if st != StorageFile && st != StorageMemory {
			return cfg, fmt.Errorf("--js-storage %q: want file or memory", st)
		}
	}
	if cfg.MemKeys < 0 {
		return cfg, fmt.Errorf("--mem-keys %d: want 0 (skip) or more", cfg.MemKeys)
	}
	return cfg, nil
}

// KVStudy runs cfg and writes the CSV, the charts and kv.md under out.
func KVStudy(ctx context.Context, cfg KVConfig, out string, quiet bool, command string) error {
	cfg = cfg.withDefaults()
	meta := Meta{Commands: []string{command}, Started: time.Now().UTC().Format(time.RFC3339), Commit: gitCommit(ctx)}
	pr := NewProgress("kv", cfg.KVSteps(), quiet)
	cfg.Log = pr.Log()
	cfg.OnStep = pr.Step
	zkv := "unknown"
	cfg.OnCluster = func(c *cluster.Local) { zkv = zooKeeperVersion(ctx, c) }
	rs, err := RunKV(ctx, cfg)
	pr.Done()
	if err != nil {
		return err
	}
	meta.Finished = time.Now().UTC().Format(time.RFC3339)
	meta.Machine = thisMachine(ctx, zkv)
	meta.Notes = []string{kvConfigText(cfg)}
	if err := writeFile(filepath.Join(out, kvCSV), func(w io.Writer) error { return WriteKVCSV(w, rs) }); err != nil {
		return err
	}
	if err := writeMeta(filepath.Join(out, kvMeta), meta); err != nil {
		return err
	}
	if err := RenderKV(out); err != nil {
		return err
	}
	WriteKVSummary(os.Stderr, rs)
	fmt.Fprintf(os.Stderr, "wrote %s\n", filepath.Join(out, kvMD))
	return nil
}

func kvConfigText(cfg KVConfig) string {
	r3 := "JetStream R3 on a 3-server cluster"
	if !cfg.R3 {
		r3 = "no R3 (one NATS server)"
	}
	emb := "no embedded-mode cluster"
	if cfg.Embedded {
		emb = "a second zkv cluster in embedded mode (three kvservers, each a NATS node, clustered with routes; same ZooKeeper)"
	}
	mem := "no memory measurement"
	if cfg.MemKeys > 0 {
		mem = fmt.Sprintf("memory per key measured by loading %d keys", cfg.MemKeys)
	}
	return fmt.Sprintf("Setup: %d round(s) of %v per operation and concurrency, clients %v, %d-byte values, JetStream %s storage, %s, %s, %d replication-lag samples, %s.",
		cfg.Rounds, cfg.Duration, cfg.Clients, cfg.ValueSize, strings.Join(cfg.JSStorages, " and "), r3, emb, cfg.LagSamples, mem)
}

// RenderKV renders kv.md and its charts from the CSV under out.
func RenderKV(out string) error {
	rs, err := readKVFile(filepath.Join(out, kvCSV))
	if err != nil {
		return err
	}
	meta := readMeta(filepath.Join(out, kvMeta))
	rep := KVReport{Results: rs, Meta: meta, CSVPath: kvCSV}
	if len(meta.Notes) > 0 {
		rep.Config = meta.Notes[0]
		rep.Meta.Notes = meta.Notes[1:]
	}
	if err := KVChart(rs, filepath.Join(out, kvLatencyPNG)); err != nil {
		return err
	}
	if err := KVThroughputChart(rs, filepath.Join(out, kvTputPNG)); err != nil {
		return err
	}
	ok, err := KVClientsChart(rs, filepath.Join(out, kvClientsPNG))
	if err != nil {
		return err
	}
	rep.Charts = []string{kvLatencyPNG, kvTputPNG}
	if ok {
		rep.Charts = append(rep.Charts, kvClientsPNG)
	}
	return writeFile(filepath.Join(out, kvMD), func(w io.Writer) error { return WriteKVReport(w, rep) })
}
