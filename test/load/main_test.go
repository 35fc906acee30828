// Package load puts agentboxd under load and soak: the real daemon (built from this tree),
// the real sandbox and the real embedded JetStream, driven through the real client, with
// hundreds of agents at once. Every verdict is checked, and after the load the daemon and
// the host are checked for leaks: goroutines, fds, threads, RSS, child processes, task
// cgroups, uid slot locks, mounts and scratch directories. Concurrency is asserted by
// state (what the daemon and the host show running), never by timing.
//
// TestLoadConcurrentAgents runs by default (AGENTBOX_LOAD_AGENTS agents, default 120);
// TestSoak runs only with AGENTBOX_SOAK=<duration> (make soak).
package load

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// bin holds agentboxd, agentbox and agentbox-init, built once for the package.
var bin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "agentbox-load-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bin = dir
	code := build(dir)
	if code == 0 {
		code = m.Run()
	}
	os.RemoveAll(dir)
	os.Exit(code)
}

// build compiles the binaries the way `make build` does: static, from one tree, so that
// the daemon accepts agentbox-init beside it as its child binary.
func build(dir string) int {
	for _, pkg := range []string{"agentboxd", "agentbox", "agentbox-init"} {
		cmd := exec.Command("go", "build", "-trimpath", "-o", filepath.Join(dir, pkg), "../../cmd/"+pkg)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "build %s: %v\n%s", pkg, err, out)
			return 1
		}
	}
	return 0
}

// The modules of the load: the shared test modules (testdata/modules/README.md gives
// their outcomes) and this package's holder.
const (
	modules      = "../../testdata/modules/"
	holderModule = "testdata/holder.wasm"
)
