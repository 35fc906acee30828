// Command agentbox runs one WebAssembly (WASI preview 1) module in a sandboxed child
// process and reports the verdict; `agentbox check` says whether this host can do that.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/agentbox/agentbox/sandbox"
)

func main() {
	// A re-executed sandbox child never returns from Init.
	sandbox.Init()
	os.Exit(execute(os.Args[1:]))
}

// execute runs the CLI and returns the process exit code.
func execute(args []string) int {
	code := exitOK
	root := &cobra.Command{
		Use:           "agentbox",
		Short:         "Run untrusted WebAssembly agents in a sandbox",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRunCommand(&code), newCheckCommand(&code), newVersionCommand())
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		fmt.Fprintf(os.Stderr, "agentbox: %v\n", err)
		if code == exitOK {
			code = exitUsage
		}
	}
	return code
}

// version is set at link time by release builds (-ldflags "-X main.version=...").
var version = "dev"

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the agentbox version",
		Args:  cobra.NoArgs,
		Run:   func(cmd *cobra.Command, args []string) { fmt.Println("agentbox", version) },
	}
}
