package main

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/client"
)

func historyCommand() *cli.Command {
	return &cli.Command{
		Name:      "history",
		Usage:     "print the versions of KEY that one node's copy holds",
		ArgsUsage: "KEY",
		Description: `Prints a table, oldest version first: REVISION, VALUE ("(deleted)" for a
delete, a purge or an expiry) and EXPIRES (the deadline a time to live set,
in UTC). Which node answered, whether its copy is stale and whether older
versions were dropped go to standard error; --json prints the whole reply.
A key with no history held exits 3.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "node", Usage: "ask node `ID`'s copy (default: the first node found)"},
			&cli.IntFlag{Name: "limit", Usage: "print only the newest `N` versions (0: all held, at most 64)"},
		},
		Action: historyAction,
	}
}

func historyAction(c *cli.Context) error {
	key, err := keyArg(c)
	if err != nil {
		return err
	}
	limit := c.Int("limit")
	if limit < 0 || limit > bus.MaxHistory {
		return usageError(c, "--limit %d: want 0 to %d", limit, bus.MaxHistory)
	}
	node, err := nodeFlag(c)
	if err != nil {
		return err
	}
	g, ctx, done, err := openWithDeadline(c)
	if err != nil {
		return err
	}
	defer done()
	var h bus.HistoryReply
	if g.web != nil {
		h, err = g.web.history(ctx, key, limit)
	} else {
		h, err = g.client.History(ctx, key, client.FromNode(node), client.WithLimit(limit))
	}
	if err != nil {
		return failure(err)
	}
	if g.json {
		err = printJSON(c.App.Writer, h)
	} else {
		err = writeHistoryTable(c.App.Writer, h)
	}
	if err != nil {
		return err
	}
	if len(h.Versions) == 0 {
		return cli.Exit(fmt.Sprintf("kvctl: no history of key %s on %s", strconv.Quote(key), copyNote(h.Node, h.Role, h.Epoch, h.Stale)), ExitNotFound)
	}
	if !g.json {
		note := "kvctl: " + copyNote(h.Node, h.Role, h.Epoch, h.Stale) + " answered"
		if h.Trimmed {
			note += "; older versions are no longer held"
		}
		fmt.Fprintln(c.App.ErrWriter, note)
	}
	return nil
}

// history asks for a key's versions: GET /v1/history/{key}.
func (a *httpAPI) history(ctx context.Context, key string, limit int) (bus.HistoryReply, error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var reply bus.HistoryReply
	_, err := a.do(ctx, http.MethodGet, "/v1/history/"+key, q, "", &reply)
	return reply, err
}

func compactCommand() *cli.Command {
	return &cli.Command{
		Name:  "compact",
		Usage: "drop every server's history below --rev REVISION, or older than --age DURATION",
		Description: `After a compaction, reads at a revision below it fail with "compacted",
and histories lose the versions below it. The current value of every key
stays. Watches replay from each server's window of recent updates, which a
compaction leaves alone.`,
		Flags: []cli.Flag{
			&cli.Uint64Flag{Name: "rev", Usage: "keep history from `REVISION` on"},
			&cli.DurationFlag{Name: "age", Usage: "drop history older than `DURATION` (e.g. 1h)"},
			&cli.StringFlag{Name: "acks", Usage: "hold the write to `LEVEL`: leader, majority or all (default: the server's --acks)", EnvVars: []string{"ZKV_ACKS"}},
		},
		Action: compactAction,
	}
}

func compactAction(c *cli.Context) error {
	if c.NArg() != 0 {
		return usageError(c, "takes no arguments: give --rev or --age")
	}
	w := bus.WriteRequest{Op: bus.OpCompact, Revision: c.Uint64("rev"), Acks: c.String("acks")}
	if age := c.Duration("age"); c.IsSet("age") {
		if age < time.Millisecond {
			return usageError(c, "--age %v: want at least 1ms", age)
		}
		w.AgeMS = int64(age / time.Millisecond)
	}
	if (w.Revision == 0) == (w.AgeMS == 0) {
		return usageError(c, "give one of --rev REVISION (above 0) or --age DURATION")
	}
	if err := bus.ValidAcks(w.Acks); err != nil {
		return usageError(c, "--acks: %v", err)
	}
	g, ctx, done, err := openWithDeadline(c)
	if err != nil {
		return err
	}
	defer done()
	var reply bus.WriteReply
	switch {
	case g.web != nil:
		reply, err = g.web.write(ctx, w)
	case w.Revision > 0:
		reply, err = g.client.Compact(ctx, w.Revision, client.WithAcks(w.Acks))
	default:
		reply, err = g.client.CompactAge(ctx, time.Duration(w.AgeMS)*time.Millisecond, client.WithAcks(w.Acks))
	}
	if err != nil {
		return failure(err)
	}
	if g.json {
		return printJSON(c.App.Writer, reply)
	}
	_, err = fmt.Fprintln(c.App.Writer, formatPut(reply))
	return err
}

func watchCommand() *cli.Command {
	return &cli.Command{
		Name:      "watch",
		Usage:     "print the updates of keys beginning with PREFIX (all keys if none) until interrupted",
		ArgsUsage: "[PREFIX]",
		Description: `Prints one line per update, in revision order, each once:
   epoch=3 seq=12 a=1                  a put
   epoch=3 seq=13 a (deleted)          a delete (also: deleted by prefix,
                                       expired, purged)
With --rev it first replays the updates from REVISION on that one node
holds, then follows live with no gap; without it, it starts with the next
update. A start the node no longer holds (compacted) is an error, exit 1.
--json prints each update as JSON. --timeout bounds connecting only.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "node", Usage: "replay from node `ID` (default: the first node found)"},
			&cli.Uint64Flag{Name: "rev", Usage: "start at `REVISION`: replay what followed it, then go on live"},
		},
		Action: watchAction,
	}
}

func watchAction(c *cli.Context) error {
	if c.NArg() > 1 {
		return usageError(c, "want at most one PREFIX, got %d arguments", c.NArg())
	}
	prefix := c.Args().First()
	if err := bus.ValidatePrefix(prefix); err != nil {
		return usageError(c, "%v", err)
	}
	node, err := nodeFlag(c)
	if err != nil {
		return err
	}
	g, err := open(c)
	if err != nil {
		return err
	}
	defer g.close()
	show := func(u bus.Update) error {
		if g.json {
			return printJSON(c.App.Writer, u)
		}
		_, err := fmt.Fprintln(c.App.Writer, formatUpdate(u))
		return err
	}
	from := c.Uint64("rev")
	if g.web != nil {
		err = g.web.watch(c.Context, g.timeout, prefix, from, show)
	} else {
		opts := []client.ReadOption{client.FromRevision(from)}
		if node != "" {
			opts = append(opts, client.FromNode(node))
		}
		err = natsWatch(c.Context, g, prefix, opts, show)
	}
	if c.Context.Err() != nil {
		return nil // interrupted: the normal end of a watch
	}
	if err == nil {
		err = fmt.Errorf("%w: the watch ended", bus.ErrUnavailable)
	}
	return failure(err)
}

// natsWatch follows a Watcher until ctx ends or the watch fails. Its
// start (finding a node, subscribing) is bounded by the client's request
// timeout, the watch itself only by ctx.
func natsWatch(ctx context.Context, g *session, prefix string, opts []client.ReadOption, show func(bus.Update) error) error {
	w, err := g.client.Watch(ctx, prefix, opts...)
	if err != nil {
		return err
	}
	defer w.Stop()
	for u := range w.Updates() {
		if err := show(u); err != nil {
			return err
		}
	}
	return w.Err()
}

// watch follows GET /v1/watch, the node's server-sent events, until ctx
// ends or the stream reports an error. A stream the server ends without
// one (its length cap) is opened again from the last revision seen.
// timeout bounds each connection until its first byte.
func (a *httpAPI) watch(ctx context.Context, timeout time.Duration, prefix string, from uint64, show func(bus.Update) error) error {
	q := url.Values{}
	if prefix != "" {
		q.Set("prefix", prefix)
	}
	if from > 0 {
		q.Set("after", strconv.FormatUint(from-1, 10))
	}
	lastID := ""
	for {
		start := time.Now()
		err := a.stream(ctx, timeout, q, &lastID, show)
		if err != nil || ctx.Err() != nil {
			return err
		}
		// A stream cut short at once (by a proxy, say) is not retried
		// in a tight loop.
		select {
		case <-time.After(time.Second - time.Since(start)):
		case <-ctx.Done():
			return nil
		}
	}
}

// stream reads one event stream to its end, keeping *lastID at the last
// revision it announced.
func (a *httpAPI) stream(ctx context.Context, timeout time.Duration, q url.Values, lastID *string, show func(bus.Update) error) error {
	u := *a.base
	u.Path += "/v1/watch"
	u.RawPath = ""
	u.RawQuery = q.Encode()
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	req, err := http.NewRequestWithContext(sctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "text/event-stream")
	if *lastID != "" {
		req.Header.Set("Last-Event-ID", *lastID)
	}
	a.authorize(req)
	connect := time.AfterFunc(timeout, cancel)
	resp, err := a.client.Do(req)
	connect.Stop()
	if err != nil {
		return fmt.Errorf("%w: GET %s: %w", bus.ErrUnavailable, u.Redacted(), err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		var ignored struct{}
		if err := a.decode(resp, http.MethodGet, &u, &ignored); err != nil {
			return err
		}
		return fmt.Errorf("GET %s: %s, not an event stream", u.Redacted(), resp.Status)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), maxReplyBytes)
	var event, data string
	for sc.Scan() {
		line := sc.Text()
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch {
		case line == "":
			if err := dispatch(event, data, show); err != nil {
				return err
			}
			event, data = "", ""
		case name == "id":
			*lastID = value
		case name == "event":
			event = value
		case name == "data":
			data += value
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w: GET %s: %w", bus.ErrUnavailable, u.Redacted(), err)
	}
	return nil // the server's length cap: go on from *lastID
}

// dispatch handles one complete event: an update to print, or an error
// that ends the watch.
func dispatch(event, data string, show func(bus.Update) error) error {
	switch {
	case data == "":
		return nil
	case event == "error":
		var ignored struct{}
		if err := bus.DecodeReply([]byte(data), &ignored); err != nil {
			return err
		}
		return fmt.Errorf("%w: an error event without an error: %q", bus.ErrInternal, data)
	case event != "":
		return nil
	}
	var u bus.Update
	if err := bus.DecodeReply([]byte(data), &u); err != nil {
		return fmt.Errorf("%w: an event of %q: %w", bus.ErrInternal, data, err)
	}
	return show(u)
}
