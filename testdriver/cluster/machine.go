package cluster

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Machine describes where a run (the scenarios, the fault suite, a
// benchmark) ran, for its report.
type Machine struct {
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	MemoryGiB int    `json:"memory_gib,omitempty"`
	// OS is "linux/amd64"; Kernel the kernel release.
	OS     string `json:"os"`
	Kernel string `json:"kernel,omitempty"`
	Go     string `json:"go"`
	Java   string `json:"java,omitempty"`
	// NATS is the version of the nats-server module built in.
	NATS string `json:"nats_server,omitempty"`
	// ZooKeeper is the installed package's version, or the server's own
	// when the caller asked it.
	ZooKeeper string `json:"zookeeper"`
	// Load is the load average when the run started.
	Load string `json:"load,omitempty"`
}

// DescribeMachine gathers what it can; unknown parts say "unknown".
func DescribeMachine(ctx context.Context) Machine {
	m := Machine{CPU: "unknown", Cores: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH, Go: runtime.Version(), NATS: server.VERSION, Java: "unknown", ZooKeeper: "unknown", Load: "unknown"}
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
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.Load = LoadAverage()
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

// LoadAverage is the 1, 5 and 15 minute load average, or "unknown".
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}
