// Command kvctl is the command-line client of a zkv cluster: it writes,
// reads and watches keys and shows the status of every node, over NATS;
// with --http it writes, reads and shows status through one node's HTTP
// API instead.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/urfave/cli/v2"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/client"
	"github.com/zkvstore/zkv/internal/cliflags"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run runs kvctl with args (args[0] is the program name) and returns the
// exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if n := len(args); n > 1 && args[n-1] == completionFlag && slices.Contains(args[:n-1], "--") {
		// cli would run this request as a command, with the flag as an
		// argument; after "--" there is nothing to complete.
		return ExitOK
	}
	app := newApp(stdout, stderr)
	app.Reader = stdin
	err := app.RunContext(ctx, hoistFlags(app, args))
	return exitCode(err, stderr)
}

const description = `kvctl talks to the nodes of a zkv cluster over NATS. Writes go to the
leader (or, with --node, through one node); reads are answered from one
node's copy, which may be stale, and so are lists (ls) and histories. With
--http URL, every command but auth and completion goes to that node's HTTP
API instead (TLS and credentials: the --http-* flags).
"kvctl auth hash" prints lines of kvserver's --http-auth-file.

Flags may come before or after the arguments; put "--" before an argument
that begins with "-".

Exit codes:
   0  success
   1  error: a server error (printed as "error: <code>: <message>"),
      NATS unreachable, no answer before --timeout, an unreachable or
      stale node in status, or a watch that ended on its own
   2  usage error: unknown command or flag, wrong arguments
   3  key not found (get), or no history of it (history)`

func newApp(stdout, stderr io.Writer) *cli.App {
	nodeFlag := &cli.StringFlag{Name: "node", Usage: "send the request to node `ID` instead of any node"}
	acksFlag := &cli.StringFlag{Name: "acks", Usage: "hold the write to `LEVEL`: leader, majority or all (default: the server's --acks)",
		EnvVars: []string{"ZKV_ACKS"}}
	ifRevisionFlag := &cli.Uint64Flag{Name: "if-revision", Usage: "write only if the key is at `REVISION` (0: the key must not exist); otherwise fail with conflict"}
	fileFlag := &cli.StringFlag{Name: "file", Aliases: []string{"f"}, Usage: "read the value from `PATH` instead of an argument", TakesFile: true}
	ttlFlag := &cli.DurationFlag{Name: "ttl", Usage: "the leader deletes the key once `DURATION` (e.g. 30s, 1h) has passed, unless it is written again"}
	commands := []*cli.Command{
		{
			Name:      "put",
			Usage:     "write KEY=VALUE through the leader",
			ArgsUsage: "KEY VALUE | KEY - | KEY --file PATH",
			Description: `VALUE "-" reads the value from standard input, --file from a file:
all of it, byte for byte (a trailing newline is kept), as etcdctl put
and nats kv put do. The value must be UTF-8 of at most 65536 bytes.
A literal value "-" comes from standard input too (printf %s - | kvctl put KEY -);
put "--" before a value that begins with "-": kvctl put KEY -- -x.`,
			Flags:  []cli.Flag{nodeFlag, acksFlag, ifRevisionFlag, fileFlag, ttlFlag},
			Action: writeAction(bus.OpPut),
		},
		{
			Name:      "create",
			Usage:     "write KEY=VALUE through the leader only if KEY does not exist",
			ArgsUsage: "KEY VALUE | KEY - | KEY --file PATH",
			Description: `The value is given as for put. If KEY exists the write fails with
"exists" and the key's revision, and kvctl exits 1.`,
			Flags:  []cli.Flag{nodeFlag, acksFlag, fileFlag, ttlFlag},
			Action: writeAction(bus.OpCreate),
		},
		{
			Name:      "del",
			Aliases:   []string{"delete"},
			Usage:     "delete KEY (with --prefix, every key beginning with PREFIX) through the leader",
			ArgsUsage: "KEY | --prefix PREFIX",
			Description: `Deleting a key that does not exist succeeds and says nothing was deleted.
With --if-revision the key must be at that revision (0: absent), or the
delete fails with "conflict" and the key's revision, and kvctl exits 1.
With --prefix every key that begins with the argument is deleted at one
revision, and the line says how many.`,
			Flags: []cli.Flag{nodeFlag, acksFlag, ifRevisionFlag,
				&cli.BoolFlag{Name: "prefix", Usage: "delete every key that begins with the argument"}},
			Action: writeAction(bus.OpDelete),
		},
		{
			Name:      "purge",
			Usage:     "remove KEY and its history through the leader",
			ArgsUsage: "KEY",
			Description: `Like del, but the key's older versions go too: reads of it at older
revisions and its history answer as if it never existed.`,
			Flags:  []cli.Flag{nodeFlag, acksFlag},
			Action: writeAction(bus.OpPurge),
		},
		compactCommand(),
		{
			Name:      "get",
			Usage:     "print the value of KEY from one node's copy",
			ArgsUsage: "KEY",
			Flags: []cli.Flag{nodeFlag,
				&cli.StringFlag{Name: "consistency", Value: bus.ConsistencyLocal, Usage: "`LEVEL`: local (the node's copy, maybe stale), leader (the leader's answer) or min_revision (the node's copy once it applied --min-revision)"},
				&cli.Uint64Flag{Name: "min-revision", Usage: "with --consistency min_revision: the `REVISION` to wait for (e.g. from put)"},
				&cli.Uint64Flag{Name: "rev", Usage: "read the key as it was at `REVISION`, from the node's history (error compacted if it no longer holds it)"},
			},
			Description: `Prints the value alone on standard output (nothing else, so scripts can
read it), and on standard error which node answered, its role and epoch,
and whether its copy is stale (it knows it missed updates); --json prints
the whole reply instead.`,
			Action: getAction,
		},
		statusCommand(),
		watchCommand(),
		historyCommand(),
		listCommand(),
		authCommand(),
		snapshotCommand(),
		completionCommand(),
	}
	for _, c := range commands {
		c.OnUsageError = onUsageError
	}
	return &cli.App{
		Name:        "kvctl",
		Usage:       "read, write and watch a zkv cluster",
		Description: description,
		Writer:      stdout,
		ErrWriter:   stderr,
		Version:     cliflags.Version(),
		// Shells complete commands and flags through
		// --generate-bash-completion; see the completion command.
		EnableBashCompletion: true,
		Flags: append([]cli.Flag{
			&cli.StringFlag{
				Name:    "nats",
				Usage:   "NATS server `URL`s, comma-separated",
				EnvVars: []string{"NATS_URL", "ZKV_NATS"},
				Value:   "nats://127.0.0.1:4222",
			},
			&cli.StringFlag{
				Name:    "subject-prefix",
				Usage:   "subject `PREFIX` of the cluster",
				EnvVars: []string{"ZKV_SUBJECT_PREFIX"},
				Value:   bus.DefaultPrefix,
			},
			&cli.DurationFlag{
				Name:    "timeout",
				Usage:   "deadline of the whole command, retries included (watch: of connecting)",
				EnvVars: []string{"ZKV_TIMEOUT"},
				Value:   5 * time.Second,
			},
			&cli.BoolFlag{Name: "json", Usage: "print replies as JSON"},
		}, append(cliflags.NATSAuth(), httpFlags()...)...),
		Commands:     commands,
		Action:       rootAction,
		OnUsageError: onUsageError,
		// run prints errors and picks the exit code; cli must not exit.
		ExitErrHandler: func(*cli.Context, error) {},
	}
}

func rootAction(c *cli.Context) error {
	if c.Args().Present() {
		return usageError(c, "unknown command %q", c.Args().First())
	}
	_ = cli.ShowAppHelp(c)
	return cli.Exit("", ExitUsage)
}

func onUsageError(c *cli.Context, err error, _ bool) error {
	return usageError(c, "%v", err)
}

// usageError is a usage error of the command c runs.
func usageError(c *cli.Context, format string, args ...any) error {
	name := c.App.Name
	if c.Command != nil && c.Command.Name != "" && c.Command.Name != name {
		name += " " + c.Command.Name
	}
	return cli.Exit(fmt.Sprintf("%s: %s\nRun '%s --help' for usage.", name, fmt.Sprintf(format, args...), name), ExitUsage)
}

// httpFlags are the global flags of the HTTP face.
func httpFlags() []cli.Flag {
	const cat = "HTTP (instead of NATS)"
	return []cli.Flag{
		&cli.StringFlag{Name: "http", Usage: "talk to the HTTP API at `URL` (http:// or https://HOST:PORT) instead of NATS", EnvVars: []string{"ZKV_HTTP"}, Category: cat},
		&cli.StringFlag{Name: "http-user", Usage: "HTTP basic-auth user `NAME` (with --http-password)", EnvVars: []string{"ZKV_HTTP_USER"}, Category: cat},
		&cli.StringFlag{Name: "http-password", Usage: "HTTP basic-auth password (prefer the environment variable)", EnvVars: []string{"ZKV_HTTP_PASSWORD"}, Category: cat},
		&cli.StringFlag{Name: "http-token", Usage: "HTTP bearer token (prefer the environment variable)", EnvVars: []string{"ZKV_HTTP_TOKEN"}, Category: cat},
		&cli.StringFlag{Name: "http-ca", Usage: "PEM `FILE` of CAs that verify the server's certificate", EnvVars: []string{"ZKV_HTTP_CA"}, Category: cat},
		&cli.StringFlag{Name: "http-cert", Usage: "client certificate `FILE` (with --http-key)", EnvVars: []string{"ZKV_HTTP_CERT"}, Category: cat},
		&cli.StringFlag{Name: "http-key", Usage: "client key `FILE`", EnvVars: []string{"ZKV_HTTP_KEY"}, Category: cat},
	}
}

// globals are the global flags.
type globals struct {
	http    httpOptions
	natsURL string
	auth    bus.Auth
	prefix  string
	timeout time.Duration
	json    bool
}

func parseGlobals(c *cli.Context) (globals, error) {
	g := globals{
		http: httpOptions{
			url: c.String("http"), user: c.String("http-user"), password: c.String("http-password"),
			token: c.String("http-token"), ca: c.String("http-ca"), cert: c.String("http-cert"), key: c.String("http-key"),
		},
		natsURL: c.String("nats"),
		auth:    cliflags.NATSAuthFrom(c),
		prefix:  c.String("subject-prefix"),
		timeout: c.Duration("timeout"),
		json:    c.Bool("json"),
	}
	if err := bus.ValidPrefix(g.prefix); err != nil {
		return g, usageError(c, "--subject-prefix: %v", err)
	}
	if g.timeout <= 0 {
		return g, usageError(c, "--timeout %v is not positive", g.timeout)
	}
	return g, nil
}

// nodeFlag returns --node, validated.
func nodeFlag(c *cli.Context) (string, error) {
	node := c.String("node")
	if node == "" {
		return "", nil
	}
	if err := bus.ValidNodeID(node); err != nil {
		return "", usageError(c, "--node: %v", err)
	}
	return node, nil
}

// connect opens the NATS connection and the client; close closes them.
func connect(g globals) (kv *client.Client, closeConn func(), err error) {
	authOpts, err := g.auth.Options()
	if err != nil {
		return nil, nil, failure(err)
	}
	nc, err := nats.Connect(g.natsURL, append([]nats.Option{nats.Name("kvctl"), nats.Timeout(g.timeout)}, authOpts...)...)
	if err != nil {
		return nil, nil, failure(fmt.Errorf("connect to %s: %w", g.natsURL, err))
	}
	kv, err = client.New(nc, client.WithPrefix(g.prefix), client.WithRequestTimeout(min(client.DefaultRequestTimeout, g.timeout)))
	if err != nil {
		nc.Close()
		return nil, nil, failure(err)
	}
	return kv, nc.Close, nil
}

// session is what every command needs: the global flags and a client,
// of NATS or, with --http, of one node's HTTP API.
type session struct {
	globals
	client *client.Client
	web    *httpAPI
	close  func()
}

// open parses the global flags and connects.
func open(c *cli.Context) (*session, error) {
	g, err := parseGlobals(c)
	if err != nil {
		return nil, err
	}
	if g.http.enabled() {
		if c.String("node") != "" {
			return nil, usageError(c, "--node is for NATS; with --http the node is the one at the URL")
		}
		web, err := newHTTPAPI(g.http)
		if err != nil {
			return nil, usageError(c, "%v", err)
		}
		return &session{globals: g, web: web, close: func() {}}, nil
	}
	kv, closeConn, err := connect(g)
	if err != nil {
		return nil, err
	}
	return &session{globals: g, client: kv, close: closeConn}, nil
}

// deadline is the context of one command: --timeout from now.
func (s *session) deadline(c *cli.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(c.Context, s.timeout)
}

// openWithDeadline opens the session and the command's deadline (its
// --timeout); done releases both.
func openWithDeadline(c *cli.Context) (*session, context.Context, func(), error) {
	g, err := open(c)
	if err != nil {
		return nil, nil, nil, err
	}
	ctx, cancel := g.deadline(c)
	return g, ctx, func() { cancel(); g.close() }, nil
}

// writeAction is put, create or del: op's write through the leader.
func writeAction(op string) cli.ActionFunc {
	return func(c *cli.Context) error {
		node, err := nodeFlag(c)
		if err != nil {
			return err
		}
		w := bus.WriteRequest{Op: op, Acks: c.String("acks")}
		if err := bus.ValidAcks(w.Acks); err != nil {
			return usageError(c, "--acks: %v", err)
		}
		if c.IsSet("if-revision") {
			rev := c.Uint64("if-revision")
			w.IfRevision = &rev
		}
		w.Prefix = c.Bool("prefix")
		if c.IsSet("ttl") {
			ttl := c.Duration("ttl")
			if ttl < time.Millisecond {
				return usageError(c, "--ttl %v: want at least 1ms", ttl)
			}
			w.TTLMS = int64(ttl / time.Millisecond)
		}
		if op == bus.OpDelete || op == bus.OpPurge {
			w.Key, err = keyArg(c)
		} else {
			w.Key, w.Value, err = putArgs(c)
		}
		if err != nil {
			return err
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
		case node == "" && op == bus.OpDelete && w.Prefix:
			reply, err = g.client.DeletePrefix(ctx, w.Key, writeOptions(w)...)
		case node == "" && op == bus.OpDelete:
			reply, err = g.client.Delete(ctx, w.Key, writeOptions(w)...)
		case node == "" && op == bus.OpPurge:
			reply, err = g.client.Purge(ctx, w.Key, writeOptions(w)...)
		case node == "" && op == bus.OpCreate:
			reply, err = g.client.Create(ctx, w.Key, w.Value, writeOptions(w)...)
		case node == "":
			reply, err = g.client.Put(ctx, w.Key, w.Value, writeOptions(w)...)
		default:
			reply, err = g.client.Write(ctx, w, append(writeOptions(w), client.Via(node))...)
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
}

// writeOptions are the client options that carry w's acks and condition.
func writeOptions(w bus.WriteRequest) []client.WriteOption {
	opts := []client.WriteOption{client.WithAcks(w.Acks)}
	if w.IfRevision != nil {
		opts = append(opts, client.WithIfRevision(*w.IfRevision))
	}
	if w.TTLMS > 0 {
		opts = append(opts, client.WithTTL(time.Duration(w.TTLMS)*time.Millisecond))
	}
	return opts
}

// keyArg is the one argument, KEY, of get, del, purge and history.
func keyArg(c *cli.Context) (string, error) {
	if c.NArg() != 1 {
		return "", usageError(c, "want KEY, got %d arguments", c.NArg())
	}
	return c.Args().First(), nil
}

func getAction(c *cli.Context) error {
	key, err := keyArg(c)
	if err != nil {
		return err
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

	opts := []client.ReadOption{client.FromNode(node)}
	switch level := c.String("consistency"); level {
	case bus.ConsistencyLocal:
	case bus.ConsistencyLeader:
		opts = append(opts, client.WithLeaderRead())
	case bus.ConsistencyMinRevision:
		if c.Uint64("min-revision") == 0 {
			return usageError(c, "--consistency min_revision needs --min-revision")
		}
		opts = append(opts, client.WithMinRevision(c.Uint64("min-revision"), 0))
	default:
		return usageError(c, "--consistency %q: want local, leader or min_revision", level)
	}
	rev := c.Uint64("rev")
	if rev > 0 {
		opts = append(opts, client.WithRevision(rev))
	}
	var reply bus.ReadReply
	if g.web != nil {
		reply, err = g.web.get(ctx, key, c.String("consistency"), c.Uint64("min-revision"), rev)
	} else {
		reply, err = g.client.Read(ctx, key, opts...)
	}
	if err != nil {
		return failure(err)
	}
	if g.json {
		if err := printJSON(c.App.Writer, reply); err != nil {
			return err
		}
	} else if reply.Found {
		if _, err := fmt.Fprintln(c.App.Writer, reply.Value); err != nil {
			return err
		}
		fmt.Fprintln(c.App.ErrWriter, answeredBy(reply))
	}
	if !reply.Found {
		return cli.Exit(notFound(reply), ExitNotFound)
	}
	return nil
}

// failure is an error exit with err's one-line description.
func failure(err error) error { return cli.Exit(errorLine(err), ExitError) }

func printJSON(w io.Writer, v any) error {
	_, err := fmt.Fprintf(w, "%s\n", bus.Encode(v))
	return err
}
