// Package bench measures agentbox end to end, each figure beside its baselines in the same
// run: `agentbox run` from process start to verdict against a plain fork/exec, bare
// in-process wazero, bubblewrap and crun, sample by sample in turn (clocks on shared
// machines are noisy; a ratio of interleaved samples is not); the daemon's submit→start and
// submit→verdict; throughput, concurrent launches and memory per live agent through
// agentboxd. Every benchmark reports p50/p99 as metrics and appends its raw samples to
// $AGENTBOX_BENCH_SAMPLES (test/bench/samples), from which test/bench/report writes
// bench/REPORT.md. These are benchmarks, never tests: `go test` without -bench runs none.
package bench

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/agentbox/agentbox/internal/privtest"
)

// TestMain lets this binary serve as the crun launcher (crun_linux_test.go): a process in
// a private mount namespace that runs crun for the benchmarks.
func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == helperCrun {
		os.Exit(crunLauncher())
	}
	os.Exit(m.Run())
}

const (
	helperEnv  = "AGENTBOX_BENCH_HELPER"
	helperCrun = "crun-launcher"
)

// The modules: the tiny WAT hello (100 bytes, compile cost negligible), the Go example
// (2.5 MB) and test/load's holder, which sleeps until cancelled.
var (
	helloWAT    = filepath.Join("..", "..", "testdata", "modules", "hello.wasm")
	helloGo     = filepath.Join("..", "..", "examples", "hello", "hello.wasm")
	holderWasm  = filepath.Join("..", "load", "testdata", "holder.wasm")
	helloOutput = "hello from wasm\n"
)

// agentboxBinary is bin/agentbox (make build), or $AGENTBOX_BIN; agentboxd and agentbox-init are
// beside it. Every benchmark here needs root: agentbox maps task uids and manages cgroups.
func agentboxBinary(b *testing.B) string {
	b.Helper()
	bin := os.Getenv("AGENTBOX_BIN")
	if bin == "" {
		bin = filepath.Join("..", "..", "bin", "agentbox")
	}
	if _, err := os.Stat(bin); err != nil {
		b.Fatalf("agentbox binary: %v (run make build, or set AGENTBOX_BIN)", err)
	}
	privtest.RequireRoot(b)
	abs, err := filepath.Abs(bin)
	if err != nil {
		b.Fatal(err)
	}
	return abs
}
