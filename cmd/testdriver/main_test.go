package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zkvstore/zkv/internal/cliflags"
)

// TestCommandLine checks flag handling and exit codes of everything that
// fails before a process is started.
func TestCommandLine(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-kvserver")
	tests := []struct {
		name   string
		args   []string
		env    map[string]string
		code   int
		stdout string
		stderr string
	}{
		{name: "help", args: []string{"--help"}, code: ExitOK, stdout: "run zkv's end-to-end scenarios"},
		{name: "version", args: []string{"--version"}, code: ExitOK, stdout: "testdriver version " + cliflags.Version() + "\n"},
		{name: "run help", args: []string{"run", "--help"}, code: ExitOK, stdout: "--scenario"},
		{name: "up help", args: []string{"up", "--help"}, code: ExitOK, stdout: "--nats-port"},
		{name: "unknown flag", args: []string{"run", "--nope"}, code: ExitUsage, stderr: "nope"},
		{name: "unknown scenario", args: []string{"run", "--scenario", "add-read,nope"}, code: ExitUsage, stderr: `unknown scenario "nope"`},
		{name: "unknown scenario from env", args: []string{"run"}, env: map[string]string{"ZKV_SCENARIO": "bogus"}, code: ExitUsage, stderr: `unknown scenario "bogus"`},
		{name: "bad kill", args: []string{"run", "--kill", "sigstop"}, code: ExitUsage, stderr: "--kill"},
		{name: "no servers", args: []string{"run", "--servers", "0"}, code: ExitUsage, stderr: "--servers 0"},
		{name: "bad session timeout", args: []string{"up", "--session-timeout", "-1s"}, code: ExitUsage, stderr: "--session-timeout"},
		{name: "bad log level", args: []string{"run", "--server-log-level", "loud"}, code: ExitUsage, stderr: "--server-log-level"},
		{name: "bad nats port", args: []string{"up", "--nats-port", "70000", "--kvserver", os.Args[0]}, code: ExitUsage, stderr: "--nats-port"},
		{name: "stray argument", args: []string{"run", "extra"}, code: ExitUsage, stderr: `unexpected argument "extra"`},
		{name: "kvserver missing", args: []string{"run", "--kvserver", missing}, code: ExitSetup, stderr: "kvserver binary"},
		{name: "kvserver not next to the program", args: []string{"up"}, code: ExitSetup, stderr: "make build"},
		{name: "run help lists compose", args: []string{"run", "--help"}, code: ExitOK, stdout: "--compose-project"},
		{name: "unknown cluster", args: []string{"run", "--cluster", "k8s"}, code: ExitUsage, stderr: `--cluster "k8s": want local or compose`},
		{name: "unknown cluster from env", args: []string{"run"}, env: map[string]string{"ZKV_CLUSTER": "swarm"}, code: ExitUsage, stderr: `--cluster "swarm"`},
		{name: "compose flag on local", args: []string{"run", "--compose-project", "zkv"}, code: ExitUsage, stderr: "--compose-project does not apply to --cluster local"},
		{name: "local flag on compose", args: []string{"run", "--cluster", "compose", "--servers", "5"}, code: ExitUsage, stderr: "--servers does not apply to --cluster compose"},
		{name: "ensemble on compose", args: []string{"run", "--cluster", "compose", "--zookeeper-ensemble"}, code: ExitUsage, stderr: "--zookeeper-ensemble does not apply"},
		{name: "ensemble and zookeeper", args: []string{"run", "--zookeeper-ensemble", "--zookeeper", "127.0.0.1:2181"}, code: ExitUsage, stderr: "cannot be used with --zookeeper"},
		{name: "bad compose http", args: []string{"run", "--cluster", "compose", "--compose-http", "tcp"}, code: ExitUsage, stderr: `--compose-http "tcp"`},
		{name: "no compose nodes", args: []string{"run", "--cluster", "compose", "--compose-nodes", ","}, code: ExitUsage, stderr: "--compose-nodes"},
		{name: "bad compose session timeout", args: []string{"run", "--cluster", "compose", "--session-timeout", "0s"}, code: ExitUsage, stderr: "--session-timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Chdir(t.TempDir())
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"testdriver"}, tt.args...), &stdout, &stderr)
			if code != tt.code {
				t.Errorf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout.String(), stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tt.stdout, stdout.String())
			}
			if !strings.Contains(stderr.String(), tt.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.stderr, stderr.String())
			}
			if _, err := os.Stat("logs"); err == nil {
				t.Errorf("a log directory was created for a command that never started")
			}
		})
	}
}

// TestComposeWithoutEngine runs --cluster compose against a Docker socket
// that does not exist: exit 3, and the log directory
// <log-dir>/<timestamp>/compose holds summary.json and driver.log.
func TestComposeWithoutEngine(t *testing.T) {
	dir := t.TempDir()
	socket := filepath.Join(dir, "no-docker.sock")
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"testdriver", "run", "--cluster", "compose", "--compose-project", "zkv",
		"--docker-socket", socket, "--log-dir", filepath.Join(dir, "logs")}, &stdout, &stderr)
	if code != ExitSetup {
		t.Fatalf("exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", code, ExitSetup, stdout.String(), stderr.String())
	}
	if !strings.Contains(stderr.String(), socket) || !strings.Contains(stdout.String(), "the compose project could not be reached") {
		t.Errorf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	}
	found, _ := filepath.Glob(filepath.Join(dir, "logs", "*", "compose", "summary.json"))
	if len(found) != 1 {
		t.Errorf("summary.json under logs/<timestamp>/compose: found %v", found)
	}

	// --run-log-dir is the directory itself.
	exact := filepath.Join(dir, "exact")
	stdout.Reset()
	code = run(context.Background(), []string{"testdriver", "run", "--cluster", "compose", "--docker-socket", socket, "--run-log-dir", exact}, &stdout, &stderr)
	if code != ExitSetup {
		t.Fatalf("exit code %d, want %d", code, ExitSetup)
	}
	for _, f := range []string{"summary.json", "driver.log"} {
		if _, err := os.Stat(filepath.Join(exact, f)); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
