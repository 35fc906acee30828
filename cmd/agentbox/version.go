package main

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"
)

// version is set at link time by release builds (-ldflags "-X main.version=...").
var version = "dev"

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the agentbox version, its VCS commit and the wazero version",
		Args:  cobra.NoArgs,
		Run:   func(cmd *cobra.Command, args []string) { fmt.Fprint(cmd.OutOrStdout(), versionText()) },
	}
}

// versionText says what this binary is, from the build info the Go toolchain records: a
// bug report must name the commit (and whether the tree was dirty) and the wazero that
// compiled the guest, not only a version string someone may have forgotten to set.
func versionText() string {
	v, commit, wazero, goVersion := version, "unknown", "unknown", "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		goVersion = info.GoVersion
		if v == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v = info.Main.Version // go install ...@version
		}
		commit = vcsCommit(info.Settings)
		for _, d := range info.Deps {
			if d.Path == "github.com/tetratelabs/wazero" {
				wazero = d.Version
			}
		}
	}
	return fmt.Sprintf("agentbox %s\ncommit:  %s\nwazero:  %s\ngo:      %s\n", v, commit, wazero, goVersion)
}

// vcsCommit renders vcs.revision, marked when the tree had uncommitted changes.
func vcsCommit(settings []debug.BuildSetting) string {
	rev, modified := "unknown (built without VCS information)", false
	for _, s := range settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if modified {
		rev += " (modified)"
	}
	return strings.TrimSpace(rev)
}
