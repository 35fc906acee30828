// Package buildtest builds this tree's binaries for the tests that run them as a user
// would (test/daemon, test/load): agentboxd, agentbox and agentbox-init, static and from
// one tree, the way `make build` does, so that the daemon accepts agentbox-init beside it
// as its child binary.
package buildtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// Binaries are the commands Main builds, each into a file of its name.
var Binaries = []string{"agentboxd", "agentbox", "agentbox-init"}

// Main is a TestMain: it builds Binaries into a new temporary directory named after
// prefix, sets *dir to it, runs m, removes the directory and returns m's exit code (1 when
// the build failed, with go build's output on stderr).
func Main(m *testing.M, prefix string, dir *string) int {
	d, err := os.MkdirTemp("", prefix)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(d)
	for _, name := range Binaries {
		cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(d, name), "github.com/agentbox/agentbox/cmd/"+name)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", name, err, out)
			return 1
		}
	}
	*dir = d
	return m.Run()
}
