package testdriver

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zkvstore/zkv/testdriver/cluster"
)

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0.0 ms"},
		{800 * time.Microsecond, "0.8 ms"},
		{2100 * time.Microsecond, "2.1 ms"},
		{9949 * time.Microsecond, "9.9 ms"},
		{10 * time.Millisecond, "10 ms"},
		{2113*time.Millisecond + 700*time.Microsecond, "2113 ms"},
		{9999 * time.Millisecond, "9999 ms"},
		{12345 * time.Millisecond, "12.3 s"},
		{-3 * time.Millisecond, "-3.0 ms"},
	}
	for _, tt := range tests {
		if got := FormatDuration(tt.d); got != tt.want {
			t.Errorf("FormatDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestWordsForPeople(t *testing.T) {
	tests := []struct {
		name, got, want string
	}{
		{"value", formatValue(true, "blue"), `"blue"`},
		{"quoted value", formatValue(true, "a \"b\"\n"), `"a \"b\"\n"`},
		{"empty value", formatValue(true, ""), `""`},
		{"missing", formatValue(false, "ignored"), "empty (found:false)"},
		{"no ids", cluster.JoinIDs(nil), "none"},
		{"one id", cluster.JoinIDs([]string{"n1"}), "n1"},
		{"two ids", cluster.JoinIDs([]string{"n1", "n2"}), "n1 and n2"},
		{"three ids", cluster.JoinIDs([]string{"n1", "n2", "n3"}), "n1, n2 and n3"},
		{"each of one", eachOf([]string{"n2"}), "n2"},
		{"each of two", eachOf([]string{"n2", "n3"}), "both n2 and n3"},
		{"each of three", eachOf([]string{"n1", "n2", "n3"}), "each of n1, n2 and n3"},
		{"plural one", plural(1, "poll"), "1 poll"},
		{"plural many", plural(3, "poll"), "3 polls"},
		{"plural none", plural(0, "key"), "0 keys"},
		{"one line", oneLine("a\n  b\tc "), "a b c"},
		{"signal", cluster.StopKill.Signal(), "SIGKILL"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

func TestParseScenarios(t *testing.T) {
	tests := []struct {
		in      string
		want    []string
		wantErr string
	}{
		{"", Scenarios(), ""},
		{"all", Scenarios(), ""},
		{"stale-read", []string{ScenarioStaleRead}, ""},
		{"stale-read,add-read", []string{ScenarioAddRead, ScenarioStaleRead}, ""},
		{" Leader-Election , add-read,,add-read", []string{ScenarioAddRead, ScenarioLeaderElection}, ""},
		{"add-read,nope", nil, `unknown scenario "nope"`},
	}
	for _, tt := range tests {
		got, err := ParseScenarios(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseScenarios(%q) error = %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("ParseScenarios(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestConfigDefaultsAndValidate(t *testing.T) {
	c := Config{SessionTimeout: 3 * time.Second}.withDefaults()
	if c.Kill != cluster.StopKill || c.Timeout != DefaultTimeout || c.ReadTimeout != DefaultReadTimeout ||
		c.FailoverTimeout != 3*time.Second+DefaultTimeout || c.SubjectPrefix != "kv" || len(c.Scenarios) != 4 || c.Logger == nil {
		t.Errorf("defaults: %+v", c)
	}
	if err := c.validate(); err != nil {
		t.Errorf("validate defaults: %v", err)
	}
	picked := Config{Scenarios: []string{ScenarioStaleRead, ScenarioAddRead, ScenarioStaleRead}}.withDefaults().Scenarios
	if !slices.Equal(picked, []string{ScenarioAddRead, ScenarioStaleRead}) {
		t.Errorf("scenarios %q: want the canonical order without duplicates", picked)
	}
	for _, bad := range []Config{
		{Scenarios: []string{"nope"}},
		{Kill: "sigstop"},
		{SubjectPrefix: "a b"},
	} {
		if err := bad.withDefaults().validate(); err == nil {
			t.Errorf("validate(%+v) = nil, want an error", bad)
		}
	}
}

func TestFailureReason(t *testing.T) {
	steps := []Step{{ID: "1.1", OK: true}, {ID: "1.4", OK: false}, {ID: "1.5", OK: false}}
	tests := []struct {
		name  string
		steps []Step
		err   error
		want  string
	}{
		{"no failed step", steps[:1], errors.New("boom"), "boom"},
		{"one failed step", steps[:2], errors.New("n2 returned x"), "[1.4] n2 returned x"},
		{"joined", steps, errors.Join(errors.New("a"), errors.New("b")), "[1.4, 1.5] a; b"},
	}
	for _, tt := range tests {
		if got := failureReason(tt.steps, tt.err); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
}

func sampleSummary() Summary {
	return Summary{
		Started:        time.Date(2025, 11, 25, 10, 30, 0, 0, time.UTC),
		Duration:       6200 * time.Millisecond,
		SessionTimeout: 2 * time.Second,
		Kill:           cluster.StopKill,
		Scenarios: []ScenarioResult{
			{Name: ScenarioAddRead, Result: Pass, Note: "leader n1 (epoch 1)", Duration: time.Second,
				Steps: []Step{{ID: "1.1", Action: "PUT", Text: "PUT color=blue via kv.write -> leader n1", OK: true, Duration: 2100 * time.Microsecond}}},
			{Name: ScenarioLeaderElection, Result: Pass, Note: "SIGKILL n1 -> n2",
				Failover: &Failover{Stop: cluster.StopKill, OldLeader: "n1", NewLeader: "n2", Leader: 2104 * time.Millisecond, Write: 2110 * time.Millisecond}},
			{Name: ScenarioStaleRead, Result: Skip, Note: "needs\nleader-election"},
		},
	}
}

func TestSummaryTable(t *testing.T) {
	s := sampleSummary()
	tests := []struct {
		name   string
		mutate func(*Summary)
		want   []string
	}{
		{"a skip is not a failure", func(*Summary) {}, []string{
			"SCENARIO         RESULT  FAILOVER  NOTES",
			"add-read         PASS    -         leader n1 (epoch 1)",
			"leader-election  PASS    2110 ms   SIGKILL n1 -> n2",
			"stale-read       SKIP    -         needs leader-election",
			"PASS: 2 passed, 0 failed, 1 skipped in 6200 ms",
		}},
		{"nothing passed", func(s *Summary) { s.Scenarios = s.Scenarios[2:] }, []string{
			"FAIL: 0 passed, 0 failed, 1 skipped",
		}},
		{"all pass", func(s *Summary) { s.Scenarios = s.Scenarios[:2] }, []string{
			"PASS: 2 passed, 0 failed, 0 skipped in 6200 ms",
		}},
		{"failed", func(s *Summary) { s.Scenarios[0].Result = Fail }, []string{
			"add-read         FAIL    -",
			"FAIL: 1 passed, 1 failed, 1 skipped",
		}},
		{"interrupted", func(s *Summary) { s.Scenarios = s.Scenarios[:2]; s.Error = "interrupted: context canceled" }, []string{
			"FAIL: 2 passed, 0 failed, 0 skipped",
			"the run did not complete: interrupted: context canceled",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := sampleSummary()
			s.Scenarios = slices.Clone(s.Scenarios)
			tt.mutate(&s)
			var b bytes.Buffer
			if err := s.WriteTable(&b); err != nil {
				t.Fatal(err)
			}
			for _, want := range tt.want {
				if !strings.Contains(b.String(), want) {
					t.Errorf("table lacks %q:\n%s", want, b.String())
				}
			}
		})
	}
	if !s.Passed() {
		t.Error("not Passed() with two passed and one skipped scenario")
	}
	if (Summary{}).Passed() {
		t.Error("Passed() with no scenario")
	}
}

func TestSummaryJSON(t *testing.T) {
	path := filepath.Join(t.TempDir(), SummaryName)
	if err := sampleSummary().WriteJSON(path); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte(`\u003e`)) {
		t.Errorf("summary escapes '>': %s", raw)
	}
	var got struct {
		DurationMS       float64 `json:"duration_ms"`
		SessionTimeoutMS float64 `json:"session_timeout_ms"`
		Scenarios        []struct {
			Name     string `json:"name"`
			Result   string `json:"result"`
			Failover *struct {
				LeaderMS float64 `json:"leader_ms"`
				WriteMS  float64 `json:"write_ms"`
			} `json:"failover"`
			Steps []struct {
				ID         string  `json:"id"`
				Text       string  `json:"text"`
				DurationMS float64 `json:"duration_ms"`
			} `json:"steps"`
		} `json:"scenarios"`
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatal(err)
	}
	if got.DurationMS != 6200 || got.SessionTimeoutMS != 2000 || len(got.Scenarios) != 3 {
		t.Fatalf("summary %s", raw)
	}
	if f := got.Scenarios[1].Failover; f == nil || f.LeaderMS != 2104 || f.WriteMS != 2110 {
		t.Errorf("failover %+v", f)
	}
	if st := got.Scenarios[0].Steps; len(st) != 1 || st[0].DurationMS != 2.1 || !strings.Contains(st[0].Text, "->") {
		t.Errorf("steps %+v", st)
	}
}

func TestUpInfoCommands(t *testing.T) {
	info := UpInfo{
		NATSURL:        "nats://127.0.0.1:4222",
		ZooKeeper:      "127.0.0.1:41234",
		SessionTimeout: 2 * time.Second,
		Leader:         "n1",
		KVCtl:          "bin/kvctl",
		Nodes: []cluster.LocalNode{
			{ID: "n1", PID: 101, HTTPAddr: "127.0.0.1:8001"},
			{ID: "n2", PID: 102, HTTPAddr: "127.0.0.1:8002"},
		},
	}
	want := []string{
		"bin/kvctl --nats nats://127.0.0.1:4222 put a 1",
		"bin/kvctl --nats nats://127.0.0.1:4222 get a --node n2",
		"bin/kvctl --nats nats://127.0.0.1:4222 status",
		`nats -s nats://127.0.0.1:4222 req kv.write '{"key":"a","value":"1"}'`,
		`nats -s nats://127.0.0.1:4222 req kv.node.n2.read '{"key":"a"}'`,
		"curl -X PUT --data-binary 1 http://127.0.0.1:8002/v1/kv/a",
		"curl http://127.0.0.1:8002/v1/kv/a",
		"/usr/share/zookeeper/bin/zkCli.sh -server 127.0.0.1:41234 ls /election",
		"kill -9 101",
		"kill 101",
	}
	var got []string
	for _, c := range info.Commands() {
		got = append(got, c.Line)
		if c.Kill != strings.HasPrefix(c.Line, "kill") {
			t.Errorf("%q: Kill = %v", c.Line, c.Kill)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("commands:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	var b bytes.Buffer
	if _, err := info.WriteTo(&b); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"leader n1", "n2      follower  102  http://127.0.0.1:8002/", "status page", "the NATS CLI", "Ctrl-C"} {
		if !strings.Contains(b.String(), s) {
			t.Errorf("info lacks %q:\n%s", s, b.String())
		}
	}
}

func TestUpInfoSecureHTTPCommands(t *testing.T) {
	info := UpInfo{
		NATSURL: "nats://127.0.0.1:4222", Leader: "n1", KVCtl: "bin/kvctl",
		Nodes: []cluster.LocalNode{{ID: "n1", PID: 101, HTTPAddr: "127.0.0.1:8001"}, {ID: "n2", PID: 102, HTTPAddr: "127.0.0.1:8002"}},
		HTTP: &UpHTTP{Dir: "/l/http", CA: "/l/http/ca.pem", AuthFile: "/l/http/users", Writer: "admin", WriterPasswordFile: "/l/http/admin.password",
			Reader: "reader", ReaderTokenFile: "/l/http/reader.token"},
	}
	want := []string{
		`curl -sS --fail-with-body --cacert /l/http/ca.pem -u admin:"$(cat /l/http/admin.password)" -X PUT --data-binary 1 https://127.0.0.1:8002/v1/kv/a`,
		`curl -sS --fail-with-body --cacert /l/http/ca.pem -H "Authorization: Bearer $(cat /l/http/reader.token)" https://127.0.0.1:8002/v1/kv/a`,
		`bin/kvctl --http https://127.0.0.1:8002 --http-ca /l/http/ca.pem --http-user admin --http-password "$(cat /l/http/admin.password)" get a`,
	}
	var got []string
	for _, c := range info.Commands() {
		if strings.Contains(c.Line, "https://") {
			got = append(got, c.Line)
		}
		if strings.Contains(c.Line, "http://") {
			t.Errorf("plain HTTP command with a secured API: %s", c.Line)
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("commands:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestRestartLine(t *testing.T) {
	n := cluster.LocalNode{ID: "n1", LogPath: "/l/n1.log",
		CommandLine: []string{"/b/kvserver", "--id", "n1", "--zookeeper", "127.0.0.1:41234", "--http-auth-file", "/l/my users"}}
	want := "/b/kvserver --id n1 --zookeeper 127.0.0.1:41234 --http-auth-file '/l/my users' >> /l/n1.log 2>&1 &"
	if got := RestartLine(n); got != want {
		t.Errorf("RestartLine = %q, want %q", got, want)
	}
}

func TestShellQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"bin/kvctl", "bin/kvctl"},
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"/my dir/kvctl", "'/my dir/kvctl'"},
		{`{"key":"a"}`, `'{"key":"a"}'`},
		{"it's", `'it'\''s'`},
	}
	for _, tt := range tests {
		if got := shellQuote(tt.in); got != tt.want {
			t.Errorf("shellQuote(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestCreateLogDir(t *testing.T) {
	root := filepath.Join(t.TempDir(), "logs")
	now := time.Date(2025, 11, 25, 10, 30, 0, 0, time.Local)
	var dirs []string
	for range 3 {
		d, err := CreateLogDir(root, now)
		if err != nil {
			t.Fatal(err)
		}
		out := d.Tee(&bytes.Buffer{})
		if _, err := out.Write([]byte("printed\n")); err != nil {
			t.Fatal(err)
		}
		d.Logger().Debug("debug line")
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		raw, err := os.ReadFile(d.File(DriverLogName))
		if err != nil || !strings.Contains(string(raw), "printed") || !strings.Contains(string(raw), "debug line") {
			t.Errorf("driver.log = %q, %v", raw, err)
		}
		dirs = append(dirs, filepath.Base(d.Path))
	}
	want := []string{"20251125-103000", "20251125-103000-2", "20251125-103000-3"}
	if !slices.Equal(dirs, want) {
		t.Errorf("dirs %q, want %q", dirs, want)
	}
}
