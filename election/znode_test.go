package election

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestParseSeq(t *testing.T) {
	tests := []struct {
		name    string
		want    int64
		wantErr bool
	}{
		{"server_0000000000", 0, false},
		{"server_0000000042", 42, false},
		{"server_2147483647", 2147483647, false},
		{"server_12345678901", 12345678901, false}, // past ten digits
		{"_c_6b1b7a1e2d6c4a8f9e0d1c2b3a4f5e6d-server_0000000007", 7, false},
		{"server_-2147483648", -2147483648, false}, // counter overflow
		{"server_", 0, true},
		{"server_abc", 0, true},
		{"lock-0000000001", 0, true},
		{"", 0, true},
	}
	for _, tt := range tests {
		got, err := ParseSeq(tt.name)
		if tt.wantErr {
			if !errors.Is(err, ErrNotElectionNode) {
				t.Errorf("ParseSeq(%q) error = %v, want ErrNotElectionNode", tt.name, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseSeq(%q) = %d, %v; want %d", tt.name, got, err, tt.want)
		}
	}
}

func TestSortByNumberNotString(t *testing.T) {
	names := []string{
		"server_0000000010",
		"server_12345678901",
		"_c_ffff-server_0000000002",
		"junk",
		"server_0000000009",
		"_c_0000-server_0000000100",
	}
	var got []string
	for _, c := range Sort(names) {
		got = append(got, c.Name)
	}
	want := []string{
		"_c_ffff-server_0000000002",
		"server_0000000009",
		"server_0000000010",
		"_c_0000-server_0000000100",
		"server_12345678901",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Sort = %q\nwant   %q", got, want)
	}
}

func TestPredecessor(t *testing.T) {
	sorted := Sort([]string{"server_0000000003", "server_0000000001", "server_0000000007"})
	tests := []struct {
		name      string
		wantPred  string
		wantOK    bool
		wantFound bool
	}{
		{"server_0000000001", "", false, true},
		{"server_0000000003", "server_0000000001", true, true},
		{"server_0000000007", "server_0000000003", true, true},
		{"server_0000000005", "", false, false},
	}
	for _, tt := range tests {
		pred, ok, found := Predecessor(sorted, tt.name)
		if pred.Name != tt.wantPred || ok != tt.wantOK || found != tt.wantFound {
			t.Errorf("Predecessor(%q) = %q,%v,%v; want %q,%v,%v", tt.name, pred.Name, ok, found, tt.wantPred, tt.wantOK, tt.wantFound)
		}
	}
}

func TestEpochOf(t *testing.T) {
	if EpochOf(0) != 1 || EpochOf(41) != 42 {
		t.Fatalf("EpochOf(0), EpochOf(41) = %d, %d; want 1, 42", EpochOf(0), EpochOf(41))
	}
}

func TestConfigValidate(t *testing.T) {
	ok := func() Config {
		c := DefaultConfig()
		c.Servers, c.ID = []string{"127.0.0.1:2181"}, "n1"
		c.setDefaults()
		return c
	}
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{"defaults", func(*Config) {}, ""},
		{"no servers", func(c *Config) { c.Servers = nil }, "no ZooKeeper servers"},
		{"server without port", func(c *Config) { c.Servers = []string{"zoo1"} }, "want host:port"},
		{"no id", func(c *Config) { c.ID = "" }, "empty ID"},
		{"relative path", func(c *Config) { c.Path = "election" }, "absolute path"},
		{"leader inside election", func(c *Config) { c.LeaderPath = "/election/leader" }, "must not be inside"},
		{"lease too slow", func(c *Config) { c.LeaseInterval = 3 * time.Second }, "lease interval 3s must be < half the session timeout 4s"},
		{"tiny session", func(c *Config) { c.SessionTimeout = time.Millisecond; c.LeaseInterval = 0 }, "below 100ms"},
	}
	for _, tt := range tests {
		c := ok()
		tt.mutate(&c)
		err := c.Validate()
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("%s: Validate() = %v, want nil", tt.name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: Validate() = %v, want it to mention %q", tt.name, err, tt.wantErr)
		}
	}
}
