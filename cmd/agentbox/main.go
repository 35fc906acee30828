// Command agentbox runs one WebAssembly (WASI preview 1) module in a sandboxed child
// process and reports the verdict; `agentbox check` says whether this host can do that.
package main

import (
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
	root := &cobra.Command{
		Use:           "agentbox",
		Short:         "Run untrusted WebAssembly agents in a sandbox",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetVersionTemplate(versionText())
	root.AddCommand(newRunCommand(&code), newCheckCommand(&code), newCacheCommand(&code), newVersionCommand())
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
