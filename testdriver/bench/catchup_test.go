package bench

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCatchUpEndToEnd runs a small catch-up study against a real
// ZooKeeper, NATS and three kvservers, twice into one report (the second
// appended), and checks what was measured and written, never how long
// anything took.
func TestCatchUpEndToEnd(t *testing.T) {
	ctx, bin := endToEnd(t)
	out := t.TempDir()
	if err := os.MkdirAll(filepath.Join(out, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := CatchUpConfig{Keys: 3000, ValueSize: 100, InFlight: 64, Writers: 2, Baseline: 300 * time.Millisecond, Timeout: time.Minute, Pagers: 2, KVServer: bin}
	for i, label := range []string{"first", "second"} {
		if err := CatchUpStudy(ctx, cfg, out, label, i > 0, true, "bench catchup (test) "+label); err != nil {
			t.Fatal(err)
		}
		if i == 0 { // notes written by hand after the marker survive a rerun
			f, err := os.OpenFile(filepath.Join(out, catchUpMD), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.WriteString("\nnotes by hand\n")
			if cerr := f.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	rows, err := readCatchUpCSV(filepath.Join(out, catchUpCSV))
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].Label != "first" || rows[1].Label != "second" {
		t.Fatalf("rows %+v", rows)
	}
	for _, r := range rows {
		if r.Result.Keys != 3000 || r.Result.Baseline <= 0 || r.Result.During <= 0 || r.Result.CatchUp <= 0 || r.Result.Pagers != 2 || r.Result.Pages == 0 {
			t.Errorf("run %s: %+v", r.Label, r.Result)
		}
	}
	md, err := os.ReadFile(filepath.Join(out, catchUpMD))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| first |", "| second |", "bench catchup (test) second", notesMarker + "\n\nnotes by hand\n"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
}
