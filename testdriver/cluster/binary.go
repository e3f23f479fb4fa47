package cluster

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/zkvstore/zkv/internal/harness"
)

// Binary returns the path of the zkv program name ("kvserver", "kvctl"):
// explicit when set (it must exist); else name next to the running
// executable, where `make build` puts every program; else, when build is set, the module's commands built into a
// temporary directory that cleanup removes. cleanup is never nil.
func Binary(ctx context.Context, name, explicit string, build bool) (path string, cleanup func(), err error) {
	cleanup = func() {}
	if explicit != "" {
		if _, err := os.Stat(explicit); err != nil {
			return "", cleanup, fmt.Errorf("%s binary: %w", name, err)
		}
		abs, err := filepath.Abs(explicit)
		return abs, cleanup, err
	}
	next, nerr := besideExecutable(name)
	if nerr == nil || !build {
		return next, cleanup, nerr
	}
	bins, err := harness.BuildBinaries(ctx, "", "", false)
	if err != nil {
		if bins.Dir != "" {
			_ = os.RemoveAll(bins.Dir)
		}
		return "", cleanup, fmt.Errorf("%s binary: %w", name, err)
	}
	cleanup = func() { _ = os.RemoveAll(bins.Dir) }
	path = filepath.Join(bins.Dir, name)
	if _, err := os.Stat(path); err != nil {
		cleanup()
		return "", func() {}, fmt.Errorf("%s binary: not built: %w", name, err)
	}
	return path, cleanup, nil
}

// besideExecutable returns name in the directory of the running
// executable.
func besideExecutable(name string) (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("%s binary: locate this program: %w", name, err)
	}
	if resolved, err := filepath.EvalSymlinks(self); err == nil {
		self = resolved
	}
	path := filepath.Join(filepath.Dir(self), name)
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("%s binary: %s does not exist (run `make build`, or give its path)", name, path)
		}
		return "", fmt.Errorf("%s binary: %w", name, err)
	}
	return path, nil
}
