// Package bench measures agentbox end to end: the time from `agentbox run` starting to its
// verdict, against a plain fork/exec of the same binary, as a ratio within one run (clocks
// on shared machines are noisy; a ratio of interleaved samples is not).
package bench

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/agentbox/agentbox/internal/privtest"
)

func binary(b *testing.B) string {
	b.Helper()
	bin := os.Getenv("AGENTBOX_BIN")
	if bin == "" {
		bin = "../../bin/agentbox"
	}
	if _, err := os.Stat(bin); err != nil {
		b.Fatalf("agentbox binary: %v (run make build, or set AGENTBOX_BIN)", err)
	}
	privtest.RequireRoot(b) // agentbox run maps task uids and manages cgroups
	return bin
}

func timed(b *testing.B, name string, args ...string) time.Duration {
	start := time.Now()
	out, err := exec.Command(name, args...).CombinedOutput()
	d := time.Since(start)
	if err != nil {
		b.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return d
}

// quantile returns the q-quantile (nearest rank) of sorted samples.
func quantile(sorted []time.Duration, q float64) time.Duration {
	i := int(q*float64(len(sorted)-1) + 0.5)
	return sorted[i]
}

func benchRun(b *testing.B, module string, cache bool) {
	bin := binary(b)
	cacheDir := ""
	if cache {
		cacheDir = b.TempDir()
	}
	args := []string{"run", "--cache-dir", cacheDir, module}
	timed(b, bin, args...) // warm: page cache, compile cache
	var run, plain []time.Duration
	b.ResetTimer()
	for range b.N {
		run = append(run, timed(b, bin, args...))
		plain = append(plain, timed(b, bin, "version"))
	}
	b.StopTimer()
	slices.Sort(run)
	slices.Sort(plain)
	b.ReportMetric(float64(quantile(run, 0.5).Microseconds())/1000, "run-p50-ms")
	b.ReportMetric(float64(quantile(run, 0.99).Microseconds())/1000, "run-p99-ms")
	b.ReportMetric(float64(quantile(plain, 0.5).Microseconds())/1000, "exec-p50-ms")
	b.ReportMetric(float64(quantile(plain, 0.99).Microseconds())/1000, "exec-p99-ms")
	b.ReportMetric(float64(quantile(run, 0.5))/float64(quantile(plain, 0.5)), "p50-ratio")
	b.ReportMetric(float64(quantile(run, 0.99))/float64(quantile(plain, 0.99)), "p99-ratio")
}

// BenchmarkRunHelloWAT: the tiny hello module (compile cost negligible): sandbox overhead.
func BenchmarkRunHelloWAT(b *testing.B) {
	benchRun(b, filepath.Join("..", "..", "testdata", "modules", "hello.wasm"), false)
}

// BenchmarkRunHelloGoCached: the 2.5 MB Go example with its compiled code cached.
func BenchmarkRunHelloGoCached(b *testing.B) {
	benchRun(b, filepath.Join("..", "..", "examples", "hello", "hello.wasm"), true)
}

// BenchmarkRunHelloGoUncached: the same module compiled on every run.
func BenchmarkRunHelloGoUncached(b *testing.B) {
	benchRun(b, filepath.Join("..", "..", "examples", "hello", "hello.wasm"), false)
}
