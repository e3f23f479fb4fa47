package testenv

import (
	"log/slog"
	"testing"
)

// Logger returns a logger whose lines go to t.Log, at debug level, so a
// failing test shows what the code under test said.
func Logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// logWriter writes each line it gets to t.Log.
type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
