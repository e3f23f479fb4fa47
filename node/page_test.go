package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/internal/testenv"
)

// clusterView fetches GET /v1/cluster from node.
func (c *cluster) clusterView(node string) (bus.ClusterView, error) {
	var v bus.ClusterView
	body := httpDo(c.t, http.MethodGet, c.nodes[node].URL()+"/v1/cluster", "", http.StatusOK)
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		return v, fmt.Errorf("decode %s: %w", body, err)
	}
	return v, nil
}

// member returns the row of id in v.
func member(v bus.ClusterView, id string) (bus.MemberView, bool) {
	i := slices.IndexFunc(v.Members, func(m bus.MemberView) bool { return m.Node == id })
	if i < 0 {
		return bus.MemberView{}, false
	}
	return v.Members[i], true
}

// others returns the IDs of c's nodes but not.
func (c *cluster) others(not string) []string {
	var ids []string
	for id := range c.nodes {
		if id != not {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// killLeader kills leader's process (SIGKILL) and waits for the others
// to agree on the next one, whose ID it returns.
func (c *cluster) killLeader(leader string) string {
	c.t.Helper()
	if err := c.nodes[leader].Kill(); err != nil {
		c.t.Fatal(err)
	}
	next, _ := c.waitLeader(leader, 15*time.Second)
	return next
}

// TestClusterView: GET /v1/cluster lists every member with its status;
// after the leader is killed it shows the new leader and the change with
// its leaderless time; the killed server, restarted empty, is reported
// with the revision it applied apart from the leader's revision it
// learned, and its lag.
func TestClusterView(t *testing.T) {
	c := startCluster(t, 3, sessionTimeout)
	leader, _ := c.waitLeader("", 10*time.Second)
	for i := range 5 {
		c.put(fmt.Sprintf("k%d", i), "v")
	}
	watcher := c.others(leader)[0]
	testenv.WaitFor(t, 10*time.Second, "a view of three current members", func() error {
		v, err := c.clusterView(watcher)
		if err != nil {
			return err
		}
		if v.Node != watcher || v.Leader != leader || v.LeaderRevision < 5 || len(v.Members) != 3 {
			return fmt.Errorf("view %+v", v)
		}
		for _, m := range v.Members {
			if !m.Reachable || !m.InZooKeeper || m.Lag != 0 || m.AppliedRevision != v.LeaderRevision {
				return fmt.Errorf("member %+v", m)
			}
		}
		return nil
	})

	next := c.killLeader(leader)
	testenv.WaitFor(t, 10*time.Second, "the view to show the change of leader", func() error {
		v, err := c.clusterView(watcher)
		if err != nil {
			return err
		}
		if v.Leader != next || len(v.Elections) == 0 {
			return fmt.Errorf("leader %q, elections %+v", v.Leader, v.Elections)
		}
		// The change away from the killed leader is listed; another
		// server may have led briefly before next.
		if e := v.Elections[len(v.Elections)-1]; e.Leader != next || e.LeaderlessMS < 0 ||
			!slices.ContainsFunc(v.Elections, func(e bus.ElectionEvent) bool { return e.Previous == leader }) {
			return fmt.Errorf("elections %+v", v.Elections)
		}
		if m, ok := member(v, leader); ok && m.Reachable {
			return fmt.Errorf("killed %s is reachable: %+v", leader, m)
		}
		return nil
	})

	// The killed server comes back empty and follows the new leader's
	// epoch, which starts at revision 5: it applied none of them.
	if err := c.nodes[leader].Restart(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "the restarted server to report what it applied", func() error {
		v, err := c.clusterView(watcher)
		if err != nil {
			return err
		}
		m, ok := member(v, leader)
		if !ok || !m.Reachable || !m.InZooKeeper {
			return fmt.Errorf("restarted %s: %+v", leader, m)
		}
		if m.AppliedSeq < 5 || m.AppliedRevision != 0 || !m.Stale || m.Lag < 5 || m.Keys != 0 {
			return fmt.Errorf("restarted %s: applied_seq %d applied_revision %d stale %v lag %d keys %d",
				leader, m.AppliedSeq, m.AppliedRevision, m.Stale, m.Lag, m.Keys)
		}
		return nil
	})
	httpDo(t, http.MethodGet, c.nodes[watcher].URL()+"/v1/cluster?x=1", "", http.StatusBadRequest)
}

// TestStatusPageFiles: GET / is the page, its files are under /ui/, each
// with a policy that allows nothing from elsewhere.
func TestStatusPageFiles(t *testing.T) {
	c := startCluster(t, 1, stableTimeout)
	url := c.nodes["n1"].URL()
	for _, f := range []struct{ path, contentType, has string }{
		{"/", "text/html", `src="/ui/app.js"`},
		{"/ui/app.js", "javascript", "/v1/cluster"},
		{"/ui/style.css", "text/css", "table"},
	} {
		resp, err := http.Get(url + f.path)
		if err != nil {
			t.Fatal(err)
		}
		body := make([]byte, 1<<16)
		n, _ := resp.Body.Read(body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Content-Type"), f.contentType) ||
			!strings.Contains(string(body[:n]), f.has) || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "default-src 'none'") {
			t.Errorf("GET %s: %d %q %q: %.200s", f.path, resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Content-Security-Policy"), body[:n])
		}
	}
	httpDo(t, http.MethodGet, url+"/ui/missing.js", "", http.StatusNotFound)
	httpDo(t, http.MethodGet, url+"/index.html.bak", "", http.StatusNotFound)
	httpDo(t, http.MethodPost, url+"/", "", http.StatusMethodNotAllowed)
}

// chromium finds a Chromium or Chrome binary: $ZKV_CHROMIUM, or one on
// PATH.
func chromium() (string, bool) {
	if p := os.Getenv("ZKV_CHROMIUM"); p != "" {
		return p, true
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p, true
		}
	}
	return "", false
}

// pageState is what the page shows, read from its DOM.
type pageState struct {
	Leader    string            `json:"leader"`
	Rows      map[string]string `json:"rows"` // node -> role shown
	Elections int               `json:"elections"`
	Previous  []string          `json:"previous"` // each election's previous leader, newest first
}

const readPage = `(() => {
	const rows = {};
	for (const tr of document.querySelectorAll("#members tbody tr")) rows[tr.dataset.node] = tr.dataset.role;
	const el = document.querySelectorAll("#elections tbody tr");
	return {
		leader: document.getElementById("leader").textContent,
		rows: rows,
		elections: el.length,
		previous: [...el].map((tr) => tr.children[3].textContent),
	};
})()`

// TestStatusPage opens a server's status page in headless Chromium: it
// shows three nodes and the leader, and, with no reload, the new leader
// after the leader is killed. ZKV_PAGE_SCREENSHOT=FILE saves a screenshot
// of the page at the end (docs/status-page.png is one).
func TestStatusPage(t *testing.T) {
	exe, ok := chromium()
	if !ok {
		t.Skip("no Chromium to drive: install Debian's chromium package (apt-get install -y chromium) or set ZKV_CHROMIUM")
	}
	c := startCluster(t, 3, sessionTimeout)
	leader, _ := c.waitLeader("", 10*time.Second)
	for i := range 3 {
		c.put(fmt.Sprintf("k%d", i), "v")
	}
	watcher := c.others(leader)[0]

	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.WindowSize(1280, 720),
		chromedp.UserDataDir(t.TempDir()))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()
	// The first action starts the browser on bctx, which must have no
	// deadline (it would stop the browser); later ones get their own.
	if err := chromedp.Do(bctx, chromedp.Navigate(c.nodes[watcher].URL()+"/")); err != nil {
		t.Fatalf("open the page: %v", err)
	}
	read := func() (pageState, error) {
		ctx, cancel := context.WithTimeout(bctx, 5*time.Second)
		defer cancel()
		return chromedp.Run(ctx, chromedp.Evaluate[pageState](readPage))
	}
	testenv.WaitFor(t, 15*time.Second, "the page to show three nodes and the leader", func() error {
		s, err := read()
		if err != nil {
			return err
		}
		if s.Leader != leader || len(s.Rows) != 3 || s.Rows[leader] != bus.RoleLeader {
			return fmt.Errorf("page shows %+v", s)
		}
		return nil
	})

	next := c.killLeader(leader)
	testenv.WaitFor(t, 15*time.Second, "the page to show the new leader", func() error {
		s, err := read()
		if err != nil {
			return err
		}
		if s.Leader != next || s.Rows[next] != bus.RoleLeader || s.Rows[leader] != "unreachable" || !slices.Contains(s.Previous, leader) {
			return fmt.Errorf("page shows %+v", s)
		}
		return nil
	})

	if path := os.Getenv("ZKV_PAGE_SCREENSHOT"); path != "" {
		// The killed server back, empty: stale, behind, the election listed.
		if err := c.nodes[leader].Restart(ctxFor(t, 10*time.Second)); err != nil {
			t.Fatal(err)
		}
		testenv.WaitFor(t, 15*time.Second, "the page to show the restarted server", func() error {
			s, err := read()
			if err != nil {
				return err
			}
			if s.Rows[leader] != bus.RoleFollower {
				return fmt.Errorf("page shows %+v", s)
			}
			return nil
		})
		ctx, cancel := context.WithTimeout(bctx, 10*time.Second)
		defer cancel()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot written to %s", path)
	}
}
