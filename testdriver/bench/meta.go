package bench

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"runtime"
	"strings"

	"github.com/nats-io/nats-server/v2/server"
)

// Machine describes where a benchmark ran.
type Machine struct {
	Cores     int    `json:"cores"`
	CPU       string `json:"cpu"`
	OS        string `json:"os"`
	Kernel    string `json:"kernel"`
	Go        string `json:"go"`
	NATS      string `json:"nats_server"`
	ZooKeeper string `json:"zookeeper"`
	Java      string `json:"java,omitempty"`
}

// Meta is stored next to the raw CSV: how the data was made.
type Meta struct {
	Commands []string `json:"commands"`
	Machine  Machine  `json:"machine"`
	// Commit is the git commit of the tree the kvserver was built from,
	// with "+dirty" when node/, election/, bus/, store/ or cmd/kvserver had
	// uncommitted changes.
	Commit   string   `json:"commit,omitempty"`
	Started  string   `json:"started"`
	Finished string   `json:"finished"`
	Notes    []string `json:"notes,omitempty"`
}

// ThisMachine describes the running machine; zkVersion is filled in by
// the caller (it needs a server).
func ThisMachine(zkVersion string) Machine {
	m := Machine{
		Cores:     runtime.NumCPU(),
		OS:        runtime.GOOS + "/" + runtime.GOARCH,
		Go:        runtime.Version(),
		NATS:      server.VERSION,
		ZooKeeper: zkVersion,
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

func readMeta(path string) Meta {
	var m Meta
	if b, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(b, &m)
	}
	return m
}

func writeMeta(path string, m Meta) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// gitCommit describes the source the kvserver under test was built from.
func gitCommit(ctx context.Context) string {
	out, err := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return ""
	}
	c := strings.TrimSpace(string(out))
	st, err := exec.CommandContext(ctx, "git", "status", "--porcelain", "--", "node", "election", "bus", "store", "cmd/kvserver").Output()
	if err == nil && len(strings.TrimSpace(string(st))) > 0 {
		c += "+dirty"
	}
	return c
}
