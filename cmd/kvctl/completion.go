package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// completionScripts are the shell functions that complete kvctl: each asks
// kvctl itself, by running the words typed so far with
// --generate-bash-completion (urfave/cli's protocol), for the commands or
// flags that may come next. They are urfave/cli's scripts, bound to kvctl.
var completionScripts = map[string]string{
	"bash": `# bash completion of kvctl: source <(kvctl completion bash)
_kvctl_complete() {
  local cur prev words cword
  COMPREPLY=()
  if declare -F _init_completion >/dev/null 2>&1; then
    _init_completion -n "=:" || return
  else
    cur="${COMP_WORDS[COMP_CWORD]}"
    words=("${COMP_WORDS[@]}")
    cword=$COMP_CWORD
  fi
  local request=("${words[@]:0:cword}")
  if [[ "$cur" == -* ]]; then
    request+=("$cur")
  fi
  local IFS=$'\n'
  COMPREPLY=($(compgen -W "$("${request[@]}" --generate-bash-completion 2>/dev/null)" -- "$cur"))
}
complete -o bashdefault -o default -F _kvctl_complete kvctl
`,
	"zsh": `#compdef kvctl
# zsh completion of kvctl: source <(kvctl completion zsh), after compinit
_kvctl_complete() {
  local -a opts
  local cur=${words[-1]}
  if [[ "$cur" == -* ]]; then
    opts=("${(@f)$(${words[@]:0:#words[@]-1} ${cur} --generate-bash-completion 2>/dev/null)}")
  else
    opts=("${(@f)$(${words[@]:0:#words[@]-1} --generate-bash-completion 2>/dev/null)}")
  fi
  if [[ "${opts[1]}" != "" ]]; then
    _describe 'values' opts
  else
    _files
  fi
}
compdef _kvctl_complete kvctl
`,
}

func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print the shell script that completes kvctl's commands and flags",
		ArgsUsage: "bash|zsh",
		Description: `Load it into the current shell with
   source <(kvctl completion bash)     # or zsh, after compinit
or add that line to ~/.bashrc (~/.zshrc).`,
		Action: completionAction,
		BashComplete: func(c *cli.Context) {
			fmt.Fprintln(c.App.Writer, "bash\nzsh")
		},
	}
}

func completionAction(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageError(c, "want a shell, bash or zsh, got %d arguments", c.NArg())
	}
	script, ok := completionScripts[c.Args().First()]
	if !ok {
		return usageError(c, "shell %q: want bash or zsh", c.Args().First())
	}
	_, err := fmt.Fprint(c.App.Writer, script)
	return err
}
