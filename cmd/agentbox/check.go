package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/agentbox/agentbox/sandbox"
)

func newCheckCommand(code *int) *cobra.Command {
	var asJSON bool
	var cacheDir string
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Report what this host offers the sandbox and what is missing",
		Long: `Tries, for real, everything a task needs: kernel, root and CAP_SYS_ADMIN, a static
binary, seccomp, namespaces, cgroups with limits, the uid-lock directory (` + sandbox.SlotLockDir + `)
and the compile cache; then the hardening the kernel may or may not offer (Landlock, time
namespaces, per-task speculation control: warnings, not failures); and ends with a sandboxed
run of a tiny built-in module through the cache. Without root or CAP_SYS_ADMIN the checks that need them are reported as skipped.
Exit code 0 when this host can run tasks, 1 when it cannot, 2 for a usage error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r := sandbox.CheckConfig(sandbox.Config{CacheDir: cacheDir})
			if !r.Ready {
				*code = exitCheckFailed
			}
			if asJSON {
				cmd.OutOrStdout().Write(encodeJSON(r))
				return nil
			}
			printReport(cmd.OutOrStdout(), r)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as one JSON object")
	cmd.Flags().StringVar(&cacheDir, "cache-dir", sandbox.DefaultCacheDir, "the compile cache to check, as agentbox run --cache-dir (\"\": none)")
	return cmd
}

func printReport(w io.Writer, r sandbox.Report) {
	for _, it := range r.Items {
		fmt.Fprintf(w, "%-7s  %-14s %s\n", mark(it), it.Name, it.Detail)
		if !it.OK && it.Fix != "" {
			fmt.Fprintf(w, "%-7s  %-14s fix: %s\n", "", "", it.Fix)
		}
	}
	if r.Ready {
		fmt.Fprintln(w, "ready: agentbox can run sandboxed tasks on this host")
	} else {
		fmt.Fprintln(w, "not ready: fix the MISSING items above")
	}
}

// mark is the first column of a report line.
func mark(it sandbox.CheckItem) string {
	switch {
	case it.OK:
		return "ok"
	case it.Skipped:
		return "skipped"
	case it.Required:
		return "MISSING"
	}
	return "WARN"
}
