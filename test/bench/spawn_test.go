package bench

import (
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkAgentSpawnLatency is one cold task, from process start to verdict: `agentbox
// run` of the hello module (its compiled code cached, as every run after a module's first
// has it), against each baseline, one sample of each in turn per round (the order rotates
// each round), so the ratios survive a noisy clock. One op is one round of every series.
// The baselines: a fork/exec of the smallest static binary (the floor) and of `agentbox
// version` (the same binary's Go start, no sandbox); the same module on bare wazero in this
// process (no process, no sandbox); bubblewrap with every namespace (no cgroups, no
// seccomp, no wasm); and crun with memory and pids cgroups (no user namespace, no seccomp,
// no wasm). A baseline this host cannot run is reported unavailable, with the reason.
func BenchmarkAgentSpawnLatency(b *testing.B) {
	bin := agentboxBinary(b)
	cache := b.TempDir()
	run := execRunner("run", "agentbox run", helloOutput, bin, "run", "--cache-dir", cache, helloWAT)
	baselines := []*runner{
		staticTrueRunner(b),
		execRunner("version", "fork/exec agentbox version", "agentbox", bin, "version"),
		wazeroRunner(b, helloWAT, helloOutput),
		bwrapRunner(),
		crunRunner(b),
	}
	all := append([]*runner{run}, baselines...)
	for _, r := range all {
		r.probe()
	}
	if run.why != "" {
		b.Fatalf("agentbox run: %s", run.why)
	}
	b.ResetTimer()
	for i := range b.N {
		for j := range all {
			if r := all[(i+j)%len(all)]; r.why == "" {
				r.sample(b)
			}
		}
	}
	b.StopTimer()
	var ss []*series
	for _, r := range all {
		r.report(b)
		ss = append(ss, r.series)
	}
	ratios(b, run.series, ss[1:]...)
	record(b, nil, ss...)
}

// staticTrueRunner is a fork/exec of staticTrue.
func staticTrueRunner(b *testing.B) *runner {
	const key, name = "true", "fork/exec static true"
	path, err := staticTrue(b.TempDir())
	if err != nil {
		return unavailable(key, name, err.Error())
	}
	return execRunner(key, name, "", path)
}

// crunRunner is crun through its launcher, one bundle.
func crunRunner(b *testing.B) *runner {
	c, why := startCrun(b, 1)
	if why != "" {
		return unavailable(crunKey, crunName, why)
	}
	return c.runner(0)
}

// benchRun is `agentbox run` of module against a fork/exec of `agentbox version`,
// interleaved; cache says whether the compiled code is cached (else every run compiles
// in its sandboxed compile child first).
func benchRun(b *testing.B, module string, cache bool) {
	bin := agentboxBinary(b)
	cacheDir := ""
	if cache {
		cacheDir = b.TempDir()
	}
	run := execRunner("run", "agentbox run", "hello", bin, "run", "--cache-dir", cacheDir, module)
	version := execRunner("version", "fork/exec agentbox version", "agentbox", bin, "version")
	run.probe()
	version.probe()
	if run.why != "" || version.why != "" {
		b.Fatalf("%s%s", run.why, version.why)
	}
	b.ResetTimer()
	for range b.N {
		run.sample(b)
		version.sample(b)
	}
	b.StopTimer()
	run.report(b)
	version.report(b)
	ratios(b, run.series, version.series)
	record(b, nil, run.series, version.series)
}

// BenchmarkRunHelloGoCached: the 2.5 MB Go example with its compiled code cached.
func BenchmarkRunHelloGoCached(b *testing.B) { benchRun(b, helloGo, true) }

// BenchmarkRunHelloGoUncached: the same module compiled on every run.
func BenchmarkRunHelloGoUncached(b *testing.B) { benchRun(b, helloGo, false) }

// BenchmarkGuestCompute is guest compute in the sandbox against bare in-process wazero:
// count.wasm (a fixed loop of 1e8 iterations) less the hello module, each way, so that the
// difference is the loop alone and not the start; the four in turn each round.
// compute-ratio is bare wazero's loop CPU time over the sandbox's (1 = as fast; the target
// is at least 0.95): CPU time, since wall time also counts the waits for a core that other
// work on the host causes; wall-compute-ratio is the same on wall time.
func BenchmarkGuestCompute(b *testing.B) {
	bin := agentboxBinary(b)
	cache := b.TempDir()
	count := filepath.Join("..", "..", "testdata", "modules", "count.wasm")
	runCount := execRunner("run-count", "agentbox run count.wasm", "", bin, "run", "--cache-dir", cache, count)
	runHello := execRunner("run-hello", "agentbox run hello.wasm", helloOutput, bin, "run", "--cache-dir", cache, helloWAT)
	bareCount, bareHello := wazeroRunner(b, count, ""), wazeroRunner(b, helloWAT, helloOutput)
	bareCount.key, bareCount.name = "wazero-count", "wazero in-process count.wasm"
	bareHello.key, bareHello.name = "wazero-hello", "wazero in-process hello.wasm"
	all := []*runner{runCount, runHello, bareCount, bareHello}
	for _, r := range all {
		if r.probe(); r.why != "" {
			b.Fatalf("%s: %s", r.name, r.why)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		for j := range all {
			all[(i+j)%len(all)].sample(b)
		}
	}
	b.StopTimer()
	for _, r := range all {
		r.report(b)
	}
	loop := func(count, hello []time.Duration) time.Duration { return quantile(count, 0.5) - quantile(hello, 0.5) }
	sandboxed, bare := loop(runCount.wall, runHello.wall), loop(bareCount.wall, bareHello.wall)
	sandboxedCPU, bareCPU := loop(runCount.cpu, runHello.cpu), loop(bareCount.cpu, bareHello.cpu)
	values := map[string]float64{"sandbox_loop_ms": ms(sandboxed), "bare_loop_ms": ms(bare),
		"sandbox_loop_cpu_ms": ms(sandboxedCPU), "bare_loop_cpu_ms": ms(bareCPU),
		"compute_ratio": float64(bareCPU) / float64(sandboxedCPU), "wall_compute_ratio": float64(bare) / float64(sandboxed)}
	b.ReportMetric(ms(sandboxed), "sandbox-loop-ms")
	b.ReportMetric(ms(bare), "bare-loop-ms")
	b.ReportMetric(ms(sandboxedCPU), "sandbox-loop-cpu-ms")
	b.ReportMetric(ms(bareCPU), "bare-loop-cpu-ms")
	b.ReportMetric(values["compute_ratio"], "compute-ratio")
	b.ReportMetric(values["wall_compute_ratio"], "wall-compute-ratio")
	record(b, values, runCount.series, runHello.series, bareCount.series, bareHello.series)
}
