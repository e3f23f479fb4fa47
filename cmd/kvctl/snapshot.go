package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/urfave/cli/v2"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/client"
	"github.com/zkvstore/zkv/store"
	"github.com/zkvstore/zkv/store/disk"
)

// snapshotCommand is `kvctl snapshot save|restore|inspect`.
func snapshotCommand() *cli.Command {
	return &cli.Command{
		Name:  "snapshot",
		Usage: "save the cluster's data to a file, or make a server's data directory from one",
		Subcommands: []*cli.Command{
			{
				Name:      "save",
				Usage:     "copy the leader's store, every key with its value, revision and deadline, into FILE",
				ArgsUsage: "FILE",
				Description: "The copy is read page by page while writes go on: each key is saved as of\n" +
					"some revision between the first page's and the last page's. --timeout bounds each page.",
				Action: snapshotSave,
			},
			{
				Name:      "restore",
				Usage:     "make a new data directory for one server from FILE; then start the server with --data-dir DIR",
				ArgsUsage: "FILE",
				Description: "Run it for each server, with the same FILE, before starting them. The directory\n" +
					"must not exist or be empty. The restored data joins whatever cluster the server joins.",
				Flags: []cli.Flag{
					&cli.StringFlag{Name: "data-dir", Usage: "the new data `DIR`", Required: true},
					&cli.StringFlag{Name: "id", Usage: "the `ID` of the server that will use it", Required: true},
				},
				Action: snapshotRestore,
			},
			{
				Name:      "inspect",
				Usage:     "check FILE and print what it holds",
				ArgsUsage: "FILE",
				Action:    snapshotInspect,
			},
		},
	}
}

// fileArg is the one FILE argument of a snapshot command.
func fileArg(c *cli.Context) (string, error) {
	if c.NArg() != 1 {
		return "", usageError(c, "want one FILE argument, got %d", c.NArg())
	}
	return c.Args().First(), nil
}

// snapshotSave pages through the leader's store into a snapshot file.
func snapshotSave(c *cli.Context) error {
	path, err := fileArg(c)
	if err != nil {
		return err
	}
	g, err := parseGlobals(c)
	if err != nil {
		return err
	}
	if g.http.enabled() {
		return usageError(c, "snapshot save reads the leader's store over NATS; leave out --http")
	}
	kv, closeConn, err := connect(g)
	if err != nil {
		return err
	}
	defer closeConn()
	ctx, cancel := context.WithTimeout(c.Context, g.timeout)
	cluster, err := leaderCluster(ctx, kv.Statuses)
	cancel()
	if err != nil {
		return failure(err)
	}
	// The pages are read while writes go on, each at its own revision;
	// the leader's updates since the first page, merged in (each key
	// keeps its newest revision), make the copy the store as of one
	// revision, as a catch-up does.
	pages := &leaderPages{conn: kv.Conn(), subject: kv.Subjects().LeaderSnapshot(), timeout: g.timeout}
	st := store.New()
	for {
		page, err := pages.fetch(c.Context)
		if err != nil {
			return failure(err)
		}
		if len(page) == 0 {
			break
		}
		st.Install(page)
	}
	first := pages.first
	rev, revEpoch, err := mergeSince(c.Context, kv, g.timeout, first, st)
	if err != nil {
		return failure(err)
	}
	h := disk.Header{Cluster: cluster, Created: time.Now().UnixNano()}
	h.SetPosition(store.Position{Epoch: first.Epoch, Stream: first.Epoch, Revision: rev, RevEpoch: revEpoch})
	written, err := disk.WriteSnapshotFile(path, h, disk.StorePages(st), nil, nil)
	if err != nil {
		return failure(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		return failure(err)
	}
	fmt.Fprintf(c.App.Writer, "saved %d keys of cluster %s (leader %s, epoch %d, revision %d) to %s, %d bytes\n",
		written.Keys, cluster, first.Leader, first.Epoch, rev, path, fi.Size())
	return nil
}

// leaderPages reads the leader's store a page at a time, as a catch-up
// does, and checks that one leader answers them all.
type leaderPages struct {
	conn    *nats.Conn
	subject string
	timeout time.Duration // of each page

	first bus.SnapshotReply
	after string
	pages int
	done  bool
}

// fetch returns the next page's entries, none once the store is read.
func (p *leaderPages) fetch(ctx context.Context) ([]store.KeyEntry, error) {
	if p.done {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	msg, err := p.conn.RequestWithContext(ctx, p.subject, bus.Encode(bus.SnapshotRequest{After: p.after, Limit: bus.MaxSnapshotPage}))
	if err != nil {
		return nil, fmt.Errorf("page %d of the leader's store: %w", p.pages+1, err)
	}
	var page bus.SnapshotReply
	if err := bus.DecodeReply(msg.Data, &page); err != nil {
		return nil, fmt.Errorf("page %d of the leader's store: %w", p.pages+1, err)
	}
	if p.pages == 0 {
		p.first = page
	} else if page.Epoch != p.first.Epoch || page.Leader != p.first.Leader {
		return nil, fmt.Errorf("the leader changed during the save (%s at epoch %d, then %s at epoch %d): save again",
			p.first.Leader, p.first.Epoch, page.Leader, page.Epoch)
	}
	p.pages++
	p.done = !page.More
	if len(page.Entries) == 0 && !p.done {
		return nil, fmt.Errorf("page %d of the leader's store is empty with more to come", p.pages)
	}
	out := make([]store.KeyEntry, len(page.Entries))
	for i, e := range page.Entries {
		out[i] = store.KeyEntry{Key: e.Key, Entry: store.Entry{Value: e.Value, Revision: e.Revision, Expires: e.Expires}}
	}
	if len(out) > 0 {
		p.after = out[len(out)-1].Key
	}
	return out, nil
}

// mergeSince merges into st the leader's updates after the first page's
// revision, from its replay window, and returns the revision (and the
// epoch that wrote it) st is then the leader's store as of.
func mergeSince(ctx context.Context, kv *client.Client, timeout time.Duration, first bus.SnapshotReply, st *store.Store) (rev, revEpoch uint64, err error) {
	rev = first.Revision
	for after, more := first.Revision, true; more; {
		pctx, cancel := context.WithTimeout(ctx, timeout)
		page, err := kv.Changes(pctx, bus.ChangesRequest{After: after, Limit: bus.MaxChangesPage}, client.FromNode(first.Leader))
		cancel()
		if err != nil {
			return 0, 0, fmt.Errorf("the updates made during the save: %w (save again; a larger --watch-window on the servers keeps more)", err)
		}
		if page.Role != bus.RoleLeader || page.Epoch != first.Epoch {
			return 0, 0, fmt.Errorf("the leader changed during the save (%s at epoch %d, then %s at epoch %d): save again", first.Leader, first.Epoch, page.Role, page.Epoch)
		}
		for _, u := range page.Updates {
			st.Merge(store.Update{Epoch: u.Epoch, Seq: u.Seq, Key: u.Key, Value: u.Value, Expires: u.Expires,
				Delete: u.Kind == bus.KindDelete || u.Kind == bus.KindPurge, Purge: u.Kind == bus.KindPurge, Prefix: u.Prefix})
		}
		after, more = page.Next, page.More
		rev, revEpoch = page.Next, page.NextEpoch
	}
	return rev, revEpoch, nil
}

// leaderCluster returns the cluster id the leader reports.
func leaderCluster(ctx context.Context, statuses func(context.Context) ([]bus.Status, error)) (string, error) {
	sts, err := statuses(ctx)
	if err != nil {
		return "", err
	}
	for _, st := range sts {
		if st.Role == bus.RoleLeader {
			return st.Cluster, nil
		}
	}
	return "", fmt.Errorf("no node reports itself leader (%d answered): save again once one does", len(sts))
}

// onePage yields es as one page.
func onePage(es []store.KeyEntry) disk.Pages {
	done := false
	return func() ([]store.KeyEntry, error) {
		if done {
			return nil, nil
		}
		done = true
		return es, nil
	}
}

// snapshotRestore makes a new data directory holding FILE's entries.
func snapshotRestore(c *cli.Context) error {
	path, err := fileArg(c)
	if err != nil {
		return err
	}
	dir, id := c.String("data-dir"), c.String("id")
	if err := bus.ValidNodeID(id); err != nil {
		return usageError(c, "--id: %v", err)
	}
	if names, err := os.ReadDir(dir); err == nil && len(names) > 0 {
		return failure(fmt.Errorf("%s is not empty: restore into a new directory", dir))
	}
	var entries []store.KeyEntry
	h, err := disk.ReadSnapshotFile(path, nil, func(es []store.KeyEntry) { entries = append(entries, es...) }, nil)
	if err != nil {
		return failure(err)
	}
	d, err := disk.Open(dir, disk.Options{Node: id})
	if err != nil {
		return failure(err)
	}
	defer d.Close()
	// A saved file is the store as of its revision: no entry is newer.
	for _, e := range entries {
		if e.Revision > h.Revision {
			return failure(fmt.Errorf("%s holds key %q at revision %d, past the file's revision %d: not the store as of one revision (save it again with this kvctl)", path, e.Key, e.Revision, h.Revision))
		}
	}
	// The restored copy belongs to no cluster and no epoch yet: it joins
	// the one its server joins, and goes on from the saved revision (the
	// epoch that wrote it is kept, so a leader that holds it from another
	// epoch sends its whole store instead of what follows).
	out := disk.Header{Node: id, Created: time.Now().UnixNano()}
	out.SetPosition(store.Position{Revision: h.Revision, RevEpoch: h.RevEpoch})
	if _, err := disk.WriteSnapshotFile(d.SnapshotPath(), out, onePage(entries), nil, nil); err != nil {
		return failure(err)
	}
	fmt.Fprintf(c.App.Writer, "restored %d keys (revision %d) from %s into %s for server %s: start it with --id %s --data-dir %s\n",
		len(entries), h.Revision, path, dir, id, id, dir)
	return nil
}

// snapshotInspect checks a snapshot file and prints its header.
func snapshotInspect(c *cli.Context) error {
	path, err := fileArg(c)
	if err != nil {
		return err
	}
	var bytes int64
	h, err := disk.ReadSnapshotFile(path, nil, func(es []store.KeyEntry) {
		for _, e := range es {
			bytes += int64(len(e.Key) + len(e.Value))
		}
	}, nil)
	if err != nil {
		return failure(err)
	}
	if c.Bool("json") {
		return printJSON(c.App.Writer, h)
	}
	fmt.Fprintf(c.App.Writer, "%s: format %d, cluster %q, node %q, created %s\n  %d keys, %d bytes of keys and values, epoch %d, revision %d, log index %d\n",
		path, h.Format, h.Cluster, h.Node, time.Unix(0, h.Created).UTC().Format(time.RFC3339), h.Keys, bytes, h.Epoch, h.Revision, h.LogIndex)
	return nil
}
