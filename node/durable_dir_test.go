package node

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/zkvstore/zkv/store"
)

// openTestData opens a data directory at dir for node n1 into a new store,
// and a Server holding just what the data directory code uses.
func openTestData(t *testing.T, dir string) *Server {
	t.Helper()
	cfg := Config{ID: "n1", DataDir: dir, Logger: slog.New(slog.DiscardHandler)}
	st := store.New()
	d, err := openData(cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{cfg: cfg, log: cfg.Logger, store: st, disk: d}
	t.Cleanup(s.closeData)
	return s
}

// write is the leader's write of key=value with a request ID, logged.
func (s *Server) testWrite(t *testing.T, key, value, id string) {
	t.Helper()
	if _, _, _, err, _, lerr := s.writeLogged(1, store.Write{Key: key, Value: value, RequestID: id, Leader: "n1"}); err != nil || lerr != nil {
		t.Fatal(err, lerr)
	}
}

// TestDataDirKeepsHolesAndRequestIDs: a copy that knows it lacks updates
// writes no snapshot (its position would claim them), and a hole that only
// a log record shows survives a restart; the request IDs a snapshot covers
// survive one too, so a retry is still applied once.
func TestDataDirKeepsHolesAndRequestIDs(t *testing.T) {
	dir := t.TempDir()
	s := openTestData(t, dir)
	if err := s.store.BeginEpoch(1, 0); err != nil {
		t.Fatal(err)
	}
	s.testWrite(t, "a", "1", "req-1")
	if err := s.snapshot("test"); err != nil {
		t.Fatal(err)
	}
	s.testWrite(t, "b", "2", "req-2")
	s.noteHole(true) // say, a copy of the leader's store begins
	if err := s.snapshot("test"); !errors.Is(err, errSnapshotHole) {
		t.Fatalf("snapshot of a copy with a hole: %v, want errSnapshotHole", err)
	}
	s.closeData()

	re := openTestData(t, dir)
	if re.store.Missed() == 0 || !re.store.Held().Diverged {
		t.Fatalf("after a restart: missed %d held %+v; the hole was lost", re.store.Missed(), re.store.Held())
	}
	for _, id := range []string{"req-1", "req-2"} {
		if _, ok := re.store.Request(id); !ok {
			t.Fatalf("after a restart %s is forgotten: a retry would be applied twice", id)
		}
	}
	if e, ok := re.store.Get("b"); !ok || e.Value != "2" {
		t.Fatalf("b after a restart: %+v %v", e, ok)
	}
}
