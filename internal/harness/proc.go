package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultStopGrace is how long Stop-style calls wait after SIGTERM before
// they send SIGKILL.
const DefaultStopGrace = 5 * time.Second

// tailBytes bounds the in-memory copy of a process's output and how much of
// a log file is read to show its tail.
const tailBytes = 64 << 10

// DefaultTailLines is the number of log lines put into errors about a
// process that failed.
const DefaultTailLines = 40

// procSpec describes how to start a child process.
type procSpec struct {
	path    string
	args    []string
	env     []string // appended to os.Environ()
	dir     string
	logPath string    // "" → no log file
	log     io.Writer // optional; used instead of logPath when set
}

// proc is one running incarnation of a child process. Its wait goroutine is
// the only caller of cmd.Wait; it stores the exit error and then closes done.
type proc struct {
	cmd     *exec.Cmd
	done    chan struct{}
	err     error // valid once done is closed
	logPath string
	tail    *ringBuffer // nil when the output goes only to logPath
	logFile *os.File
}

// startProc starts the process described by spec and its wait goroutine.
func startProc(spec procSpec) (*proc, error) {
	cmd := exec.Command(spec.path, spec.args...)
	cmd.Dir = spec.dir
	cmd.Env = append(os.Environ(), spec.env...)
	cmd.SysProcAttr = sysProcAttr()
	// If the child leaves a grandchild holding its output pipe, do not let
	// Wait block forever on copying it.
	cmd.WaitDelay = 2 * time.Second

	p := &proc{cmd: cmd, done: make(chan struct{})}
	switch {
	case spec.log != nil:
		p.tail = newRingBuffer(tailBytes)
		w := io.MultiWriter(spec.log, p.tail)
		cmd.Stdout, cmd.Stderr = w, w
	case spec.logPath != "":
		f, err := os.OpenFile(spec.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("open log: %w", err)
		}
		p.logFile, p.logPath = f, spec.logPath
		cmd.Stdout, cmd.Stderr = f, f
	default:
		p.tail = newRingBuffer(tailBytes)
		cmd.Stdout, cmd.Stderr = p.tail, p.tail
	}
	if err := cmd.Start(); err != nil {
		if p.logFile != nil {
			p.logFile.Close()
		}
		return nil, fmt.Errorf("start %s: %w", spec.path, err)
	}
	go func() {
		p.err = cmd.Wait()
		if p.logFile != nil {
			p.logFile.Close()
		}
		close(p.done)
	}()
	return p, nil
}

// pid is the process ID.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// exited reports whether the process has exited and been reaped.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// exitErr is the error of cmd.Wait, or nil while the process runs.
func (p *proc) exitErr() error {
	if !p.exited() {
		return nil
	}
	return p.err
}

// signal sends sig to the process by PID. Signalling a process that has
// already exited is not an error.
func (p *proc) signal(sig os.Signal) error {
	if p.exited() {
		return nil
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("signal %v to pid %d: %w", sig, p.pid(), err)
	}
	return nil
}

// kill sends SIGKILL and waits until the process has been reaped.
func (p *proc) kill() error {
	if err := p.signal(syscall.SIGKILL); err != nil {
		return err
	}
	<-p.done
	return nil
}

// terminate sends SIGTERM (and SIGCONT, in case the process is paused) and
// waits for the exit. If the process is still running after grace, or when
// ctx ends, it sends SIGKILL and waits for the exit. It returns the exit
// error of the process, or ctx's error or a grace timeout error if SIGKILL
// had to be used.
func (p *proc) terminate(ctx context.Context, grace time.Duration) error {
	if p.exited() {
		return p.err
	}
	if err := p.signal(syscall.SIGTERM); err != nil {
		return err
	}
	_ = p.signal(syscall.SIGCONT)
	timer := time.NewTimer(grace)
	defer timer.Stop()
	var why error
	select {
	case <-p.done:
		return p.err
	case <-timer.C:
		why = fmt.Errorf("pid %d still running %v after SIGTERM, sent SIGKILL", p.pid(), grace)
	case <-ctx.Done():
		why = fmt.Errorf("pid %d: sent SIGKILL: %w", p.pid(), ctx.Err())
	}
	if err := p.kill(); err != nil {
		return errors.Join(why, err)
	}
	return why
}

// logTail returns the last n lines of the process's output.
func (p *proc) logTail(n int) string {
	if p.tail != nil {
		return lastLines(p.tail.Bytes(), n)
	}
	return TailFile(p.logPath, n)
}

// exitedByOurSignal reports whether err (from cmd.Wait) describes an exit
// caused by SIGTERM, SIGINT or SIGKILL, including the 128+signal exit codes
// that the JVM uses after running its shutdown hooks.
func exitedByOurSignal(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	if !ok {
		return false
	}
	if ws.Signaled() {
		switch ws.Signal() {
		case syscall.SIGTERM, syscall.SIGINT, syscall.SIGKILL:
			return true
		}
		return false
	}
	switch ws.ExitStatus() {
	case 128 + int(syscall.SIGTERM), 128 + int(syscall.SIGINT), 128 + int(syscall.SIGKILL):
		return true
	}
	return false
}

// TailFile returns the last n lines of the file at path, or a short note
// saying why it could not be read. It never fails, so its result can go
// straight into an error message or a test log.
func TailFile(path string, n int) string {
	if path == "" {
		return "(no log file)"
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	off := st.Size() - tailBytes
	if off < 0 {
		off = 0
	}
	buf := make([]byte, st.Size()-off)
	if _, err := f.ReadAt(buf, off); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Sprintf("(cannot read log: %v)", err)
	}
	return lastLines(buf, n)
}

// lastLines returns the last n lines of b.
func lastLines(b []byte, n int) string {
	b = bytes.TrimRight(b, "\n")
	if len(b) == 0 {
		return "(log is empty)"
	}
	if n <= 0 {
		n = DefaultTailLines
	}
	i := len(b)
	for ; n > 0 && i > 0; n-- {
		j := bytes.LastIndexByte(b[:i], '\n')
		if j < 0 {
			i = 0
			break
		}
		i = j
	}
	if i > 0 {
		i++ // skip the newline itself
	}
	return string(b[i:])
}

// withTail formats an error about a process together with the tail of its
// log, indented so that it stands out in test output.
func withTail(err error, tail string) error {
	return fmt.Errorf("%w\n--- log tail ---\n%s\n--- end of log tail ---", err, indent(tail))
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(s, "\n", "\n    ")
}

// ringBuffer keeps the last max bytes written to it. It is safe for
// concurrent use.
type ringBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func newRingBuffer(max int) *ringBuffer { return &ringBuffer{max: max} }

// Write implements io.Writer.
func (r *ringBuffer) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.buf = append(r.buf, p...)
	if over := len(r.buf) - r.max; over > 0 {
		r.buf = append(r.buf[:0], r.buf[over:]...)
	}
	return len(p), nil
}

// Bytes returns a copy of the kept bytes.
func (r *ringBuffer) Bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.buf)
}

// LogMux shares one io.Writer among the output of several processes: each
// writer returned by Writer puts its prefix in front of every line and
// passes only whole lines on, one at a time, so that lines of different
// processes never interleave.
type LogMux struct {
	mu sync.Mutex
	w  io.Writer
}

// NewLogMux returns a LogMux writing to w.
func NewLogMux(w io.Writer) *LogMux { return &LogMux{w: w} }

// Writer returns a writer whose lines go to the shared writer with prefix
// in front. A last line without a newline is held back until its newline
// arrives.
func (m *LogMux) Writer(prefix string) io.Writer { return &prefixWriter{mux: m, prefix: prefix} }

func (m *LogMux) write(b []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, err := m.w.Write(b)
	return err
}

// prefixWriter is the writer of one process of a LogMux.
type prefixWriter struct {
	mux    *LogMux
	prefix string
	mu     sync.Mutex
	rest   []byte // an incomplete last line
}

// Write implements io.Writer.
func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rest = append(p.rest, b...)
	for {
		i := bytes.IndexByte(p.rest, '\n')
		if i < 0 {
			break
		}
		line := make([]byte, 0, len(p.prefix)+i+1)
		line = append(append(line, p.prefix...), p.rest[:i+1]...)
		p.rest = p.rest[i+1:]
		if err := p.mux.write(line); err != nil {
			return len(b), err
		}
	}
	return len(b), nil
}
