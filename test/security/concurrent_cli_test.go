//go:build linux

package security

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/agentbox/agentbox/internal/privtest"
)

// TestConcurrentCLIRuns is a CI runner's first minute after an agent update: 24 separate
// `agentbox run` processes on one empty compile cache, the same and different modules, half
// started at once and half while the Go module's compile is under way. Each process is its
// own supervisor (its own cgroup manager, uid locks and cache locks, on cgroup v1 and v2);
// every run must be ok with the module's own output, and the cache must end with one entry
// per module and no scratch.
func TestConcurrentCLIRuns(t *testing.T) {
	privtest.RequireRoot(t)
	cli := buildCLI(t, t.TempDir())
	cache := filepath.Join(t.TempDir(), "cache")
	modules := []struct{ path, stdout string }{
		{"../../testdata/modules/hello.wasm", "hello from wasm\n"},
		{"../../examples/hello/hello.wasm", "hello from an agent inside agentbox\n"},
	}
	type run struct {
		out, errb bytes.Buffer
		err       error
	}
	runs := make([]run, 24)
	var wg sync.WaitGroup
	start := func(i int) {
		defer wg.Done()
		m := modules[i%len(modules)]
		cmd := exec.Command(cli, "run", "--cache-dir", cache, "--timeout", "10m", m.path)
		cmd.Stdout, cmd.Stderr = &runs[i].out, &runs[i].errb
		runs[i].err = cmd.Run()
	}
	wg.Add(len(runs))
	for i := range len(runs) / 2 {
		go start(i)
	}
	// The second half starts once some compile is under way (a scratch directory exists)
	// or done (an entry exists): a state, not a delay.
	deadline := time.Now().Add(stateDeadline)
	for {
		scratch, _ := filepath.Glob(filepath.Join(cache, "wazero-*", "scratch", "*"))
		entries, _ := filepath.Glob(filepath.Join(cache, "wazero-*", "sha256-*"))
		if len(scratch)+len(entries) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no compile started within the deadline")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for i := len(runs) / 2; i < len(runs); i++ {
		go start(i)
	}
	wg.Wait()
	for i, r := range runs {
		m := modules[i%len(modules)]
		if r.err != nil || r.out.String() != m.stdout || strings.Contains(r.errb.String(), "warning") {
			t.Errorf("run %d (%s): %v, stdout %q, stderr %q", i, m.path, r.err, r.out.String(), r.errb.String())
		}
	}
	entries, _ := filepath.Glob(filepath.Join(cache, "wazero-*", "sha256-*"))
	scratch, _ := filepath.Glob(filepath.Join(cache, "wazero-*", "scratch", "*"))
	if len(entries) != len(modules) || len(scratch) != 0 {
		t.Fatalf("cache holds entries %v and scratch %v; want %d entries, no scratch", entries, scratch, len(modules))
	}
}
