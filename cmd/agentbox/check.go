package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/agentbox/agentbox/sandbox"
)

func newCheckCommand(code *int) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Report what this host offers the sandbox and what is missing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r := sandbox.Check()
			if !r.Ready {
				*code = exitCheckFailed
			}
			if asJSON {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			}
			printReport(r)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

func printReport(r sandbox.Report) {
	for _, it := range r.Items {
		mark := "ok     "
		switch {
		case !it.OK && it.Required:
			mark = "MISSING"
		case !it.OK:
			mark = "absent "
		}
		fmt.Printf("%s  %-14s %s\n", mark, it.Name, it.Detail)
		if !it.OK && it.Fix != "" {
			fmt.Printf("         %-14s fix: %s\n", "", it.Fix)
		}
	}
	if r.Ready {
		fmt.Println("ready: agentbox can run sandboxed tasks on this host")
	} else {
		fmt.Println("not ready: fix the MISSING items above")
	}
}
