package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/zkvstore/zkv/internal/httpauth"
)

// authCommand is "kvctl auth hash": it prints a line of a kvserver
// --http-auth-file for a secret read from stdin, so the secret never shows
// in the process list or the shell history.
func authCommand() *cli.Command {
	return &cli.Command{
		Name:  "auth",
		Usage: "make lines of kvserver's --http-auth-file",
		Subcommands: []*cli.Command{{
			Name:      "hash",
			Usage:     "print 'NAME ROLE HASH' for the password (or, with --token, the token) on the first line of stdin",
			ArgsUsage: "NAME",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "role", Value: string(httpauth.RoleRead), Usage: "`ROLE`: read (GET) or readwrite (also PUT)"},
				&cli.BoolFlag{Name: "token", Usage: "the secret is a random bearer token (at least 20 characters): store its SHA-256, not a bcrypt hash"},
			},
			OnUsageError: onUsageError,
			Action: func(c *cli.Context) error {
				if c.NArg() != 1 {
					return usageError(c, "want NAME, got %d arguments (flags go before NAME)", c.NArg())
				}
				name := c.Args().First()
				if err := httpauth.ValidName(name); err != nil {
					return usageError(c, "%v", err)
				}
				role, err := httpauth.ParseRole(c.String("role"))
				if err != nil {
					return usageError(c, "--role: %v", err)
				}
				secret, err := readSecret(c.App.Reader)
				if err != nil {
					return failure(err)
				}
				var hash string
				if c.Bool("token") {
					hash, err = httpauth.HashToken(secret)
				} else {
					hash, err = httpauth.HashPassword(secret, 0)
				}
				if err != nil {
					return failure(err)
				}
				_, err = fmt.Fprintln(c.App.Writer, httpauth.Line(name, role, hash))
				return err
			},
		}},
	}
}

// readSecret reads the first line of r, without its line ending.
func readSecret(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read the secret from stdin: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", errors.New("no secret on stdin (pipe it in: printf '%s' \"$PASSWORD\" | kvctl auth hash NAME)")
	}
	return line, nil
}
