// Command agentbox runs one WebAssembly (WASI preview 1) module in a sandboxed child
// process and reports the verdict; `agentbox check` says whether this host can do that.
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/agentbox/agentbox/sandbox"
)

func main() {
	// A re-executed sandbox child never returns from Init.
	sandbox.Init()
	os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr))
}

// execute runs the CLI and returns the process exit code. Each command reports its own
// errors and sets code; what reaches here failed before the command ran (a bad flag, an
// unknown command), and is reported as the command's flags asked (--json, --verdict-file).
func execute(args []string, stdout, stderr io.Writer) int {
	code := exitOK
	// --version is our own flag, not cobra's Version field: cobra renders a custom version
	// template with text/template, whose reflection keeps every exported method in the
	// binary (2.5 MB more to seal into a memfd on every run).
	var showVersion bool
	root := &cobra.Command{
		Use:           "agentbox",
		Short:         "Run untrusted WebAssembly agents in a sandbox",
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if showVersion {
				fmt.Fprint(cmd.OutOrStdout(), versionText())
				return nil
			}
			return cmd.Help()
		},
	}
	root.Flags().BoolVar(&showVersion, "version", false, "print the version, its VCS commit and the wazero version")
	root.AddCommand(newRunCommand(&code), newCheckCommand(&code), newCacheCommand(&code), newVersionCommand())
	root.AddCommand(newClientCommands(&code)...)
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(flagError)
	cmd, err := root.ExecuteC()
	if err == nil {
		return code
	}
	_, rest, findErr := root.Find(args)
	if findErr != nil {
		rest = nil
	}
	return outputFor(cmd, rest, stdout, stderr).fail(err)
}
