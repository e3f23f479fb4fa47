package chaos

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Machine describes where the suite ran, for the report.
type Machine struct {
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	MemoryGiB int    `json:"memory_gib,omitempty"`
	OS        string `json:"os"`
	Go        string `json:"go"`
	Java      string `json:"java"`
	ZooKeeper string `json:"zookeeper"`
	// Load is the load average when the suite started.
	Load string `json:"load"`
}

// DescribeMachine gathers what it can; unknown parts say "unknown".
func DescribeMachine(ctx context.Context) Machine {
	m := Machine{CPU: "unknown", Cores: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH, Go: runtime.Version(), Java: "unknown", ZooKeeper: "unknown", Load: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		if f := regexp.MustCompile(`MemTotal:\s+(\d+) kB`).FindSubmatch(b); f != nil {
			kb, _ := strconv.Atoi(string(f[1]))
			m.MemoryGiB = (kb + 512*1024) / (1024 * 1024)
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.OS = fmt.Sprintf("%s %s/%s", runtime.GOOS, strings.TrimSpace(string(b)), runtime.GOARCH)
	}
	m.Load = loadAverage()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(cctx, "java", "-version").CombinedOutput(); err == nil {
		if line, _, _ := strings.Cut(string(out), "\n"); line != "" {
			m.Java = strings.TrimSpace(line)
		}
	}
	if out, err := exec.CommandContext(cctx, "dpkg-query", "-W", "-f", "${Version}", "zookeeper").Output(); err == nil && len(out) > 0 {
		m.ZooKeeper = "Debian zookeeper " + strings.TrimSpace(string(out))
	}
	return m
}
