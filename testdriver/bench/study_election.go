package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/zkvstore/zkv/testdriver/cluster"
)

// Files of the election study, relative to the output directory.
const (
	electionMD      = "election.md"
	electionCSV     = "data/election.csv"
	electionMeta    = "data/election-meta.json"
	electionBoxPNG  = "election-failover.png"
	electionTimePNG = "election-timeout.png"
)

// ElectionStudy runs cfg, writes the raw CSV (adding to the existing one
// when appendRuns) and renders the report under out.
func ElectionStudy(ctx context.Context, cfg ElectionConfig, out string, appendRuns, quiet bool, command string) error {
	csvPath := filepath.Join(out, electionCSV)
	metaPath := filepath.Join(out, electionMeta)
	var prior []ElectionRun
	meta := Meta{}
	if appendRuns {
		var err error
		if prior, err = readElectionFile(csvPath); err != nil {
			return err
		}
		meta = readMeta(metaPath)
	}
	meta.Commands = append(meta.Commands, command)
	if c := gitCommit(ctx); c != "" {
		meta.Commit = c
	}
	if meta.Started == "" || !appendRuns {
		meta.Started = time.Now().UTC().Format(time.RFC3339)
	}
	total := cfg.Runs * len(cfg.ZK) * len(cfg.Stops) * len(cfg.SessionTimeouts) * max(len(cfg.FastFailover), 1)
	pr := NewProgress("election", total, quiet)
	cfg.Log = pr.Log()
	var runs []ElectionRun
	zkVersion := meta.Machine.ZooKeeper
	cfg.OnZK = func(env *cluster.Local) {
		if v := zooKeeperVersion(ctx, env); v != "unknown" {
			zkVersion = v
		}
	}
	cfg.OnRun = func(r ElectionRun) {
		runs = append(runs, r)
		pr.Step(fmt.Sprintf("%s %s %v fast-%s run %d: (c) %s ms", r.ZK, r.Stop, r.SessionTimeout, r.Fast, r.Run, Ms(r.FirstWrite)))
		// Keep what was measured even if the study is interrupted.
		_ = writeElectionFile(csvPath, append(append([]ElectionRun(nil), prior...), runs...))
	}
	_, err := RunElection(ctx, cfg)
	pr.Done()
	all := append(prior, runs...)
	if werr := writeElectionFile(csvPath, all); werr != nil {
		return werr
	}
	meta.Machine = thisMachine(ctx, zkVersion)
	meta.Finished = time.Now().UTC().Format(time.RFC3339)
	if werr := writeMeta(metaPath, meta); werr != nil {
		return werr
	}
	if rerr := RenderElection(out); rerr != nil {
		return rerr
	}
	fmt.Fprintf(os.Stderr, "wrote %s (%d runs)\n", filepath.Join(out, electionMD), len(all))
	return err
}

func writeElectionFile(path string, runs []ElectionRun) error {
	tmp := path + ".tmp"
	if err := writeFile(tmp, func(w io.Writer) error { return WriteElectionCSV(w, runs) }); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// RenderElection renders election.md and its charts from the CSV under
// out.
func RenderElection(out string) error {
	runs, err := readElectionFile(filepath.Join(out, electionCSV))
	if err != nil {
		return err
	}
	if len(runs) == 0 {
		return fmt.Errorf("no election runs in %s", filepath.Join(out, electionCSV))
	}
	sets := GroupElection(runs)
	rep := ElectionReport{Runs: runs, Settings: sets, Meta: readMeta(filepath.Join(out, electionMeta)), CSVPath: electionCSV}
	if err := ElectionBoxChart(sets, filepath.Join(out, electionBoxPNG)); err != nil {
		return err
	}
	rep.Charts = append(rep.Charts, electionBoxPNG)
	ok, err := ElectionTimeoutChart(sets, filepath.Join(out, electionTimePNG))
	if err != nil {
		return err
	}
	if ok {
		rep.Charts = append(rep.Charts, electionTimePNG)
	}
	return writeFile(filepath.Join(out, electionMD), func(w io.Writer) error { return WriteElectionReport(w, rep) })
}
