package chaos

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/zkvstore/zkv/testdriver/cluster"
)

// FuzzPackage is the package whose fuzz targets the suite runs.
const FuzzPackage = "./bus"

// FuzzResult is one fuzz target's run.
type FuzzResult struct {
	Target  string        `json:"target"`
	Execs   int64         `json:"execs"`
	Elapsed time.Duration `json:"elapsed"`
	// Interesting is the corpus size the engine reported last ("new
	// interesting: N (total: M)").
	Interesting string `json:"interesting,omitempty"`
	Command     string `json:"command"`
	// Load is the load average when the target started.
	Load string `json:"load,omitempty"`
	Err  string `json:"error,omitempty"`
}

// FuzzCommand is the command that fuzzes target for d.
func FuzzCommand(target string, d time.Duration) string {
	return fmt.Sprintf("go test -run '^$' -fuzz '^%s$' -fuzztime %s %s", target, d, FuzzPackage)
}

var (
	execsRe       = regexp.MustCompile(`execs: (\d+)`)
	interestingRe = regexp.MustCompile(`new interesting: (\d+ \(total: \d+\))`)
)

// parseFuzz returns the last execution count and corpus figures the fuzz
// engine printed.
func parseFuzz(out []byte) (int64, string) {
	var execs int64
	var interesting string
	for _, line := range strings.Split(string(out), "\n") {
		if m := execsRe.FindStringSubmatch(line); m != nil {
			execs, _ = strconv.ParseInt(m[1], 10, 64)
		}
		if m := interestingRe.FindStringSubmatch(line); m != nil {
			interesting = m[1]
		}
	}
	return execs, interesting
}

// FuzzTargets lists the fuzz targets of FuzzPackage.
func FuzzTargets(ctx context.Context, root string) ([]string, error) {
	cmd := exec.CommandContext(ctx, "go", "test", "-list", "Fuzz.*", FuzzPackage)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go test -list: %w", err)
	}
	var targets []string
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "Fuzz") {
			targets = append(targets, strings.TrimSpace(line))
		}
	}
	return targets, nil
}

// RunFuzz runs every fuzz target of FuzzPackage for d, one after the
// other, from the module root.
func RunFuzz(ctx context.Context, root string, d time.Duration, log io.Writer) ([]FuzzResult, error) {
	targets, err := FuzzTargets(ctx, root)
	if err != nil {
		return nil, err
	}
	var out []FuzzResult
	for _, t := range targets {
		if log != nil {
			fmt.Fprintf(log, "== fuzz %s for %s\n", t, d)
		}
		load := cluster.LoadAverage()
		start := time.Now()
		cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-fuzz", "^"+t+"$", "-fuzztime", d.String(), FuzzPackage)
		cmd.Dir = root
		var buf bytes.Buffer
		cmd.Stdout, cmd.Stderr = &buf, &buf
		err := cmd.Run()
		r := FuzzResult{Target: t, Elapsed: time.Since(start), Command: FuzzCommand(t, d), Load: load}
		r.Execs, r.Interesting = parseFuzz(buf.Bytes())
		if err != nil {
			r.Err = fmt.Sprintf("%v: %s", err, lastLines(buf.String(), 15))
		}
		if log != nil {
			fmt.Fprintf(log, "   %d execs in %s%s\n", r.Execs, r.Elapsed.Round(time.Second), map[bool]string{true: " FAILED", false: ""}[r.Err != ""])
		}
		out = append(out, r)
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
	}
	return out, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
