package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/client"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "print a table of every node's status (--watch: redraw it until Ctrl-C)",
		Description: `The nodes are those that answer on NATS and the members of the
election in ZooKeeper that they report, so a server that crashed is
listed as "unreachable" until ZooKeeper ends its session; with --watch,
every node seen since the watch began stays listed. With --http, the
table is the cluster as that node sees it (GET /v1/cluster).

Columns: APPLIED is the highest revision the node applied itself;
LEADER_REV the revision of the leader it names, as that leader reports
it (- if it did not answer); STALE yes when the node knows it missed
updates; BEHIND how many revisions it lacks below the cluster record
("lost N" on a leader that took over without N acknowledged ones);
READY what its /readyz answers.

Exit code 1 when any node is unreachable or stale (also with --json);
with --watch, 0 when stopped with Ctrl-C.`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "watch", Aliases: []string{"w"}, Usage: "redraw the table every --interval until Ctrl-C"},
			&cli.DurationFlag{Name: "interval", Value: time.Second, Usage: "with --watch, the `DURATION` between tables"},
		},
		Action: statusAction,
	}
}

func statusAction(c *cli.Context) error {
	if c.NArg() != 0 {
		return usageError(c, "takes no arguments")
	}
	interval := c.Duration("interval")
	if interval <= 0 {
		return usageError(c, "--interval %v is not positive", interval)
	}
	g, err := open(c)
	if err != nil {
		return err
	}
	defer g.close()
	if c.Bool("watch") {
		return watchStatus(c, g, interval)
	}
	ctx, cancel := g.deadline(c)
	defer cancel()
	statuses, err := g.statuses(ctx, nil)
	if err != nil {
		return failure(err)
	}
	if err := printStatuses(c, g, statuses); err != nil {
		return err
	}
	return statusFailure(statuses)
}

// statuses collects one status per node: those NATS discovery finds, the
// election members they report and the nodes of seen; with --http, the
// answering node's view, plus seen.
func (g *session) statuses(ctx context.Context, seen []string) ([]bus.Status, error) {
	if g.web == nil {
		ids, err := g.client.Nodes(ctx)
		if err != nil && len(seen) == 0 {
			return nil, err
		}
		return g.client.StatusesOf(ctx, append(ids, seen...)), nil
	}
	view, err := g.web.cluster(ctx)
	if err != nil {
		return nil, err
	}
	var out []bus.Status
	for _, m := range view.Members {
		st := m.Status
		if !m.Reachable {
			st = bus.Status{Node: m.Node, Role: client.RoleUnreachable}
		}
		out = append(out, st)
	}
	for _, id := range seen {
		if !slices.ContainsFunc(out, func(s bus.Status) bool { return s.Node == id }) {
			out = append(out, bus.Status{Node: id, Role: client.RoleUnreachable})
		}
	}
	slices.SortFunc(out, func(a, b bus.Status) int { return strings.Compare(a.Node, b.Node) })
	return out, nil
}

// printStatuses writes the table (or JSON) on stdout and the warnings on
// stderr.
func printStatuses(c *cli.Context, g *session, statuses []bus.Status) error {
	if g.json {
		return printJSON(c.App.Writer, statuses)
	}
	if err := writeStatusTable(c.App.Writer, statuses); err != nil {
		return err
	}
	for _, w := range statusWarnings(statuses) {
		fmt.Fprintln(c.App.ErrWriter, "kvctl: "+w)
	}
	for _, st := range statuses {
		if st.HTTPWarning != "" {
			fmt.Fprintf(c.App.ErrWriter, "kvctl: warning: %s: %s\n", st.Node, st.HTTPWarning)
		}
	}
	return nil
}

// watchStatus redraws the table every interval until Ctrl-C (the
// command's context ends). Each round has its own --timeout; a failed one
// is shown and the watch goes on. Every node seen stays listed.
func watchStatus(c *cli.Context, g *session, interval time.Duration) error {
	seen := map[string]bool{}
	redraw := isTerminal(c.App.Writer) && !g.json
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		ctx, cancel := g.deadline(c)
		statuses, err := g.statuses(ctx, sortedKeys(seen))
		cancel()
		if c.Context.Err() != nil {
			return nil
		}
		if redraw {
			fmt.Fprint(c.App.Writer, "\x1b[H\x1b[2J")
		} else if !g.json {
			fmt.Fprintln(c.App.Writer)
		}
		if !g.json {
			fmt.Fprintf(c.App.Writer, "%s  every %v, Ctrl-C to stop\n", time.Now().Format(time.TimeOnly), interval)
		}
		if err != nil {
			fmt.Fprintln(c.App.ErrWriter, errorLine(err))
		} else if err := printStatuses(c, g, statuses); err != nil {
			return err
		}
		for _, st := range statuses {
			seen[st.Node] = true
		}
		select {
		case <-c.Context.Done():
			return nil
		case <-tick.C:
		}
	}
}

// statusFailure is the error exit of a table with an unreachable or a
// stale node, nil if there is none.
func statusFailure(statuses []bus.Status) error {
	var down, stale []string
	for _, s := range statuses {
		switch {
		case s.Role == client.RoleUnreachable:
			down = append(down, s.Node)
		case s.Stale:
			stale = append(stale, s.Node)
		}
	}
	staleText := "stale (missed updates): " + strings.Join(stale, ", ")
	switch {
	case len(down) > 0 && len(stale) > 0:
		return failure(bus.Errorf(bus.CodeUnavailable, "%d of %d nodes did not answer: %s; %s", len(down), len(statuses), strings.Join(down, ", "), staleText))
	case len(down) > 0:
		return failure(bus.Errorf(bus.CodeUnavailable, "%d of %d nodes did not answer: %s", len(down), len(statuses), strings.Join(down, ", ")))
	case len(stale) > 0:
		return failure(bus.Errorf(bus.CodeStale, "%s", staleText))
	}
	return nil
}

// writeStatusTable writes statuses as a table with a header line.
func writeStatusTable(w io.Writer, statuses []bus.Status) error {
	leaderRev := map[string]uint64{}
	for _, s := range statuses {
		if s.Role == bus.RoleLeader {
			leaderRev[s.Node] = s.AppliedSeq
		}
	}
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tROLE\tEPOCH\tLEADER\tAPPLIED\tLEADER_REV\tKEYS\tSTALE\tBEHIND\tREADY\tZOOKEEPER\tNATS")
	for _, s := range statuses {
		if s.Role == client.RoleUnreachable {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\t-\t-\t-\t-\t-\n", s.Node, s.Role)
			continue
		}
		lrev := "-"
		if r, ok := leaderRev[s.Leader]; ok {
			lrev = strconv.FormatUint(r, 10)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n",
			s.Node, orDash(s.Role), s.Epoch, orDash(s.Leader), s.AppliedRevision, lrev, s.Keys,
			yesNo(s.Stale), behind(s), yesNo(s.Ready), orDash(s.ZooKeeper), orDash(s.NATS))
	}
	return tw.Flush()
}

// isTerminal reports whether w is a terminal, where a redraw clears the
// screen first.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
