package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/internal/testenv"
)

// syncBuffer is a bytes.Buffer that a running command writes while the
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestHistoryWatchAndCompact runs get --rev, history, watch --rev, del
// --prefix, purge, compact and put --ttl against a real one-server
// cluster, over NATS and over HTTP.
func TestHistoryWatchAndCompact(t *testing.T) {
	zk := testenv.StartZooKeeper(t)
	ns := testenv.StartNATS(t)
	nodes := testenv.StartCluster(t, 1, harness.NodeOptions{ZooKeeper: zk.Addr(), NATSURL: ns.URL(), Args: []string{"--watch-window", "32"}})
	var out, errOut bytes.Buffer
	if code := run(t.Context(), []string{"kvctl", "--nats", ns.URL(), "--timeout", "30s", "put", "warm", "1"}, strings.NewReader(""), &out, &errOut); code != ExitOK {
		t.Fatalf("first write: exit code %d: %s%s", code, out.String(), errOut.String())
	}
	revOf := regexp.MustCompile(` revision=(\d+) `)
	for _, face := range []string{"nats", "http"} {
		flags := []string{"--nats", ns.URL()}
		if face == "http" {
			flags = []string{"--http", "http://" + nodes[0].HTTPAddr()}
		}
		t.Run(face, func(t *testing.T) {
			args := func(a ...string) []string {
				return append(append([]string{"kvctl", "--timeout", "30s"}, flags...), a...)
			}
			kvctl := func(want int, a ...string) (string, string) {
				t.Helper()
				var stdout, stderr bytes.Buffer
				if code := run(t.Context(), args(a...), strings.NewReader(""), &stdout, &stderr); code != want {
					t.Fatalf("%q: exit code %d, want %d; stdout %q stderr %q", a, code, want, stdout.String(), stderr.String())
				}
				return stdout.String(), stderr.String()
			}
			write := func(a ...string) (string, string) {
				t.Helper()
				out, _ := kvctl(ExitOK, a...)
				m := revOf.FindStringSubmatch(out)
				if m == nil {
					t.Fatalf("%q: no revision in %q", a, out)
				}
				return out, m[1]
			}
			k := face + "/h"
			out, r1 := write("put", k, "1", "--ttl", "1h")
			if !strings.Contains(out, " expires=") {
				t.Errorf("put --ttl: %q", out)
			}
			_, r2 := write("put", k, "2")

			// get: the value alone on stdout, the node and staleness on stderr.
			out, errOut := kvctl(ExitOK, "get", k, "--rev", r1)
			if out != "1\n" || !strings.Contains(errOut, nodes[0].ID()+" (leader, epoch ") || !strings.Contains(errOut, "stale: no") ||
				!strings.Contains(errOut, "as of revision "+r1) || !strings.Contains(errOut, "expires ") {
				t.Errorf("get --rev: stdout %q stderr %q", out, errOut)
			}
			if out, errOut := kvctl(ExitOK, "get", k); out != "2\n" || !strings.Contains(errOut, "stale: no") {
				t.Errorf("get: stdout %q stderr %q", out, errOut)
			}
			if _, errOut := kvctl(ExitError, "get", k, "--rev", "9000000"); !strings.Contains(errOut, "error: future_revision:") {
				t.Errorf("get at a future revision: %q", errOut)
			}

			// history: a table, or the whole reply.
			out, errOut = kvctl(ExitOK, "history", k)
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if len(lines) != 3 || !strings.HasPrefix(lines[0], "REVISION") || !strings.HasPrefix(lines[1], r1+" ") ||
				strings.HasSuffix(lines[1], " -") || !strings.HasSuffix(lines[2], " -") || !strings.Contains(errOut, "stale: no") {
				t.Errorf("history: %q, stderr %q", out, errOut)
			}
			var h bus.HistoryReply
			out, _ = kvctl(ExitOK, "history", k, "--limit", "1", "--json")
			if err := json.Unmarshal([]byte(out), &h); err != nil || len(h.Versions) != 1 || h.Versions[0].Value != "2" || !h.Trimmed {
				t.Errorf("history --limit 1 --json: %q (%v)", out, err)
			}
			kvctl(ExitNotFound, "history", face+"/none")

			// A watch from r2 replays, then follows live updates. It runs
			// as a process of its own (cli's flags are not safe to parse
			// in two goroutines), stopped as Ctrl-C stops it.
			stdout, stderr := &syncBuffer{}, &syncBuffer{}
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			watch := exec.CommandContext(ctx, testenv.Binaries(t).KVCtl, args("watch", face+"/", "--rev", r2)[1:]...)
			watch.Stdout, watch.Stderr = stdout, stderr
			watch.Cancel = func() error { return watch.Process.Signal(os.Interrupt) }
			if err := watch.Start(); err != nil {
				t.Fatal(err)
			}
			_, pa := write("put", face+"/p/a", "1")
			write("put", face+"/p/b", "1")
			out, dp := write("del", face+"/p/", "--prefix")
			if !strings.HasSuffix(out, " deleted 2 keys\n") {
				t.Errorf("del --prefix: %q", out)
			}
			out, pu := write("purge", k)
			if !strings.HasSuffix(out, " purged\n") {
				t.Errorf("purge: %q", out)
			}
			want := fmt.Sprintf("seq=%s %s=2\n", r2, k) +
				fmt.Sprintf("seq=%s %s/p/a=1\n", pa, face) +
				fmt.Sprintf("seq=%s %s/p/ (deleted by prefix)\n", dp, face) +
				fmt.Sprintf("seq=%s %s (purged)\n", pu, k)
			strip := regexp.MustCompile(`(?m)^epoch=\d+ `)
			testenv.WaitFor(t, 20*time.Second, "the watch to print the updates", func() error {
				got := strip.ReplaceAllString(stdout.String(), "")
				if !strings.Contains(strings.ReplaceAll(got, fmt.Sprintf("seq=%d %s/p/b=1\n", mustUint(t, pa)+1, face), ""), want) {
					return fmt.Errorf("watch printed %q", got)
				}
				return nil
			})
			cancel()
			_ = watch.Wait() // the error of a cancelled command, even one that exits 0
			if code := watch.ProcessState.ExitCode(); code != ExitOK {
				t.Errorf("interrupted watch: exit code %d, stderr %q", code, stderr.String())
			}

			// Compaction: what lies below it is an error.
			if out, _ := kvctl(ExitOK, "compact", "--rev", pu); !strings.Contains(out, "compacted below revision "+pu) {
				t.Errorf("compact: %q", out)
			}
			if _, errOut := kvctl(ExitError, "get", k, "--rev", r1); !strings.Contains(errOut, "error: compacted:") {
				t.Errorf("get below the compaction: %q", errOut)
			}
			// A watch from a start the window (32 updates) no longer holds.
			for i := range 40 {
				write("put", fmt.Sprintf("%s/fill/%d", face, i), "x")
			}
			if _, errOut := kvctl(ExitError, "watch", "--rev", "1"); !strings.Contains(errOut, "error: compacted:") {
				t.Errorf("watch from a start no longer held: %q", errOut)
			}
			if out, _ := kvctl(ExitOK, "compact", "--age", "1h"); !strings.Contains(out, "nothing to compact") {
				t.Errorf("compact --age: %q", out)
			}
		})
	}
}

func mustUint(t *testing.T, s string) uint64 {
	t.Helper()
	var n uint64
	if _, err := fmt.Sscan(s, &n); err != nil {
		t.Fatal(err)
	}
	return n
}
