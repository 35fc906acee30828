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
	"os"
	"testing"

	"github.com/agentbox/agentbox/internal/buildtest"
)

// bin holds agentboxd, agentbox and agentbox-init, built once for the package from this
// tree (internal/buildtest).
var bin string

func TestMain(m *testing.M) { os.Exit(buildtest.Main(m, "agentbox-load-test-", &bin)) }

// The modules of the load: the shared test modules (testdata/modules/README.md gives
// their outcomes) and this package's holder.
const (
	modules      = "../../testdata/modules/"
	holderModule = "testdata/holder.wasm"
)
