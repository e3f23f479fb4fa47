package bench

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestLogField(t *testing.T) {
	line := `time=2026-12-01T06:08:39.460Z level=INFO msg="loaded data directory" node=n3 keys=20016 snapshot_took=20.148µs replay_took=221.153803ms took=221.174282ms`
	for _, tc := range []struct{ key, want string }{
		{"time", "2026-12-01T06:08:39.460Z"},
		{"msg", "loaded data directory"},
		{"keys", "20016"},
		{"took", "221.174282ms"},
		{"snapshot_took", "20.148µs"},
		{"missing", ""},
	} {
		if got := logField(line, tc.key); got != tc.want {
			t.Errorf("logField(%q) = %q, want %q", tc.key, got, tc.want)
		}
	}
	if got := logDuration(line, "replay_took"); got != 221153803*time.Nanosecond {
		t.Errorf("replay_took = %v", got)
	}
}

func TestDurableFieldsRoundTrip(t *testing.T) {
	in := DurableResult{
		Restart: RestartResult{Keys: 1000, ValueSize: 100, Load: 1500 * time.Millisecond, SnapshotBytes: 123, LogBytes: 456, Ready: 2 * time.Second, SnapshotKeys: 900, LogRecords: 100},
		CatchUp: DeltaResult{Writers: 8, Absence: 10 * time.Second, WriteRate: 1234.5, Missed: 12345, CaughtUp: 1500 * time.Millisecond, Path: "full copy", Updates: 7},
	}
	var b bytes.Buffer
	if err := writeDurableFields(&b, &in); err != nil {
		t.Fatal(err)
	}
	var out DurableResult
	if err := readDurableFields(strings.NewReader(b.String()), &out); err != nil {
		t.Fatal(err)
	}
	if out.Restart != in.Restart {
		t.Errorf("restart: got %+v, want %+v", out.Restart, in.Restart)
	}
	if out.CatchUp.Path != in.CatchUp.Path || out.CatchUp.Missed != in.CatchUp.Missed || out.CatchUp.CaughtUp != in.CatchUp.CaughtUp || out.CatchUp.WriteRate != in.CatchUp.WriteRate {
		t.Errorf("catch-up: got %+v, want %+v", out.CatchUp, in.CatchUp)
	}
	var rep bytes.Buffer
	WriteDurableReport(&rep, out, Meta{Commands: []string{"testdriver bench durable"}}, "")
	for _, want := range []string{"| restart to ready, 1000 keys × 100 B, ≤ 3s | 2.00 s | met |", "full copy", notesMarker} {
		if !strings.Contains(rep.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, rep.String())
		}
	}
}
