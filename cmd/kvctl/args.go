package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// hoistFlags rewrites args for urfave/cli v2, which stops parsing flags at
// the first argument: flags given after the arguments move in front of
// them, global flags before the command and the command's flags after it.
// Everything after "--" stays an argument. Unknown flags stay with the
// command, for cli to report. A completion request (last argument
// --generate-bash-completion) stays as it is: cli ignores one after "--".
func hoistFlags(app *cli.App, args []string) []string {
	if len(args) < 2 || args[len(args)-1] == completionFlag {
		return args
	}
	global := flagArity(app.Flags)
	var globals, cmdFlags, positional []string
	i := 1
	// Global flags before the command.
	for ; i < len(args) && isFlag(args[i]); i++ {
		if args[i] == "--" {
			return args
		}
		globals = append(globals, args[i])
		if takesValue(global, args[i]) && i+1 < len(args) {
			i++
			globals = append(globals, args[i])
		}
	}
	if i == len(args) {
		return args
	}
	var cmd *cli.Command
	for _, c := range app.Commands {
		if c.HasName(args[i]) {
			cmd = c
		}
	}
	// A command with subcommands (snapshot save|restore): the subcommand
	// takes the flags.
	name := []string{args[i]}
	if cmd != nil && len(cmd.Subcommands) > 0 && i+1 < len(args) {
		var sub *cli.Command
		for _, c := range cmd.Subcommands {
			if c.HasName(args[i+1]) {
				sub = c
			}
		}
		if sub != nil {
			cmd, name = sub, append(name, sub.Name)
			i++
		}
	}
	if cmd == nil || len(cmd.Subcommands) > 0 {
		return args
	}
	local := flagArity(cmd.Flags)
	for i++; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			positional = append(positional, args[i+1:]...)
			i = len(args)
		case !isFlag(a):
			positional = append(positional, a)
		case isKnown(global, a) && !isKnown(local, a):
			globals = append(globals, a)
			if takesValue(global, a) && i+1 < len(args) {
				i++
				globals = append(globals, args[i])
			}
		default:
			cmdFlags = append(cmdFlags, a)
			if takesValue(local, a) && i+1 < len(args) {
				i++
				cmdFlags = append(cmdFlags, args[i])
			}
		}
	}
	out := append([]string{args[0]}, globals...)
	out = append(out, name...)
	out = append(out, cmdFlags...)
	if len(positional) > 0 {
		out = append(out, "--")
		out = append(out, positional...)
	}
	return out
}

// completionFlag asks cli for the words that may follow the others.
const completionFlag = "--generate-bash-completion"

// flagArity maps every name of flags to whether it takes a value.
func flagArity(flags []cli.Flag) map[string]bool {
	m := make(map[string]bool)
	for _, f := range flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			m[n] = !isBool
		}
	}
	return m
}

// isFlag reports whether a looks like a flag ("-" alone is an argument).
func isFlag(a string) bool { return len(a) > 1 && a[0] == '-' }

func flagName(a string) (name string, hasValue bool) {
	name = strings.TrimLeft(a, "-")
	name, _, hasValue = strings.Cut(name, "=")
	return name, hasValue
}

func isKnown(m map[string]bool, a string) bool {
	name, _ := flagName(a)
	_, ok := m[name]
	return ok
}

// takesValue reports whether flag a needs the next argument as its value.
func takesValue(m map[string]bool, a string) bool {
	name, hasValue := flagName(a)
	return m[name] && !hasValue
}
