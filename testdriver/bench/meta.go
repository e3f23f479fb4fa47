package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"strings"

	"github.com/zkvstore/zkv/testdriver/cluster"
)

// Meta is stored next to the raw CSV: how the data was made.
type Meta struct {
	Commands []string        `json:"commands"`
	Machine  cluster.Machine `json:"machine"`
	// Commit is the git commit of the tree the kvserver was built from,
	// with "+dirty" when node/, election/, bus/, store/ or cmd/kvserver had
	// uncommitted changes.
	Commit   string   `json:"commit,omitempty"`
	Started  string   `json:"started"`
	Finished string   `json:"finished"`
	Notes    []string `json:"notes,omitempty"`
}

// thisMachine describes the running machine with zkVersion, the
// version the ZooKeeper server reported.
func thisMachine(ctx context.Context, zkVersion string) cluster.Machine {
	m := cluster.DescribeMachine(ctx)
	m.ZooKeeper = zkVersion
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

// writeFile writes what write produces to path, in one piece.
func writeFile(path string, write func(io.Writer) error) error {
	var b bytes.Buffer
	if err := write(&b); err != nil {
		return err
	}
	return os.WriteFile(path, b.Bytes(), 0o644)
}
