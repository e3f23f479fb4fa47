package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
