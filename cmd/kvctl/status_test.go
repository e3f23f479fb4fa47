package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/client"
	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/internal/testenv"
)

func TestStatusFailure(t *testing.T) {
	up := bus.Status{Node: "n1", Role: bus.RoleLeader}
	down := bus.Status{Node: "n2", Role: client.RoleUnreachable}
	stale := bus.Status{Node: "n3", Role: bus.RoleFollower, Stale: true}
	tests := []struct {
		name     string
		statuses []bus.Status
		want     string // "" for no error
	}{
		{"all well", []bus.Status{up}, ""},
		{"unreachable", []bus.Status{up, down}, "error: unavailable: 1 of 2 nodes did not answer: n2"},
		{"stale", []bus.Status{up, stale}, "error: stale: stale (missed updates): n3"},
		{"both", []bus.Status{up, down, stale}, "error: unavailable: 1 of 3 nodes did not answer: n2; stale (missed updates): n3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			code := exitCode(statusFailure(tt.statuses), &stderr)
			switch {
			case tt.want == "" && code != ExitOK:
				t.Errorf("exit %d (%s), want 0", code, stderr.String())
			case tt.want != "" && (code != ExitError || strings.TrimSpace(stderr.String()) != tt.want):
				t.Errorf("exit %d %q, want 1 %q", code, stderr.String(), tt.want)
			}
		})
	}
}

// TestStatusKilledMember runs kvctl status against three real servers,
// over NATS and over HTTP: 0 while all answer; after a follower is
// killed, while ZooKeeper still holds its election znode, it is listed as
// unreachable and status exits 1; status --watch keeps redrawing until
// cancelled and exits 0; the follower restarted empty is stale: exit 1.
func TestStatusKilledMember(t *testing.T) {
	zk := testenv.StartZooKeeper(t)
	ns := testenv.StartNATS(t)
	// A long session: the killed server stays a member for the test.
	nodes := testenv.StartCluster(t, 3, harness.NodeOptions{ZooKeeper: zk.Addr(), NATSURL: ns.URL(), SessionTimeout: 30 * time.Second})
	kvctl := func(ctx context.Context, stdout, stderr *syncBuffer, args ...string) int {
		args = append([]string{"kvctl", "--nats", ns.URL(), "--timeout", "5s"}, args...)
		return run(ctx, args, strings.NewReader(""), stdout, stderr)
	}
	var out, errOut syncBuffer
	if code := kvctl(t.Context(), &out, &errOut, "--timeout", "30s", "put", "a", "1"); code != ExitOK {
		t.Fatalf("put: exit %d: %s", code, errOut.String())
	}
	leader := ""
	testenv.WaitFor(t, 20*time.Second, "status to exit 0 with three nodes", func() error {
		var stdout, stderr syncBuffer
		if code := kvctl(t.Context(), &stdout, &stderr, "status", "--json"); code != ExitOK {
			return fmt.Errorf("exit %d: %s%s", code, stdout.String(), stderr.String())
		}
		if n := strings.Count(stdout.String(), `"node":`); n != 3 {
			return fmt.Errorf("%d nodes: %s", n, stdout.String())
		}
		_, rest, _ := strings.Cut(stdout.String(), `"role":"leader","epoch":`)
		_, rest, _ = strings.Cut(rest, `"leader":"`)
		leader, _, _ = strings.Cut(rest, `"`)
		return nil
	})
	var victim, watcher *harness.Node
	for _, n := range nodes {
		switch {
		case n.ID() == leader:
		case victim == nil:
			victim = n
		default:
			watcher = n
		}
	}
	if victim == nil || watcher == nil {
		t.Fatalf("leader %q: no two followers among %d nodes", leader, len(nodes))
	}
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	for face, flags := range map[string][]string{"nats": nil, "http": {"--http", "http://" + watcher.HTTPAddr()}} {
		var stdout, stderr syncBuffer
		code := kvctl(t.Context(), &stdout, &stderr, append(flags, "status")...)
		row := victim.ID() + "    unreachable"
		if code != ExitError || !strings.Contains(stdout.String(), row) || strings.Count(stdout.String(), "\n") != 4 ||
			!strings.Contains(stderr.String(), "error: unavailable: 1 of 3 nodes did not answer: "+victim.ID()) {
			t.Errorf("%s: status after a kill: exit %d, stdout\n%s\nstderr %q", face, code, stdout.String(), stderr.String())
		}
	}

	// --watch redraws until cancelled, then exits 0.
	ctx, cancel := context.WithCancel(t.Context())
	var stdout, stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- kvctl(ctx, &stdout, &stderr, "status", "--watch", "--interval", "100ms") }()
	testenv.WaitFor(t, 20*time.Second, "two tables from status --watch", func() error {
		if n := strings.Count(stdout.String(), victim.ID()+"    unreachable"); n < 2 {
			return fmt.Errorf("%d tables with %s unreachable: %s", n, victim.ID(), stdout.String())
		}
		return nil
	})
	cancel()
	if code := <-done; code != ExitOK {
		t.Errorf("status --watch stopped: exit %d, want 0; stderr %q", code, stderr.String())
	}

	// Back, empty: it knows it missed the write.
	if err := victim.Restart(t.Context()); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 20*time.Second, "status to report the restarted server stale", func() error {
		var stdout, stderr syncBuffer
		code := kvctl(t.Context(), &stdout, &stderr, "status")
		if code != ExitError || !strings.Contains(stderr.String(), "error: stale: stale (missed updates): "+victim.ID()) {
			return fmt.Errorf("exit %d: %s%s", code, stdout.String(), stderr.String())
		}
		return nil
	})
}
