package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
	"github.com/urfave/cli/v2"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/client"
	"github.com/zkvstore/zkv/internal/cliflags"
	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/internal/httpauth"
	"github.com/zkvstore/zkv/internal/testenv"
)

func TestFormatPut(t *testing.T) {
	tests := []struct {
		r    bus.WriteReply
		want string
	}{
		{bus.WriteReply{OK: true, Key: "a", Revision: 12, Epoch: 3, Leader: "n1"}, "OK a revision=12 epoch=3 leader=n1"},
		{bus.WriteReply{OK: true, Key: "a b", Revision: 1, Epoch: 1}, `OK "a b" revision=1 epoch=1 leader=-`},
		{bus.WriteReply{OK: true, Op: bus.OpDelete, Deleted: true, Key: "a", Revision: 13, Epoch: 3, Leader: "n1"}, "OK a revision=13 epoch=3 leader=n1 deleted"},
		{bus.WriteReply{OK: true, Op: bus.OpDelete, Key: "a", Revision: 13, Epoch: 3, Leader: "n1"}, "OK a revision=13 epoch=3 leader=n1 (not found: nothing deleted)"},
		{bus.WriteReply{OK: true, Op: bus.OpCreate, Key: "a", Revision: 14, Epoch: 3, Leader: "n1"}, "OK a revision=14 epoch=3 leader=n1 created"},
		{bus.WriteReply{OK: true, Key: "a", Revision: 15, Epoch: 3, Leader: "n1", Expires: 1764064451123}, "OK a revision=15 epoch=3 leader=n1 expires=2025-11-25T09:54:11.123Z"},
		{bus.WriteReply{OK: true, Op: bus.OpDelete, Deleted: true, Count: 2, Key: "a/", Revision: 16, Epoch: 3, Leader: "n1"}, "OK a/ revision=16 epoch=3 leader=n1 deleted 2 keys"},
		{bus.WriteReply{OK: true, Op: bus.OpPurge, Deleted: true, Key: "a", Revision: 17, Epoch: 3, Leader: "n1"}, "OK a revision=17 epoch=3 leader=n1 purged"},
		{bus.WriteReply{OK: true, Op: bus.OpPurge, Key: "a", Revision: 17, Epoch: 3, Leader: "n1"}, "OK a revision=17 epoch=3 leader=n1 (not found: nothing purged)"},
		{bus.WriteReply{OK: true, Op: bus.OpCompact, Compacted: 12, Revision: 18, Epoch: 3, Leader: "n1"}, "OK revision=18 epoch=3 leader=n1 compacted below revision 12"},
		{bus.WriteReply{OK: true, Op: bus.OpCompact, Revision: 18, Epoch: 3, Leader: "n1"}, "OK revision=18 epoch=3 leader=n1 (nothing to compact)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := formatPut(tt.r); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFormatUpdate(t *testing.T) {
	tests := []struct {
		u    bus.Update
		want string
	}{
		{bus.Update{Kind: bus.KindPut, Epoch: 3, Seq: 12, Key: "a", Value: "1"}, "epoch=3 seq=12 a=1"},
		{bus.Update{Kind: bus.KindPut, Epoch: 3, Seq: 13, Key: "a", Value: ""}, `epoch=3 seq=13 a=""`},
		{bus.Update{Kind: bus.KindPut, Epoch: 3, Seq: 14, Key: "k=v", Value: "two words"}, `epoch=3 seq=14 "k=v"="two words"`},
		{bus.Update{Kind: bus.KindPut, Epoch: 3, Seq: 15, Key: "clé", Value: "line\nbreak"}, `epoch=3 seq=15 clé="line\nbreak"`},
		{bus.Update{Kind: bus.KindEpoch, Epoch: 4, Seq: 15, Leader: "n2"}, "epoch=4 seq=15 leader=n2 (new epoch)"},
		{bus.Update{Kind: bus.KindDelete, Epoch: 4, Seq: 16, Key: "a"}, "epoch=4 seq=16 a (deleted)"},
		{bus.Update{Kind: bus.KindDelete, Epoch: 4, Seq: 17, Key: "a/", Prefix: true}, "epoch=4 seq=17 a/ (deleted by prefix)"},
		{bus.Update{Kind: bus.KindDelete, Epoch: 4, Seq: 18, Key: "t", Expired: true}, "epoch=4 seq=18 t (expired)"},
		{bus.Update{Kind: bus.KindPurge, Epoch: 4, Seq: 19, Key: "a"}, "epoch=4 seq=19 a (purged)"},
		{bus.Update{Kind: bus.KindPut, Epoch: 4, Seq: 20, Key: "t", Value: "1", Expires: 1764064451123456789}, "epoch=4 seq=20 t=1 (expires 2025-11-25T09:54:11.123Z)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := formatUpdate(tt.u); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWriteStatusTable(t *testing.T) {
	tests := []struct {
		name     string
		statuses []bus.Status
		want     string
	}{
		{
			name: "empty",
			want: "NODE  ROLE  EPOCH  LEADER  APPLIED  LEADER_REV  KEYS  STALE  BEHIND  READY  ZOOKEEPER  NATS\n",
		},
		{
			name: "cluster with an unreachable node",
			statuses: []bus.Status{
				{Node: "n1", Role: bus.RoleLeader, Epoch: 3, Leader: "n1", AppliedSeq: 12, AppliedRevision: 12, Keys: 4, LostRevisions: 7, Ready: true, ZooKeeper: "connected", NATS: "connected"},
				{Node: "n2", Role: client.RoleUnreachable},
				{Node: "n3", Role: bus.RoleFollower, Epoch: 3, Leader: "n1", AppliedSeq: 11, AppliedRevision: 11, Keys: 4, Stale: true, BehindRecord: 1, Ready: true, ZooKeeper: "connected", NATS: "connected"},
				{Node: "n4", Role: bus.RoleCandidate},
				// Restarted empty: placed at the leader's revision, it applied none.
				{Node: "n5", Role: bus.RoleFollower, Epoch: 3, Leader: "n1", AppliedSeq: 12, Stale: true, Ready: true, ZooKeeper: "connected", NATS: "connected"},
				// Names a leader that is not in the table.
				{Node: "n6", Role: bus.RoleFollower, Epoch: 2, Leader: "n9", AppliedSeq: 5, AppliedRevision: 5, Keys: 2},
			},
			want: "" +
				"NODE  ROLE         EPOCH  LEADER  APPLIED  LEADER_REV  KEYS  STALE  BEHIND  READY  ZOOKEEPER  NATS\n" +
				"n1    leader       3      n1      12       12          4     no     lost 7  yes    connected  connected\n" +
				"n2    unreachable  -      -       -        -           -     -      -       -      -          -\n" +
				"n3    follower     3      n1      11       12          4     yes    1       yes    connected  connected\n" +
				"n4    candidate    0      -       0        -           0     no     0       no     -          -\n" +
				"n5    follower     3      n1      0        12          0     yes    0       yes    connected  connected\n" +
				"n6    follower     2      n9      5        -           2     no     0       no     -          -\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := writeStatusTable(&b, tt.statuses); err != nil {
				t.Fatal(err)
			}
			if b.String() != tt.want {
				t.Errorf("got\n%s\nwant\n%s", b.String(), tt.want)
			}
		})
	}
}

func TestQuote(t *testing.T) {
	tests := []struct{ in, want string }{
		{"a", "a"},
		{"users/42", "users/42"},
		{"日本", "日本"},
		{"", `""`},
		{"a b", `"a b"`},
		{"a=b", `"a=b"`},
		{`say "hi"`, `"say \"hi\""`},
		{"tab\t", `"tab\t"`},
		{"\x00", `"\x00"`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			if got := quote(tt.in); got != tt.want {
				t.Errorf("quote(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestErrorLine(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"wire error", bus.Errorf(bus.CodeNotLeader, "n2 is a follower"), "error: not_leader: n2 is a follower"},
		{"wrapped wire error", fmt.Errorf("kv.write: %w", bus.Errorf(bus.CodeValueTooLarge, "too big")), "error: value_too_large: too big"},
		{"sentinel", fmt.Errorf("%w: nobody answered on kv.write", bus.ErrNoLeader), "error: no_leader: no leader: nobody answered on kv.write"},
		{"internal sentinel", fmt.Errorf("%w: oops", bus.ErrInternal), "error: internal: internal error: oops"},
		{"plain", errors.New("connect: refused"), "error: connect: refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errorLine(tt.err); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		want       int
		wantStderr string
	}{
		{"nil", nil, ExitOK, ""},
		{"exit error", cli.Exit("error: x", ExitError), ExitError, "error: x\n"},
		{"silent exit", cli.Exit("", ExitUsage), ExitUsage, ""},
		{"not found", cli.Exit("kvctl: key \"a\" not found", ExitNotFound), ExitNotFound, "kvctl: key \"a\" not found\n"},
		{"other error", errors.New("boom"), ExitError, "error: boom\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if got := exitCode(tt.err, &stderr); got != tt.want {
				t.Errorf("exit code %d, want %d", got, tt.want)
			}
			if stderr.String() != tt.wantStderr {
				t.Errorf("stderr %q, want %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}

func TestHoistFlags(t *testing.T) {
	app := newApp(nil, nil)
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"kvctl"}, []string{"kvctl"}},
		{[]string{"kvctl", "--json"}, []string{"kvctl", "--json"}},
		{[]string{"kvctl", "status"}, []string{"kvctl", "status"}},
		{[]string{"kvctl", "put", "a", "1"}, []string{"kvctl", "put", "--", "a", "1"}},
		{[]string{"kvctl", "put", "a", "1", "--node", "n2"}, []string{"kvctl", "put", "--node", "n2", "--", "a", "1"}},
		{[]string{"kvctl", "put", "a", "--node=n2", "1"}, []string{"kvctl", "put", "--node=n2", "--", "a", "1"}},
		{[]string{"kvctl", "get", "a", "--json", "--timeout", "1s"}, []string{"kvctl", "--json", "--timeout", "1s", "get", "--", "a"}},
		{[]string{"kvctl", "--nats", "nats://x:1", "get", "--node", "n1", "a"}, []string{"kvctl", "--nats", "nats://x:1", "get", "--node", "n1", "--", "a"}},
		{[]string{"kvctl", "put", "--", "-k", "--node"}, []string{"kvctl", "put", "--", "-k", "--node"}},
		{[]string{"kvctl", "put", "a", "--bogus", "1"}, []string{"kvctl", "put", "--bogus", "--", "a", "1"}},
		{[]string{"kvctl", "get", "-", "-h"}, []string{"kvctl", "get", "-h", "--", "-"}},
		{[]string{"kvctl", "nosuch", "--json"}, []string{"kvctl", "nosuch", "--json"}},
		{[]string{"kvctl", "--", "put"}, []string{"kvctl", "--", "put"}},
		{[]string{"kvctl", "watch", "--json"}, []string{"kvctl", "--json", "watch"}},
		{[]string{"kvctl", "snapshot", "restore", "f", "--id", "n1", "--json"}, []string{"kvctl", "--json", "snapshot", "restore", "--id", "n1", "--", "f"}},
		{[]string{"kvctl", "snapshot"}, []string{"kvctl", "snapshot"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			if got := hoistFlags(app, tt.args); !slices.Equal(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestUsageErrors runs command lines that fail before any connection.
func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"no command", nil},
		{"unknown command", []string{"frob"}},
		{"unknown flag", []string{"put", "a", "1", "--bogus"}},
		{"unknown global flag", []string{"--bogus", "status"}},
		{"put without value", []string{"put", "a"}},
		{"put with three args", []string{"put", "a", "1", "2"}},
		{"get without key", []string{"get"}},
		{"get with two keys", []string{"get", "a", "b"}},
		{"status with an arg", []string{"status", "x"}},
		{"watch with two keys", []string{"watch", "a", "b"}},
		{"ls with two prefixes", []string{"ls", "a", "b"}},
		{"ls with a negative limit", []string{"ls", "a", "--limit", "-1"}},
		{"ls with a control character", []string{"ls", "a\x01"}},
		{"bad node", []string{"get", "a", "--node", "n.*"}},
		{"bad prefix", []string{"--subject-prefix", "kv.>", "get", "a"}},
		{"bad timeout", []string{"--timeout", "soon", "get", "a"}},
		{"zero timeout", []string{"--timeout", "0s", "get", "a"}},
		{"put with value and file", []string{"put", "a", "1", "--file", "go.mod"}},
		{"put with file and no key", []string{"put", "-f", "go.mod"}},
		{"put with a missing file", []string{"put", "a", "--file", "no-such-file"}},
		{"completion without shell", []string{"completion"}},
		{"compact without a bound", []string{"compact"}},
		{"compact with both bounds", []string{"compact", "--rev", "3", "--age", "1h"}},
		{"compact with an argument", []string{"compact", "3"}},
		{"history without key", []string{"history"}},
		{"history with a big limit", []string{"history", "a", "--limit", "65"}},
		{"purge without key", []string{"purge"}},
		{"put with a tiny ttl", []string{"put", "a", "1", "--ttl", "1us"}},
		{"watch with a control character", []string{"watch", "a\x01"}},
		{"completion of an unknown shell", []string{"completion", "fish"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"kvctl", "--nats", "nats://127.0.0.1:1"}, tt.args...)
			if got := run(t.Context(), args, strings.NewReader(""), &stdout, &stderr); got != ExitUsage {
				t.Errorf("exit code %d, want %d; stderr %q", got, ExitUsage, stderr.String())
			}
			if stderr.Len() == 0 && stdout.Len() == 0 {
				t.Error("no message for a usage error")
			}
		})
	}
}

// runServer starts an embedded NATS server on a free local port.
func runServer(t *testing.T) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// TestCommands runs kvctl against fake nodes on a real NATS server.
func TestCommands(t *testing.T) {
	s := runServer(t)
	nc, err := nats.Connect(s.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	subj := bus.Subjects{}
	reply := func(subject string, body []byte) {
		sub, err := nc.Subscribe(subject, func(m *nats.Msg) { _ = m.Respond(body) })
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = sub.Unsubscribe() })
	}
	reply(subj.Write(), bus.Encode(bus.WriteReply{OK: true, Key: "a", Revision: 12, Epoch: 3, Leader: "n1"}))
	reply(subj.NodeWrite("n2"), bus.EncodeError(bus.Errorf(bus.CodeValueTooLarge, "value is too large")))
	reply(subj.Read(), bus.Encode(bus.ReadReply{Found: true, Key: "a", Value: "hello world", Revision: 12, Node: "n1", Role: bus.RoleLeader, Epoch: 3}))
	reply(subj.NodeRead("n2"), bus.Encode(bus.ReadReply{Key: "a", Node: "n2", Role: bus.RoleFollower, Epoch: 3}))
	reply(subj.NodeStatus("n1"), bus.Encode(bus.Status{Node: "n1", Role: bus.RoleLeader, Epoch: 3, Leader: "n1", AppliedSeq: 12, AppliedRevision: 12, Keys: 1, ZooKeeper: "connected", NATS: "connected"}))
	for _, id := range []string{"n1", "n2"} {
		svc, err := micro.AddService(nc, micro.Config{Name: bus.NodeServiceName, Version: "1.0.0", Metadata: map[string]string{"node": id}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = svc.Stop() })
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		args       []string
		wantCode   int
		wantStdout string
		wantStderr string // a substring
	}{
		{"put", []string{"put", "a", "1"}, ExitOK, "OK a revision=12 epoch=3 leader=n1\n", ""},
		{"put json", []string{"put", "a", "1", "--json"}, ExitOK, `{"ok":true,"key":"a","revision":12,"epoch":3,"leader":"n1"}` + "\n", ""},
		{"put via node with error", []string{"put", "a", "1", "--node", "n2"}, ExitError, "", "error: value_too_large: value is too large"},
		{"get", []string{"get", "a"}, ExitOK, "hello world\n", "kvctl: n1 (leader, epoch 3, stale: no) answered: revision 12\n"},
		{"get not found", []string{"get", "a", "--node", "n2"}, ExitNotFound, "", `key "a" not found on n2`},
		{"get not found json", []string{"--json", "get", "--node", "n2", "a"}, ExitNotFound, `{"found":false,"key":"a","node":"n2","role":"follower","epoch":3}` + "\n", "not found"},
		{"get invalid key", []string{"get", "--", "a\nb"}, ExitError, "", "error: invalid_key:"},
		{
			"status", []string{"status"}, ExitError,
			"NODE  ROLE         EPOCH  LEADER  APPLIED  LEADER_REV  KEYS  STALE  BEHIND  READY  ZOOKEEPER  NATS\n" +
				"n1    leader       3      n1      12       12          1     no     0       no     connected  connected\n" +
				"n2    unreachable  -      -       -        -           -     -      -       -      -          -\n",
			"error: unavailable:",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			args := append([]string{"kvctl", "--nats", s.ClientURL(), "--timeout", "3s"}, tt.args...)
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			if got := run(ctx, args, strings.NewReader(""), &stdout, &stderr); got != tt.wantCode {
				t.Errorf("exit code %d, want %d; stderr %q", got, tt.wantCode, stderr.String())
			}
			if stdout.String() != tt.wantStdout {
				t.Errorf("stdout %q, want %q", stdout.String(), tt.wantStdout)
			}
			if !strings.Contains(stderr.String(), tt.wantStderr) {
				t.Errorf("stderr %q does not contain %q", stderr.String(), tt.wantStderr)
			}
		})
	}
}

func TestAuthHash(t *testing.T) {
	tests := []struct {
		name, stdin string
		args        []string
		wantCode    int
		wantPrefix  string
	}{
		{"password", "a-good-password\n", []string{"auth", "hash", "--role", "readwrite", "alice"}, ExitOK, "alice readwrite bcrypt:$2a$"},
		{"default role", "a-good-password", []string{"auth", "hash", "bob"}, ExitOK, "bob read bcrypt:"},
		{"token", "0123456789abcdef0123456789\n", []string{"auth", "hash", "--token", "ci"}, ExitOK, "ci read sha256:"},
		{"short token", "short-token\n", []string{"auth", "hash", "--token", "ci"}, ExitError, ""},
		{"no secret", "", []string{"auth", "hash", "ci"}, ExitError, ""},
		{"bad role", "a-good-password\n", []string{"auth", "hash", "--role", "admin", "ci"}, ExitUsage, ""},
		{"bad name", "a-good-password\n", []string{"auth", "hash", "a:b"}, ExitUsage, ""},
		{"no name", "a-good-password\n", []string{"auth", "hash"}, ExitUsage, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), append([]string{"kvctl"}, tt.args...), strings.NewReader(tt.stdin), &stdout, &stderr)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d; stderr %q", code, tt.wantCode, stderr.String())
			}
			if !strings.HasPrefix(stdout.String(), tt.wantPrefix) {
				t.Errorf("stdout %q, want prefix %q", stdout.String(), tt.wantPrefix)
			}
			if tt.wantCode == ExitOK {
				if _, err := httpauth.Parse(strings.NewReader(stdout.String())); err != nil {
					t.Errorf("the line does not parse: %v", err)
				}
			}
			if strings.Contains(stdout.String()+stderr.String(), strings.TrimSpace(tt.stdin)) && tt.stdin != "" {
				t.Error("the secret was printed")
			}
		})
	}
}

func TestHTTPOptionsChecked(t *testing.T) {
	for _, o := range []httpOptions{
		{url: "127.0.0.1:8001"},
		{url: "ftp://x"},
		{url: "https://h:1", token: "t", user: "u", password: "p"},
		{url: "https://h:1", user: "u"},
		{url: "https://h:1", cert: "c"},
		{url: "http://h:1", ca: "/nonexistent"},
	} {
		if _, err := newHTTPAPI(o); err == nil {
			t.Errorf("newHTTPAPI(%+v) succeeded", o)
		}
	}
	if _, err := newHTTPAPI(httpOptions{url: "https://127.0.0.1:8001/", token: "t"}); err != nil {
		t.Errorf("a good URL: %v", err)
	}
}

// TestPutValueTooLarge: a value over bus.MaxValueBytes on standard input
// or in --file is refused with the server's code before any connection,
// reading no more than the limit.
func TestPutValueTooLarge(t *testing.T) {
	big := strings.Repeat("x", 2<<20)
	file := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(file, []byte(big), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"put", "a", "-"}, {"put", "a", "--file", file}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), append([]string{"kvctl", "--nats", "nats://127.0.0.1:1"}, args...), strings.NewReader(big), &stdout, &stderr)
			if code != ExitError || !strings.Contains(stderr.String(), "error: value_too_large: ") {
				t.Errorf("exit code %d, stderr %q; want %d and value_too_large", code, stderr.String(), ExitError)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"kvctl", "--version"}, nil, &stdout, &stderr); code != ExitOK {
		t.Fatalf("exit code %d; stderr %q", code, stderr.String())
	}
	if want := "kvctl version " + cliflags.Version() + "\n"; stdout.String() != want {
		t.Errorf("stdout %q, want %q", stdout.String(), want)
	}
}

func TestCompletion(t *testing.T) {
	tests := []struct {
		args []string
		want []string // lines of stdout, or substrings of the script
	}{
		{[]string{"completion", "bash"}, []string{"complete -o bashdefault -o default -F _kvctl_complete kvctl", "--generate-bash-completion"}},
		{[]string{"completion", "zsh"}, []string{"#compdef kvctl", "compdef _kvctl_complete kvctl", "--generate-bash-completion"}},
		{[]string{"completion", "--generate-bash-completion"}, []string{"bash\nzsh\n"}},
		{[]string{"--generate-bash-completion"}, []string{"put\n", "get\n", "status\n", "watch\n", "auth\n", "completion\n"}},
		{[]string{"put", "a", "--f", "--generate-bash-completion"}, []string{"--file\n"}},
		{[]string{"get", "--c", "--generate-bash-completion"}, []string{"--consistency\n"}},
		{[]string{"--nats", "nats://127.0.0.1:1", "put", "a", "--", "--generate-bash-completion"}, nil}, // not run as a put
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			args := append([]string{"kvctl"}, tt.args...)
			// cli's completion reads the word before the request from
			// os.Args, not from the arguments given to Run.
			defer func(saved []string) { os.Args = saved }(os.Args)
			os.Args = args
			var stdout, stderr bytes.Buffer
			if code := run(t.Context(), args, nil, &stdout, &stderr); code != ExitOK {
				t.Fatalf("exit code %d; stderr %q", code, stderr.String())
			}
			if tt.want == nil && stdout.Len() > 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout.String())
				}
			}
		})
	}
}

// TestPutValueRoundTrip writes values from standard input, from --file
// and after "--" to a real one-server cluster and reads them back
// unchanged.
func TestPutValueRoundTrip(t *testing.T) {
	zk := testenv.StartZooKeeper(t)
	ns := testenv.StartNATS(t)
	testenv.StartCluster(t, 1, harness.NodeOptions{ZooKeeper: zk.Addr(), NATSURL: ns.URL()})
	kvctl := func(stdin string, args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		args = append([]string{"kvctl", "--nats", ns.URL(), "--timeout", "30s"}, args...)
		if code := run(t.Context(), args, strings.NewReader(stdin), &stdout, &stderr); code != ExitOK {
			t.Fatalf("%q: exit code %d; stderr %q", args, code, stderr.String())
		}
		return stdout.String()
	}
	file := filepath.Join(t.TempDir(), "value")
	fromFile := strings.Repeat("0123456789abcdef", bus.MaxValueBytes/16-1) + "end\n"
	if err := os.WriteFile(file, []byte(fromFile), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, stdin, want string
		put               []string
	}{
		{"stdin", "two\nlines\n\n", "two\nlines\n\n", []string{"put", "stdin", "-"}},
		{"file", "", fromFile, []string{"put", "file", "-f", file}},
		{"dash", "", "-x", []string{"put", "dash", "--", "-x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if out := kvctl(tt.stdin, tt.put...); !strings.HasPrefix(out, "OK "+tt.name+" ") {
				t.Errorf("put: %q", out)
			}
			var reply bus.ReadReply
			if err := json.Unmarshal([]byte(kvctl("", "get", "--json", "--consistency", "leader", tt.name)), &reply); err != nil {
				t.Fatal(err)
			}
			if reply.Value != tt.want {
				t.Errorf("got %d bytes %.40q, want %d bytes %.40q", len(reply.Value), reply.Value, len(tt.want), tt.want)
			}
		})
	}
}

func TestMain(m *testing.M) { os.Exit(testenv.RunMain(m)) }

// TestDeleteCreateAndCAS runs create, del and put --if-revision against a
// real one-server cluster, over NATS and over HTTP: a failed condition is
// an error exit that prints the key's revision.
func TestDeleteCreateAndCAS(t *testing.T) {
	zk := testenv.StartZooKeeper(t)
	ns := testenv.StartNATS(t)
	nodes := testenv.StartCluster(t, 1, harness.NodeOptions{ZooKeeper: zk.Addr(), NATSURL: ns.URL()})
	// A write over NATS retries until the server leads; one over HTTP is
	// tried once, so the faces start once there is a leader.
	var out, errOut bytes.Buffer
	if code := run(t.Context(), []string{"kvctl", "--nats", ns.URL(), "--timeout", "30s", "put", "warm", "1"}, strings.NewReader(""), &out, &errOut); code != ExitOK {
		t.Fatalf("first write: exit code %d: %s%s", code, out.String(), errOut.String())
	}
	for face, flags := range map[string][]string{
		"nats": {"--nats", ns.URL()},
		"http": {"--http", "http://" + nodes[0].HTTPAddr()},
	} {
		t.Run(face, func(t *testing.T) {
			kvctl := func(want int, args ...string) (string, string) {
				t.Helper()
				var stdout, stderr bytes.Buffer
				args = append(append([]string{"kvctl", "--timeout", "30s"}, flags...), args...)
				if code := run(t.Context(), args, strings.NewReader(""), &stdout, &stderr); code != want {
					t.Fatalf("%q: exit code %d, want %d; stdout %q stderr %q", args, code, want, stdout.String(), stderr.String())
				}
				return stdout.String(), stderr.String()
			}
			key := "k-" + face
			if out, _ := kvctl(ExitOK, "create", key, "1"); !strings.HasSuffix(out, " created\n") {
				t.Errorf("create: %q", out)
			}
			if _, errOut := kvctl(ExitError, "create", key, "2"); !strings.Contains(errOut, "exists") || !strings.Contains(errOut, "revision") {
				t.Errorf("second create: %q", errOut)
			}
			var reply bus.ReadReply
			out, _ := kvctl(ExitOK, "get", "--json", "--consistency", "leader", key)
			if err := json.Unmarshal([]byte(out), &reply); err != nil {
				t.Fatal(err)
			}
			rev := fmt.Sprint(reply.Revision)
			if _, errOut := kvctl(ExitError, "put", key, "x", "--if-revision", "999999"); !strings.Contains(errOut, "conflict") || !strings.Contains(errOut, "revision "+rev) {
				t.Errorf("stale put --if-revision: %q", errOut)
			}
			kvctl(ExitOK, "put", key, "2", "--if-revision", rev)
			if _, errOut := kvctl(ExitError, "del", key, "--if-revision", rev); !strings.Contains(errOut, "conflict") {
				t.Errorf("stale del --if-revision: %q", errOut)
			}
			if out, _ := kvctl(ExitOK, "del", key); !strings.HasSuffix(out, " deleted\n") {
				t.Errorf("del: %q", out)
			}
			kvctl(ExitNotFound, "get", "--consistency", "leader", key)
			if out, _ := kvctl(ExitOK, "delete", key); !strings.Contains(out, "nothing deleted") {
				t.Errorf("del of a missing key: %q", out)
			}
		})
	}
}

// TestList pages through keys with kvctl ls on a real one-server cluster,
// over NATS and over HTTP.
func TestList(t *testing.T) {
	zk := testenv.StartZooKeeper(t)
	ns := testenv.StartNATS(t)
	nodes := testenv.StartCluster(t, 1, harness.NodeOptions{ZooKeeper: zk.Addr(), NATSURL: ns.URL()})
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	kv, err := client.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var wantLines []string
	for i := range 1100 {
		k := fmt.Sprintf("p/k%04d", i)
		if _, err := kv.Put(t.Context(), k, "v "+k); err != nil {
			t.Fatal(err)
		}
		wantLines = append(wantLines, fmt.Sprintf("%s %q", k, "v "+k))
	}
	if _, err := kv.Put(t.Context(), "q", "1"); err != nil {
		t.Fatal(err)
	}
	for face, flags := range map[string][]string{
		"nats":          {"--nats", ns.URL(), "--", "--node", nodes[0].ID()},
		"nats any node": {"--nats", ns.URL()},
		"http":          {"--http", "http://" + nodes[0].HTTPAddr()},
	} {
		t.Run(face, func(t *testing.T) {
			kvctl := func(want int, args ...string) string {
				t.Helper()
				var stdout, stderr bytes.Buffer
				global, node := flags, []string(nil) // --node goes after the command
				if i := slices.Index(flags, "--"); i >= 0 {
					global, node = flags[:i], flags[i+1:]
				}
				args = slices.Concat([]string{"kvctl", "--timeout", "30s"}, global, args, node)
				if code := run(t.Context(), args, strings.NewReader(""), &stdout, &stderr); code != want {
					t.Fatalf("%q: exit code %d, want %d; stderr %q", args, code, want, stderr.String())
				}
				return stdout.String()
			}
			lines := func(out string) []string { return strings.Split(strings.TrimSuffix(out, "\n"), "\n") }
			// Past one page of 1,000: every key once, in order.
			if got := lines(kvctl(ExitOK, "ls", "p/")); !slices.Equal(got, wantLines) {
				t.Fatalf("ls p/: %d lines, first %q", len(got), got[:min(2, len(got))])
			}
			if got := lines(kvctl(ExitOK, "ls")); len(got) != 1101 || got[1100] != "q 1" {
				t.Fatalf("ls: %d lines, last %q", len(got), got[len(got)-1])
			}
			if got := lines(kvctl(ExitOK, "ls", "p/k10", "--keys-only", "--limit", "5")); !slices.Equal(got, []string{"p/k1000", "p/k1001", "p/k1002", "p/k1003", "p/k1004"}) {
				t.Fatalf("ls --keys-only --limit 5: %q", got)
			}
			var e bus.ListEntry
			got := lines(kvctl(ExitOK, "ls", "q", "--json"))
			if len(got) != 1 || json.Unmarshal([]byte(got[0]), &e) != nil || e.Key != "q" || e.Value != "1" || e.Revision == 0 {
				t.Fatalf("ls q --json: %q", got)
			}
			if out := kvctl(ExitOK, "ls", "none/"); out != "" {
				t.Fatalf("ls of an empty prefix: %q", out)
			}
		})
	}
}
