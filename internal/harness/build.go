package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Binaries are the paths of the zkv programs built by BuildBinaries. A path
// is "" when its command does not exist in the module (yet).
type Binaries struct {
	// Dir is the directory holding the binaries.
	Dir string
	// KVServer is the path of cmd/kvserver.
	KVServer string
	// KVCtl is the path of cmd/kvctl.
	KVCtl string
	// TestDriver is the path of cmd/testdriver.
	TestDriver string
}

// BuildBinaries builds the module's commands (cmd/kvserver, cmd/kvctl and
// cmd/testdriver) into outDir with one `go build [-race] -o outDir/ ...`.
// Commands whose directory has no non-test Go file are skipped, and their
// field in the result is "". moduleRoot "" means the module of the current
// directory (found with `go env GOMOD`); outDir "" means a new temporary
// directory, which the caller then owns and should remove. The error of a
// failed build contains the compiler's output.
func BuildBinaries(ctx context.Context, moduleRoot, outDir string, race bool) (Binaries, error) {
	if moduleRoot == "" {
		root, err := ModuleRoot(ctx)
		if err != nil {
			return Binaries{}, err
		}
		moduleRoot = root
	}
	if outDir == "" {
		d, err := os.MkdirTemp("", "zkv-bin-*")
		if err != nil {
			return Binaries{}, fmt.Errorf("build: %w", err)
		}
		outDir = d
	} else if err := os.MkdirAll(outDir, 0o755); err != nil {
		return Binaries{}, fmt.Errorf("build: %w", err)
	}
	outDir, err := filepath.Abs(outDir)
	if err != nil {
		return Binaries{}, fmt.Errorf("build: %w", err)
	}
	bins := Binaries{Dir: outDir}
	targets := []struct {
		name string
		dst  *string
	}{
		{"kvserver", &bins.KVServer},
		{"kvctl", &bins.KVCtl},
		{"testdriver", &bins.TestDriver},
	}
	args := []string{"build"}
	if race {
		args = append(args, "-race")
	}
	args = append(args, "-o", outDir+string(filepath.Separator))
	var pkgs []string
	for _, t := range targets {
		ok, err := hasGoFiles(filepath.Join(moduleRoot, "cmd", t.name))
		if err != nil {
			return Binaries{}, fmt.Errorf("build: %w", err)
		}
		if ok {
			pkgs = append(pkgs, "./cmd/"+t.name)
			*t.dst = filepath.Join(outDir, t.name)
		}
	}
	if len(pkgs) == 0 {
		return Binaries{}, fmt.Errorf("build: no command to build under %s", filepath.Join(moduleRoot, "cmd"))
	}
	cmd := exec.CommandContext(ctx, goTool(), append(args, pkgs...)...)
	cmd.Dir = moduleRoot
	cmd.SysProcAttr = sysProcAttr()
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w: %w", ctx.Err(), err)
		}
		return Binaries{}, fmt.Errorf("go %s: %w\n%s", strings.Join(append(args, pkgs...), " "), err, out)
	}
	return bins, nil
}

// ModuleRoot returns the directory of the go.mod of the current directory,
// as reported by `go env GOMOD`.
func ModuleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, goTool(), "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("go env GOMOD: not inside a Go module")
	}
	return filepath.Dir(gomod), nil
}

// goTool returns the go command: the one of the running toolchain's GOROOT
// if it exists (as under `go test`), else "go" on PATH.
func goTool() string {
	if root := os.Getenv("GOROOT"); root != "" {
		p := filepath.Join(root, "bin", "go")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return "go"
}

// hasGoFiles reports whether dir exists and holds a non-test .go file.
func hasGoFiles(dir string) (bool, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		n := e.Name()
		if !e.IsDir() && strings.HasSuffix(n, ".go") && !strings.HasSuffix(n, "_test.go") {
			return true, nil
		}
	}
	return false, nil
}
