package natsnode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/nats-io/nats-server/v2/server"
)

// logger passes nats-server's log lines to slog, each with the server's
// own text as the message. Fatalf does not exit the process (nats-server's
// own logger would): it logs, and Start reports the error.
type logger struct {
	log *slog.Logger

	mu       sync.Mutex
	fatalErr error
}

func (l *logger) logf(level slog.Level, format string, v []any) {
	ctx := context.Background()
	if !l.log.Enabled(ctx, level) {
		return
	}
	l.log.Log(ctx, level, fmt.Sprintf(format, v...))
}

// fatal returns the first fatal error logged, or nil.
func (l *logger) fatal() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.fatalErr
}

// Noticef implements server.Logger.
func (l *logger) Noticef(format string, v ...any) { l.logf(slog.LevelInfo, format, v) }

// Warnf implements server.Logger.
func (l *logger) Warnf(format string, v ...any) { l.logf(slog.LevelWarn, format, v) }

// Fatalf implements server.Logger.
func (l *logger) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	l.mu.Lock()
	if l.fatalErr == nil {
		l.fatalErr = errors.New(msg)
	}
	l.mu.Unlock()
	l.log.Error(msg, "fatal", true)
}

// Errorf implements server.Logger.
func (l *logger) Errorf(format string, v ...any) { l.logf(slog.LevelError, format, v) }

// Debugf implements server.Logger.
func (l *logger) Debugf(format string, v ...any) { l.logf(slog.LevelDebug, format, v) }

// Tracef implements server.Logger.
func (l *logger) Tracef(format string, v ...any) { l.logf(slog.LevelDebug-4, format, v) }

var _ server.Logger = (*logger)(nil)
