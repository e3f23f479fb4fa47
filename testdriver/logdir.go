package testdriver

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// DefaultLogRoot is the directory, relative to the working directory,
// under which each run gets its own log directory.
const DefaultLogRoot = "logs"

// Names of the files in a log directory.
const (
	DriverLogName = "driver.log"
	SummaryName   = "summary.json"
)

// LogDir is the log directory of one run: <root>/<timestamp>. It holds
// driver.log (everything printed, plus debug logs), summary.json and the
// logs of the processes the run starts.
type LogDir struct {
	// Path is the directory, as created (relative when root was).
	Path string

	file *os.File
	mu   sync.Mutex // serialises writes to file
}

// CreateLogDir creates root/<YYYYMMDD-hhmmss of now>, adding "-2", "-3"
// and so on if that exists, and opens driver.log in it.
func CreateLogDir(root string, now time.Time) (*LogDir, error) {
	path, err := createStamped(root, now)
	if err != nil {
		return nil, err
	}
	return OpenLogDir(path)
}

// OpenLogDir uses path as a log directory: it creates it if needed and
// driver.log in it (truncating an existing one).
func OpenLogDir(path string) (*LogDir, error) {
	if err := os.MkdirAll(path, 0o755); err != nil {
		return nil, fmt.Errorf("log dir: %w", err)
	}
	f, err := os.Create(filepath.Join(path, DriverLogName))
	if err != nil {
		return nil, fmt.Errorf("log dir: %w", err)
	}
	return &LogDir{Path: path, file: f}, nil
}

// openRunLogDir opens the log directory of one run: exact itself when
// set, else a new root/<timestamp of now>, or its subdirectory sub when
// sub is set.
func openRunLogDir(exact, root, sub string, now time.Time) (*LogDir, error) {
	if exact != "" {
		return OpenLogDir(exact)
	}
	path, err := createStamped(root, now)
	if err != nil {
		return nil, err
	}
	if sub != "" {
		path = filepath.Join(path, sub)
	}
	return OpenLogDir(path)
}

// createStamped creates root/<YYYYMMDD-hhmmss of now>, adding "-2", "-3"
// and so on if that exists, and returns its path.
func createStamped(root string, now time.Time) (string, error) {
	if root == "" {
		root = DefaultLogRoot
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("log dir: %w", err)
	}
	base := filepath.Join(root, now.Format("20060102-150405"))
	path := base
	for i := 2; ; i++ {
		err := os.Mkdir(path, 0o755)
		if err == nil {
			return path, nil
		}
		if !errors.Is(err, fs.ErrExist) || i > 100 {
			return "", fmt.Errorf("log dir: %w", err)
		}
		path = base + "-" + strconv.Itoa(i)
	}
}

// File returns the path of name in the directory.
func (d *LogDir) File(name string) string { return filepath.Join(d.Path, name) }

// Write appends p to driver.log. It is safe for concurrent use.
func (d *LogDir) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.file.Write(p)
}

// Tee returns a writer that copies everything to driver.log and to w. It
// is safe for concurrent use; a failing w does not stop driver.log.
func (d *LogDir) Tee(w io.Writer) io.Writer { return &teeWriter{dir: d, w: w} }

// Logger returns a logger writing debug and above to driver.log.
func (d *LogDir) Logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(d, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Close closes driver.log.
func (d *LogDir) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.file.Close()
}

// teeWriter writes to a LogDir's driver.log and to another writer.
type teeWriter struct {
	mu  sync.Mutex
	dir *LogDir
	w   io.Writer
}

// Write implements io.Writer.
func (t *teeWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ferr := t.dir.Write(p)
	n, err := t.w.Write(p)
	if err != nil {
		return n, err
	}
	return len(p), ferr
}

// lockedWriter serialises writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

// Write implements io.Writer.
func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
