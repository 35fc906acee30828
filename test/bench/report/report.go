package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/agentbox/agentbox/test/bench/samples"
)

// The benchmarks the report reads by name.
const (
	benchSpawn    = "BenchmarkAgentSpawnLatency"
	benchDaemon   = "BenchmarkDaemonSubmitToVerdict"
	benchHotGo    = "BenchmarkDaemonHotGoModule"
	benchGoCached = "BenchmarkRunHelloGoCached"
	benchGoCold   = "BenchmarkRunHelloGoUncached"
	benchThrough  = "BenchmarkTaskThroughput"
	benchScaling  = "BenchmarkConcurrentScaling"
	benchMemory   = "BenchmarkMemoryPerAgent"
	benchCompute  = "BenchmarkGuestCompute"
	e2ePkg        = "github.com/agentbox/agentbox/test/bench"
)

// baselineText says what each series of BenchmarkAgentSpawnLatency measured.
var baselineText = map[string]string{
	"run": "`agentbox run --cache-dir DIR testdata/modules/hello.wasm` (100-byte WAT module, its compiled code cached): " +
		"the whole sandbox: user, pid, mount, net, ipc, uts, cgroup and time namespaces, cgroup memory/CPU/pids limits, an " +
		"empty read-only root, no capabilities, seccomp, the child's two execs, wazero.",
	"true": "fork/exec and wait of a 129-byte static ELF that only calls exit(0), written by the benchmark: the floor of " +
		"starting any process from Go's os/exec.",
	"version": "fork/exec of `agentbox version`: the same static Go binary starting its runtime, no sandbox.",
	"wazero": "the same hello.wasm on bare wazero inside the benchmark's own process: a new runtime with WASI, the compiled " +
		"code from a compilation cache, instantiate and `_start`: no process, no sandbox, no limits. CPU is the " +
		"benchmark process's own rusage over the run.",
	"bwrap": "`bwrap --unshare-all --die-with-parent --ro-bind / / /bin/true`: user, pid, net, ipc, uts and cgroup " +
		"namespaces and a mount namespace; no cgroups, no seccomp, no wasm.",
	"crun": "`crun run` of an OCI bundle written by the benchmark (rootfs: the static true; memory 256 MiB and pids 64 in a " +
		"cgroup of its own; pid, net, ipc, uts, mount and cgroup namespaces; no user namespace, no seccomp, no wasm). " +
		"crun 1.8 refuses this host's hybrid cgroup layout, so it runs from a launcher (the benchmark binary re-executed " +
		"in a private mount namespace, where /sys/fs/cgroup/unified is detached; the host's mounts are untouched) that " +
		"times each `crun run` itself.",
}

func writeReport(w io.Writer, d data, plot, benchFile, samplesFile string) {
	m := d.machine
	fmt.Fprintf(w, "# agentbox benchmark report\n\n")
	fmt.Fprintf(w, "Written by `make bench` (scripts/bench.sh, then `go run ./test/bench/report`) from one run: "+
		"`%s` (the `go test -bench -benchmem` output) and `%s` (every raw sample). Each end-to-end figure is measured "+
		"beside its baselines in the same benchmark, one sample of each in turn, so the ratios hold on a noisy clock; "+
		"absolute times move with the load of the machine. Quantiles are nearest-rank.\n\n", benchFile, samplesFile)
	fmt.Fprintf(w, "| | |\n| --- | --- |\n| date | %s |\n| kernel | Linux %s |\n| cores | %d (%s) |\n| memory | %s |\n"+
		"| cgroups | %s |\n| Go | %s |\n| commit | %s |\n| bubblewrap | %s |\n| crun | %s |\n"+
		"| load average, 1 / 5 / 15 min, at the end | %s (the machine is shared: other work ran beside the benchmarks) |\n\n",
		m.date, m.kernel, m.cores, m.cpu, m.memory, m.cgroups, m.goVersion, m.commit, orNone(m.bwrap), orNone(firstLine(m.crun)), m.load)
	if len(d.out.failures) > 0 {
		fmt.Fprintf(w, "**Failures in this run:** `%s`\n\n", strings.Join(d.out.failures, "`, `"))
	}
	writeTargets(w, d)
	writeSpawn(w, d, plot)
	writeProfile(w, d.profile)
	writeDaemon(w, d)
	writeThroughput(w, d)
	writeDaemonProfile(w, d.daemonProfile)
	writeScaling(w, d)
	writeMemory(w, d)
	writeCompute(w, d)
	writePackages(w, d)
	writeGaps(w, d)
}

func orNone(s string) string {
	if s == "" {
		return "not installed"
	}
	return s
}

// target is one target of issue 9 with what this run measured.
type target struct {
	what, measured string
	met            int // 1 met, 0 not met, -1 not measured
}

func writeTargets(w io.Writer, d data) {
	fmt.Fprintf(w, "## The targets of issue 9\n\n")
	fmt.Fprintf(w, "Measured as the code stands today: `agentbox run` spawns a fresh sandbox child for its one task; "+
		"the daemon gives a task the hot child of its module if one is ready (up to 4 modules keep one: a child past its "+
		"exec, behind its filter, the module's compiled code loaded), else a child from its warm pool (4 waiting in "+
		"stage one, in their namespaces and cgroups), else one started for it. Where a target is not met, the last "+
		"section says where the time goes, from the profiles and the daemon's own stamps.\n\n")
	fmt.Fprintf(w, "| target | measured | |\n| --- | --- | --- |\n")
	for _, t := range targets(d) {
		status := map[int]string{1: "met", 0: "**not met**", -1: "not measured"}[t.met]
		fmt.Fprintf(w, "| %s | %s | %s |\n", t.what, t.measured, status)
	}
	fmt.Fprintln(w)
}

func targets(d data) []target {
	var ts []target
	add := func(what string, ok bool, measured string, met bool) {
		t := target{what: what, measured: measured, met: -1}
		if ok {
			t.met = 0
			if met {
				t.met = 1
			}
		} else {
			t.measured = "not in this run"
		}
		ts = append(ts, t)
	}
	run, ok1 := d.record(benchSpawn, "run")
	bwrap, ok2 := d.record(benchSpawn, "bwrap")
	ok := ok1 && ok2 && bwrap.Unavailable == "" && len(bwrap.WallMS) > 0
	if ok {
		r := q(run.WallMS, 0.5) / q(bwrap.WallMS, 0.5)
		add("one-shot `agentbox run` of the hello module: p50 within 2.5× bubblewrap `--unshare-all`", true,
			fmt.Sprintf("%s× (%s against %s ms)", fmtFloat(r, 2), fmtMS(q(run.WallMS, 0.5)), fmtMS(q(bwrap.WallMS, 0.5))), r <= 2.5)
	} else {
		add("one-shot `agentbox run` of the hello module: p50 within 2.5× bubblewrap `--unshare-all`", false, "", false)
	}
	add("one-shot `agentbox run`: CPU per run ≤ 10 ms", ok1 && len(run.CPUMS) > 0,
		fmtMS(q(run.CPUMS, 0.5))+" ms (p50, rusage of the CLI and its sandbox child)", q(run.CPUMS, 0.5) <= 10)
	guest, okg := d.record(benchDaemon, "daemon-guest-start")
	add("daemon: submit→guest start p50 ≤ 1 ms, p99 ≤ 5 ms", okg,
		fmt.Sprintf("p50 %s, p99 %s ms", fmtMS(q(guest.WallMS, 0.5)), fmtMS(q(guest.WallMS, 0.99))),
		q(guest.WallMS, 0.5) <= 1 && q(guest.WallMS, 0.99) <= 5)
	verdict, okv := d.record(benchDaemon, "daemon-verdict")
	add("daemon: submit→verdict of the hello module p50 ≤ 3 ms", okv, "p50 "+fmtMS(q(verdict.WallMS, 0.5))+" ms", q(verdict.WallMS, 0.5) <= 3)
	rate, okr := d.out.metric(benchThrough, "daemon-tasks/s")
	add("daemon: ≥ 500 tiny tasks/s on 2 cores, every verdict correct", okr,
		fmtFloat(rate, 0)+" tasks/s (every verdict ok)", rate >= 500)
	avail, oka := d.out.metric(benchMemory, "memavail-B/agent")
	pss, okp := d.out.metric(benchMemory, "pss+kmem-B/agent")
	add("≤ 2.5 MB of host memory per idle agent (MemAvailable drop, and PSS + cgroup kernel memory)", oka && okp,
		fmt.Sprintf("%s MB (MemAvailable), %s MB (PSS + kernel)", fmtFloat(avail/1e6, 2), fmtFloat(pss/1e6, 2)),
		avail <= 2.5e6 && pss <= 2.5e6)
	launch, okl := d.out.metric(benchScaling+"/1000", "launch-p50-ms")
	wrong, _ := d.out.metric(benchScaling+"/1000", "wrong-verdicts")
	add("1,000 concurrent agents launched in ≤ 5 s, every verdict correct", okl,
		fmt.Sprintf("%s s, %d wrong verdicts", fmtFloat(launch/1000, 1), int(wrong)), launch <= 5000 && wrong == 0)
	hot, okh := d.record(benchHotGo, "daemon-verdict")
	add("hot modules: the cached Go agent through the daemon, submit→verdict p50 ≤ 30 ms", okh,
		"p50 "+fmtMS(q(hot.WallMS, 0.5))+" ms", q(hot.WallMS, 0.5) <= 30)
	ratio, okc := d.out.metric(benchCompute, "compute-ratio")
	add("guest compute ≥ 0.95× bare wazero on a tight loop, deadlines still enforced from outside", okc,
		fmtFloat(ratio, 2)+"× (bare loop CPU time over the sandbox's; see below)", ratio >= 0.95)
	return ts
}

func writeSpawn(w io.Writer, d data, plot string) {
	recs := d.series(benchSpawn)
	if len(recs) == 0 {
		return
	}
	run, _ := d.record(benchSpawn, "run")
	fmt.Fprintf(w, "## One cold task: `agentbox run` against its baselines (%s)\n\n", benchSpawn)
	fmt.Fprintf(w, "Process start to verdict, %d samples of each series, interleaved (the order rotates each round).\n\n", len(run.WallMS))
	fmt.Fprintf(w, "| series | p50 ms | p99 ms | CPU/run ms (p50) | agentbox run ÷ this, p50 | p99 |\n| --- | ---: | ---: | ---: | ---: | ---: |\n")
	for _, r := range recs {
		if r.Unavailable != "" {
			fmt.Fprintf(w, "| %s | unavailable on this host: %s | | | | |\n", r.Series, oneLine(r.Unavailable))
			continue
		}
		ratio50, ratio99 := "—", "—"
		if r.Key != "run" {
			ratio50 = fmtFloat(q(run.WallMS, 0.5)/q(r.WallMS, 0.5), 2) + "×"
			ratio99 = fmtFloat(q(run.WallMS, 0.99)/q(r.WallMS, 0.99), 2) + "×"
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s |\n", r.Series, fmtMS(q(r.WallMS, 0.5)), fmtMS(q(r.WallMS, 0.99)),
			cpuOf(r), ratio50, ratio99)
	}
	fmt.Fprintf(w, "\n![latency distribution: the share of runs done within each latency, log scale](%s)\n\n", plot)
	fmt.Fprintf(w, "What each series measured:\n\n")
	for _, r := range recs {
		fmt.Fprintf(w, "- **%s**: %s\n", r.Series, baselineText[r.Key])
	}
	fmt.Fprintln(w)
	writeGoExample(w, d)
}

func writeGoExample(w io.Writer, d data) {
	if _, ok := d.record(benchGoCached, "run"); !ok {
		return
	}
	fmt.Fprintf(w, "The 2.5 MB Go example (`examples/hello`) against a fork/exec of `agentbox version`, interleaved:\n\n")
	fmt.Fprintf(w, "| | runs | agentbox run p50 / p99 ms | CPU/run ms | agentbox version p50 / p99 ms | ratio p50 / p99 |\n| --- | ---: | ---: | ---: | ---: | ---: |\n")
	for _, b := range []struct{ name, what string }{{benchGoCached, "compiled code cached"}, {benchGoCold, "no cache: a sandboxed compile, then the run"}} {
		run, ok1 := d.record(b.name, "run")
		ver, ok2 := d.record(b.name, "version")
		if !ok1 || !ok2 {
			continue
		}
		fmt.Fprintf(w, "| %s | %d | %s / %s | %s | %s / %s | %s× / %s× |\n", b.what, len(run.WallMS),
			fmtMS(q(run.WallMS, 0.5)), fmtMS(q(run.WallMS, 0.99)), cpuOf(run), fmtMS(q(ver.WallMS, 0.5)), fmtMS(q(ver.WallMS, 0.99)),
			fmtFloat(q(run.WallMS, 0.5)/q(ver.WallMS, 0.5), 1), fmtFloat(q(run.WallMS, 0.99)/q(ver.WallMS, 0.99), 1))
	}
	fmt.Fprintln(w)
}

func writeDaemon(w io.Writer, d data) {
	fmt.Fprintf(w, "## Through agentboxd: submit→guest start and submit→verdict (%s, %s)\n\n", benchDaemon, benchHotGo)
	fmt.Fprintf(w, "Submit over the unix socket, then a long-poll wait for the final record, interleaved with `agentbox run` "+
		"of the same module (same agentbox-init, same compile cache), a second daemon without hot children "+
		"(`--hot-modules 0`: its warm pool only), a third with neither (`--warm-pool 0 --hot-modules 0`: every "+
		"task's child started when the task comes), and a fourth as it ships but with JetStream's fsyncs relaxed "+
		"(`--sync-interval 1s`: written to disk once a second, not before each write is acknowledged; a crash can lose "+
		"the last second's records). Each module ran twice in each daemon before the timed runs, so "+
		"that it has its hot child; after each task the benchmark waits until that daemon's warm pool is full and its hot "+
		"child ready again (its /metrics), so that no refill runs beside the next sample. Guest start is the guest's "+
		"first stdout byte as the attempt records it. The daemon's CPU per task is its own and its reaped children's, "+
		"over the run, less what the benchmark's own scrapes cost it (measured at rest).\n\n")
	fmt.Fprintf(w, "| module | runs | submit→guest start p50 / p99 ms | submit→verdict p50 / p99 ms | agentbox run p50 / p99 ms | daemon ÷ run, p50 | daemon CPU/task ms |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, b := range []struct{ name, module string }{{benchDaemon, "hello.wasm (WAT)"}, {benchHotGo, "examples/hello (Go, cached)"}} {
		for i, way := range daemonWays {
			g, ok1 := d.record(b.name, way.prefix+"guest-start")
			v, ok2 := d.record(b.name, way.prefix+"verdict")
			r, ok3 := d.record(b.name, "run")
			if !ok1 || !ok2 || !ok3 {
				continue
			}
			label := ""
			if i > 0 {
				label = ", " + way.label
			}
			cpu, _ := d.out.metric(b.name, way.prefix+"cpu-ms/task")
			fmt.Fprintf(w, "| %s%s | %d | %s / %s | %s / %s | %s / %s | %s× | %s |\n", b.module, label, len(v.WallMS),
				fmtMS(q(g.WallMS, 0.5)), fmtMS(q(g.WallMS, 0.99)), fmtMS(q(v.WallMS, 0.5)), fmtMS(q(v.WallMS, 0.99)),
				fmtMS(q(r.WallMS, 0.5)), fmtMS(q(r.WallMS, 0.99)), fmtFloat(q(v.WallMS, 0.5)/q(r.WallMS, 0.5), 2), fmtFloat(cpu, 1))
		}
	}
	fmt.Fprintln(w)
	var floors []string
	for _, b := range []struct{ name, module string }{{benchDaemon, "hello.wasm"}, {benchHotGo, "examples/hello"}} {
		if r, ok := d.record(b.name, "wazero-instantiate"); ok && len(r.WallMS) > 0 {
			floors = append(floors, fmt.Sprintf("%s %s ms (p50; p99 %s)", b.module, fmtMS(q(r.WallMS, 0.5)), fmtMS(q(r.WallMS, 0.99))))
		}
	}
	if len(floors) > 0 {
		fmt.Fprintf(w, "The floor of a hot child's task, interleaved with the above: bare wazero in the benchmark's own "+
			"process instantiating the module from code it compiled beforehand and running it to its end, with no "+
			"process, sandbox, daemon or durable write around it: %s.\n\n", strings.Join(floors, ", "))
	}
	writeDaemonSteps(w, d)
}

// daemonWays are the three daemons of benchDaemon and benchHotGo: their samples' key
// prefix and their column label.
var daemonWays = []struct{ prefix, label string }{
	{"daemon-", "agentboxd"},
	{"daemon-nohot-", "`--hot-modules 0`"},
	{"daemon-nopool-", "`--warm-pool 0 --hot-modules 0`"},
	{"daemon-nosync-", "`--sync-interval 1s`"},
}

// daemonStepText says what each step of test/bench's daemonSteps holds, in its order.
var daemonStepText = []struct{ key, text string }{
	{"accept", "submit → the record's creation stamp: the client, the socket, HTTP, the request's checks, the module's lookup"},
	{"queue", "→ the attempt's start stamp: the queue message, then the record, written; the delivery; the record read"},
	{"spawn", "→ the guest's first stdout byte: the start's compare-and-set, the module from memory, the sandbox's handoff or spawn, the exec, wazero"},
	{"run", "→ the attempt's end stamp: the guest's run and exit, the sandbox's cleanup, the verdict written, the record read"},
	{"final", "→ the client has the final record: its compare-and-set, the watch, the long poll's reply"},
}

// writeDaemonSteps splits the hello module's submit→verdict at the daemon's own stamps.
func writeDaemonSteps(w io.Writer, d data) {
	var ways []int
	for i, way := range daemonWays {
		if _, ok := d.record(benchDaemon, way.prefix+"step-accept"); ok {
			ways = append(ways, i)
		}
	}
	if len(ways) == 0 {
		return
	}
	fmt.Fprintf(w, "Where the hello module's submit→verdict goes, step by step, from the stamps its record carries (the "+
		"daemon stamps on the host's wall clock, as the client does). Every write is acknowledged by JetStream after its "+
		"fsync, but with `--sync-interval`. p50 of each step, ms; the p50s of the steps need not add up to the p50 of "+
		"the whole:\n\n| step |")
	for _, i := range ways {
		fmt.Fprintf(w, " %s |", daemonWays[i].label)
	}
	fmt.Fprintf(w, "\n| ---")
	for range ways {
		fmt.Fprintf(w, " | ---:")
	}
	fmt.Fprintf(w, " |\n")
	sums := make([]float64, len(ways))
	for _, st := range daemonStepText {
		fmt.Fprintf(w, "| %s |", st.text)
		for j, i := range ways {
			r, ok := d.record(benchDaemon, daemonWays[i].prefix+"step-"+st.key)
			if !ok || len(r.WallMS) == 0 {
				fmt.Fprintf(w, " — |")
				continue
			}
			p := q(r.WallMS, 0.5)
			sums[j] += p
			fmt.Fprintf(w, " %s |", fmtMS(p))
		}
		fmt.Fprintf(w, "\n")
	}
	fmt.Fprintf(w, "| the steps' p50s added up |")
	for j := range ways {
		fmt.Fprintf(w, " %s |", fmtMS(sums[j]))
	}
	fmt.Fprintf(w, "\n| submit→verdict, p50 |")
	for _, i := range ways {
		v, _ := d.record(benchDaemon, daemonWays[i].prefix+"verdict")
		fmt.Fprintf(w, " %s |", fmtMS(q(v.WallMS, 0.5)))
	}
	fmt.Fprintf(w, "\n\n")
}

func writeThroughput(w io.Writer, d data) {
	recs := d.series(benchThrough)
	if len(recs) == 0 {
		return
	}
	r, _ := d.out.find(benchThrough)
	fmt.Fprintf(w, "## Throughput: tiny tasks per second (%s)\n\n", benchThrough)
	fmt.Fprintf(w, "Rounds of 64 hello tasks per way, 8 at once (the daemon with 8 slots, one batch submit, then a wait "+
		"on each), the ways in turn, %d rounds; the median round. Every verdict is checked.\n\n", r.n)
	fmt.Fprintf(w, "| way | tasks/s | CPU/task ms | task latency in a round, p50 / p99 ms |\n| --- | ---: | ---: | ---: |\n")
	for _, s := range recs {
		if s.Unavailable != "" {
			fmt.Fprintf(w, "| %s | unavailable on this host: %s | | |\n", s.Series, oneLine(s.Unavailable))
			continue
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s / %s |\n", s.Series, fmtFloat(r.metrics[s.Key+"-tasks/s"], 0),
			fmtFloat(r.metrics[s.Key+"-cpu-ms/task"], 1), fmtMS(q(s.WallMS, 0.5)), fmtMS(q(s.WallMS, 0.99)))
	}
	fmt.Fprintln(w)
}

func writeScaling(w io.Writer, d data) {
	fmt.Fprintf(w, "## Concurrent launches through agentboxd (%s)\n\n", benchScaling)
	fmt.Fprintf(w, "n holders (test/load's module, asleep until cancelled) submitted at once to a daemon with n slots "+
		"and 64 MiB each; launch is the first submit until the host shows all n children in stage two (the guest "+
		"starting, every wall up); then every one is cancelled and its verdict checked (cancelled, one attempt). "+
		"Submit→attempt start is the daemon's own record of each task.\n\n")
	fmt.Fprintf(w, "| agents | rounds | launch s (p50) | per agent ms | agents/s | submit→attempt start p50 / p99 ms | wrong verdicts |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, sub := range []string{"1", "2", "8", "32", "100", "1000", "1000-warm-pool"} {
		name := benchScaling + "/" + sub
		label := sub
		n := 1000
		if sub == "1000-warm-pool" {
			label = "1000, `--warm-pool 1000` full before the launch"
		} else {
			fmt.Sscan(sub, &n)
		}
		r, ok := d.out.find(name)
		start, ok2 := d.record(name, "start")
		if !ok || !ok2 {
			fmt.Fprintf(w, "| %s | not in this run | | | | | |\n", label)
			continue
		}
		launch := r.metrics["launch-p50-ms"]
		fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s / %s | %d |\n", label, r.n, fmtFloat(launch/1000, 2), fmtFloat(launch/float64(n), 1),
			fmtFloat(r.metrics["agents/s"], 0), fmtMS(q(start.WallMS, 0.5)), fmtMS(q(start.WallMS, 0.99)), int(r.metrics["wrong-verdicts"]))
	}
	fmt.Fprintln(w)
}

func writeMemory(w io.Writer, d data) {
	r, ok := d.out.find(benchMemory)
	rec, ok2 := d.record(benchMemory, "memory")
	if !ok || !ok2 {
		return
	}
	fmt.Fprintf(w, "## Memory per live agent (%s)\n\n", benchMemory)
	fmt.Fprintf(w, "%d holders live and idle at once through agentboxd (their CPU time stopped moving), against the idle "+
		"daemon just before, %d rounds:\n\n", int(rec.Values["agents"]), r.n)
	rows := []struct{ unit, what string }{
		{"memavail-B/agent", "drop in the host's MemAvailable (the whole host: other work counts too)"},
		{"pss+kmem-B/agent", "PSS of each sandbox child + kernel memory of its cgroup + the daemon's growth in PSS"},
		{"pss-B/agent", "of which the children's PSS (private pages, and a share of the one sealed child binary)"},
		{"kmem-B/agent", "of which the task cgroups' kernel memory"},
		{"daemon-B/agent", "of which the daemon's growth (a thread and goroutines per running task)"},
		{"cgroup-B/agent", "for reference: the task cgroups' whole usage (user, kernel and page cache charged)"},
	}
	fmt.Fprintf(w, "| per agent | MiB | |\n| --- | ---: | --- |\n")
	for _, row := range rows {
		fmt.Fprintf(w, "| `%s` | %s | %s |\n", strings.TrimSuffix(row.unit, "-B/agent"), fmtFloat(r.metrics[row.unit]/(1<<20), 2), row.what)
	}
	fmt.Fprintln(w)
}

func writeCompute(w io.Writer, d data) {
	r, ok := d.out.find(benchCompute)
	if !ok {
		return
	}
	fmt.Fprintf(w, "## Guest compute (%s)\n\n", benchCompute)
	fmt.Fprintf(w, "count.wasm (a fixed loop of 10⁸ iterations) less hello.wasm, each way, p50 of %d interleaved rounds: "+
		"the loop takes %s ms of CPU in the sandbox and %s ms on bare in-process wazero, a ratio of %s (bare over "+
		"sandbox); on wall time %s against %s ms, %s (wall time also counts waits for a core that other work on the "+
		"host causes, and the subtraction leaves a few ms of start-up jitter in each).\n\n", r.n,
		fmtFloat(r.metrics["sandbox-loop-cpu-ms"], 1), fmtFloat(r.metrics["bare-loop-cpu-ms"], 1), fmtFloat(r.metrics["compute-ratio"], 2),
		fmtFloat(r.metrics["sandbox-loop-ms"], 1), fmtFloat(r.metrics["bare-loop-ms"], 1), fmtFloat(r.metrics["wall-compute-ratio"], 2))
	if rs := computeRatios(d); len(rs) > 0 {
		fmt.Fprintf(w, "Round by round (each round's bare loop CPU over its sandbox loop CPU) the ratio's quartiles are %s / %s / "+
			"%s: the spread of this run's clock.\n\n", fmtFloat(q(rs, 0.25), 2), fmtFloat(q(rs, 0.5), 2), fmtFloat(q(rs, 0.75), 2))
	}
}

// computeRatios is each round's guest-compute ratio: bare loop CPU over sandbox loop CPU,
// each the count module's less the hello module's of the same round.
func computeRatios(d data) []float64 {
	var cpu [4][]float64
	for i, key := range []string{"run-count", "run-hello", "wazero-count", "wazero-hello"} {
		r, ok := d.record(benchCompute, key)
		if !ok {
			return nil
		}
		cpu[i] = r.CPUMS
	}
	var out []float64
	for i := range cpu[0] {
		if i >= len(cpu[1]) || i >= len(cpu[2]) || i >= len(cpu[3]) {
			break
		}
		if sb := cpu[0][i] - cpu[1][i]; sb > 0 {
			out = append(out, (cpu[2][i]-cpu[3][i])/sb)
		}
	}
	return out
}

// writePackages lists every package-level benchmark: the daemon's parts, wazero's costs.
func writePackages(w io.Writer, d data) {
	fmt.Fprintf(w, "## Package benchmarks\n\n")
	fmt.Fprintf(w, "| benchmark | ns/op | B/op | allocs/op | other |\n| --- | ---: | ---: | ---: | --- |\n")
	for _, r := range d.out.results {
		if r.pkg == e2ePkg {
			continue
		}
		var other []string
		for _, u := range r.units {
			if u != "ns/op" && u != "B/op" && u != "allocs/op" {
				other = append(other, fmtFloat(r.metrics[u], 2)+" "+u)
			}
		}
		fmt.Fprintf(w, "| `%s` (%s) | %s | %s | %s | %s |\n", r.name, strings.TrimPrefix(r.pkg, "github.com/agentbox/agentbox/"),
			fmtFloat(r.metrics["ns/op"], 0), fmtFloat(r.metrics["B/op"], 0), fmtFloat(r.metrics["allocs/op"], 0), strings.Join(other, ", "))
	}
	fmt.Fprintln(w)
}

// cpuOf is the p50 of a series' CPU samples, or "—".
func cpuOf(r samples.Record) string {
	if len(r.CPUMS) == 0 {
		return "—"
	}
	return fmtMS(q(r.CPUMS, 0.5))
}

// q is the nearest-rank q-quantile of v, 0 for none.
func q(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	return s[int(p*float64(len(s)-1)+0.5)]
}

func fmtMS(v float64) string {
	switch {
	case v >= 100:
		return fmtFloat(v, 0)
	case v >= 10:
		return fmtFloat(v, 1)
	}
	return fmtFloat(v, 2)
}

func fmtFloat(v float64, prec int) string { return strconv.FormatFloat(v, 'f', prec, 64) }

func atof(s string) float64 {
	v, _ := strconv.ParseFloat(s, 64)
	return v
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return strings.ReplaceAll(s, "|", "\\|")
}
