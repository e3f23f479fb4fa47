package main

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zkvstore/zkv/internal/cliflags"
)

func TestZookeeperServers(t *testing.T) {
	tests := []struct {
		in   string
		port int
		want []string
	}{
		{"127.0.0.1", 2181, []string{"127.0.0.1:2181"}},
		{"zoo1,zoo2:2182, zoo3", 2181, []string{"zoo1:2181", "zoo2:2182", "zoo3:2181"}},
		{"::1", 2181, []string{"[::1]:2181"}},
		{"[::1]:3000", 2181, []string{"[::1]:3000"}},
		{"", 2181, nil},
	}
	for _, tt := range tests {
		if got := zookeeperServers(tt.in, tt.port); !slices.Equal(got, tt.want) {
			t.Errorf("zookeeperServers(%q, %d) = %q, want %q", tt.in, tt.port, got, tt.want)
		}
	}
}

func TestNewLogger(t *testing.T) {
	for _, tt := range []struct {
		level, format string
		ok            bool
	}{
		{"info", "text", true}, {"debug", "json", true}, {"WARN", "text", true},
		{"loud", "text", false}, {"info", "xml", false},
	} {
		_, err := newLogger(tt.level, tt.format)
		if (err == nil) != tt.ok {
			t.Errorf("newLogger(%q, %q) error = %v, want ok=%v", tt.level, tt.format, err, tt.ok)
		}
	}
}

// TestVersion: --version answers without the required --id.
func TestVersion(t *testing.T) {
	var stdout bytes.Buffer
	a := app(nil)
	a.Writer = &stdout
	if err := a.Run([]string{"kvserver", "--version"}); err != nil {
		t.Fatal(err)
	}
	if want := "kvserver version " + cliflags.Version() + "\n"; stdout.String() != want {
		t.Errorf("stdout %q, want %q", stdout.String(), want)
	}
}

// TestDurationsAreReadable: the JSON log writes a duration as "4s", not as
// nanoseconds.
func TestDurationsAreReadable(t *testing.T) {
	var buf bytes.Buffer
	l := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: readableDurations}))
	l.Info("started", "session_timeout", 4*time.Second, "count", 3)
	if got := buf.String(); !strings.Contains(got, `"session_timeout":"4s"`) || !strings.Contains(got, `"count":3`) {
		t.Fatalf("log line %s", got)
	}
}
