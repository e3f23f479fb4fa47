package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/client"
)

func listCommand() *cli.Command {
	return &cli.Command{
		Name:      "ls",
		Aliases:   []string{"list"},
		Usage:     "list the keys with PREFIX (all keys if none) from one node's copy",
		ArgsUsage: "[PREFIX]",
		Description: `Prints one "key value" line per key, in key order (keys and values
quoted when they hold spaces, '=', '"' or unprintable characters; with
--keys-only just the key; with --json one {"key","value","revision"} object
per line), paging through every key unless --limit stops it sooner. Like
get it reads one node's copy, which may be stale; every page comes from the
same node. An empty list prints nothing and exits 0. --timeout bounds the
whole listing.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "node", Usage: "list node `ID`'s copy (default: the first node found)"},
			&cli.BoolFlag{Name: "keys-only", Usage: "print the keys without their values"},
			&cli.IntFlag{Name: "limit", Usage: "print at most `N` keys (0: all)"},
		},
		Action: listAction,
	}
}

// pager fetches one list page after a key, of at most limit entries.
type pager func(ctx context.Context, after string, limit int) (bus.ListReply, error)

func listAction(c *cli.Context) error {
	if c.NArg() > 1 {
		return usageError(c, "want at most one PREFIX, got %d arguments", c.NArg())
	}
	prefix := c.Args().First()
	if err := bus.ValidatePrefix(prefix); err != nil {
		return usageError(c, "%v", err)
	}
	total := c.Int("limit")
	if total < 0 {
		return usageError(c, "--limit %d is negative", total)
	}
	node, err := nodeFlag(c)
	if err != nil {
		return err
	}
	keysOnly := c.Bool("keys-only")
	g, ctx, done, err := openWithDeadline(c)
	if err != nil {
		return err
	}
	defer done()

	var page pager
	if g.web != nil {
		page = func(ctx context.Context, after string, limit int) (bus.ListReply, error) {
			return g.web.list(ctx, bus.ListRequest{Prefix: prefix, After: after, Limit: limit, KeysOnly: keysOnly})
		}
	} else {
		page = func(ctx context.Context, after string, limit int) (bus.ListReply, error) {
			opts := []client.ReadOption{client.FromNode(node), client.WithAfter(after), client.WithLimit(limit)}
			if keysOnly {
				opts = append(opts, client.WithKeysOnly())
			}
			r, err := g.client.List(ctx, prefix, opts...)
			node = r.Node // every page from the node that answered the first
			return r, err
		}
	}
	return printList(ctx, c, g.json, keysOnly, total, page)
}

// printList prints the pages one after another until the last, or until
// total entries (0: no bound) were printed.
func printList(ctx context.Context, c *cli.Context, asJSON, keysOnly bool, total int, page pager) error {
	after, printed := "", 0
	for {
		limit := bus.MaxListPage
		if total > 0 {
			limit = min(limit, total-printed)
		}
		r, err := page(ctx, after, limit)
		if err != nil {
			return failure(err)
		}
		for _, e := range r.Entries {
			switch {
			case asJSON:
				err = printJSON(c.App.Writer, e)
			case keysOnly:
				_, err = fmt.Fprintln(c.App.Writer, quote(e.Key))
			default:
				_, err = fmt.Fprintln(c.App.Writer, quote(e.Key), quote(e.Value))
			}
			if err != nil {
				return err
			}
		}
		printed += len(r.Entries)
		if !r.More || (total > 0 && printed >= total) {
			return nil
		}
		if r.Next == "" {
			return failure(fmt.Errorf("%w: node %s: a page with more to come and no next key", bus.ErrInternal, r.Node))
		}
		after = r.Next
	}
}

// list asks for one list page: GET /v1/kv?prefix=...
func (a *httpAPI) list(ctx context.Context, r bus.ListRequest) (bus.ListReply, error) {
	q := url.Values{"prefix": {r.Prefix}}
	if r.After != "" {
		q.Set("after", r.After)
	}
	if r.Limit > 0 {
		q.Set("limit", strconv.Itoa(r.Limit))
	}
	if r.KeysOnly {
		q.Set("keys_only", "true")
	}
	var reply bus.ListReply
	_, err := a.do(ctx, http.MethodGet, "/v1/kv", q, "", &reply)
	return reply, err
}
