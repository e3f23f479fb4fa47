package main

import (
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/zkvstore/zkv/bus"
)

// putArgs returns the key and the value of put: the VALUE argument, all of
// standard input for "-", or all of the --file.
func putArgs(c *cli.Context) (key, value string, err error) {
	if c.IsSet("file") {
		if c.NArg() != 1 {
			return "", "", usageError(c, "with --file, want KEY only, got %d arguments", c.NArg())
		}
		f, err := os.Open(c.String("file"))
		if err != nil {
			return "", "", usageError(c, "--file: %v", err)
		}
		defer f.Close()
		value, err = readValue(f, c.String("file"))
		return c.Args().First(), value, err
	}
	if c.NArg() != 2 {
		return "", "", usageError(c, "want KEY and VALUE (or KEY and --file PATH), got %d arguments", c.NArg())
	}
	key, value = c.Args().Get(0), c.Args().Get(1)
	if value == "-" {
		value, err = readValue(c.App.Reader, "standard input")
	}
	return key, value, err
}

// readValue reads all of r, unchanged, but stops past bus.MaxValueBytes:
// a longer value is refused with the server's value_too_large before
// anything is sent.
func readValue(r io.Reader, from string) (string, error) {
	data, err := io.ReadAll(io.LimitReader(r, bus.MaxValueBytes+1))
	if err != nil {
		return "", failure(fmt.Errorf("read the value from %s: %w", from, err))
	}
	if len(data) > bus.MaxValueBytes {
		return "", failure(bus.Errorf(bus.CodeValueTooLarge, "the value from %s is over the limit of %d bytes", from, bus.MaxValueBytes))
	}
	return string(data), nil
}
