package main

import (
	"fmt"
	"io"
)

// writeGaps says, from this run's own figures, where the time of the unmet targets goes.
func writeGaps(w io.Writer, d data) {
	fmt.Fprintf(w, "## Where the gaps come from (this run's figures)\n\n")
	run, okRun := d.record(benchSpawn, "run")
	ver, okVer := d.record(benchSpawn, "version")
	bwrap, okB := d.record(benchSpawn, "bwrap")
	if okRun && okVer && okB && bwrap.Unavailable == "" {
		fmt.Fprintf(w, "- **CPU per one-shot run** is %s ms against bwrap's %s: the CLI is a Go program (a fork/exec of "+
			"`agentbox version` alone costs %s ms CPU), and the sandbox child starts a Go runtime twice more (stage one "+
			"execs stage two) before wazero loads the compiled code and runs the guest, besides the namespaces and the "+
			"cgroup. The daemon's warm pool takes the clone, the cgroup and stage one's runtime start off a task's path, "+
			"not off its CPU; a one-shot run has no pool to draw from.\n", cpuOf(run), cpuOf(bwrap), cpuOf(ver))
	}
	if p := d.profile; p != nil {
		cli, one, two := profileProcs[0].comm, profileProcs[1].comm, profileProcs[2].comm
		start := "Go runtime start, package init, new threads"
		fmt.Fprintf(w, "- **The profile** puts %s ms of a cold run's CPU in the CLI (its cgroups %s, its runtime start %s, "+
			"the namespaces of the clone %s), %s in stage one (runtime start %s) and %s in stage two (runtime start %s, "+
			"wazero %s). Three Go runtime starts cost %s ms together. Through the daemon there is no CLI to start, and "+
			"its warm pool has the cgroup, the clone and stage one's start done before the task comes.\n",
			fmtFloat(p.cpuMS(cli, ""), 1), fmtFloat(p.cpuMS(cli, "cgroups"), 1), fmtFloat(p.cpuMS(cli, start), 1),
			fmtFloat(p.cpuMS(cli, "new namespaces (net the dearest)"), 1),
			fmtFloat(p.cpuMS(one, ""), 1), fmtFloat(p.cpuMS(one, start), 1),
			fmtFloat(p.cpuMS(two, ""), 1), fmtFloat(p.cpuMS(two, start), 1),
			fmtFloat(p.cpuMS(two, "wazero: compiled-code load, host modules, instantiate, the guest"), 1),
			fmtFloat(p.cpuMS(cli, start)+p.cpuMS(one, start)+p.cpuMS(two, start), 1))
	}
	g, ok1 := d.record(benchDaemon, "daemon-guest-start")
	gp, ok2 := d.record(benchDaemon, "daemon-nohot-guest-start")
	g0, ok3 := d.record(benchDaemon, "daemon-nopool-guest-start")
	if ok1 && ok2 && ok3 {
		cpu, _ := d.out.metric(benchDaemon, "daemon-cpu-ms/task")
		cpu0, _ := d.out.metric(benchDaemon, "daemon-nopool-cpu-ms/task")
		fmt.Fprintf(w, "- **Submit→guest start through the daemon** is p50 %s ms with a hot child for the module, %s ms "+
			"with the warm pool alone and %s ms with neither (interleaved); the daemon and its children spend %s ms CPU "+
			"per task against %s ms with neither, since a pooled or hot child is started all the same, only earlier. "+
			"A hot child leaves on the path the handoff (the task's limits into the cgroup and the rlimits, its spec), "+
			"the exec seal and the guest's instantiation; the rest is the daemon's: the submit's fsynced writes below, "+
			"the queue's delivery and the attempt's record.", fmtMS(q(g.WallMS, 0.5)), fmtMS(q(gp.WallMS, 0.5)),
			fmtMS(q(g0.WallMS, 0.5)), fmtFloat(cpu, 1), fmtFloat(cpu0, 1))
		hot, okh := d.out.metric("BenchmarkWarmPool", "hot-guest-start-p50-ms")
		pooled, okp := d.out.metric("BenchmarkWarmPool", "pool4-guest-start-p50-ms")
		fresh, okf := d.out.metric("BenchmarkWarmPool", "pool0-guest-start-p50-ms")
		if okh && okp && okf {
			fmt.Fprintf(w, " In the sandbox alone (BenchmarkWarmPool, Run to the guest's first byte) it is %s ms in a hot "+
				"child, %s ms pooled and %s ms fresh.", fmtFloat(hot, 2), fmtFloat(pooled, 2), fmtFloat(fresh, 2))
		}
		fmt.Fprintln(w)
	}
	hv, ok1 := d.record(benchHotGo, "daemon-verdict")
	hg, ok2 := d.record(benchHotGo, "daemon-guest-start")
	pv, ok3 := d.record(benchHotGo, "daemon-nohot-verdict")
	if ok1 && ok2 && ok3 {
		fmt.Fprintf(w, "- **The cached Go agent through the daemon** takes p50 %s ms to its verdict with a hot child, "+
			"against %s ms with the warm pool alone: the hot child has the exec into stage two, its Go runtime start "+
			"and wazero's load of the 2.5 MB module's compiled code behind it. Of what is left, %s ms go before the "+
			"guest's first byte, and the rest is the guest's own: a Go program's runtime starting inside wazero.\n",
			fmtMS(q(hv.WallMS, 0.5)), fmtMS(q(pv.WallMS, 0.5)), fmtMS(q(hg.WallMS, 0.5)))
	}
	fsync, ok1 := d.out.metric("BenchmarkQueueOperations/submit-record-and-publish", "ns/op")
	pub, ok2 := d.out.metric("BenchmarkQueueOperations/publish", "ns/op")
	noSync, ok3 := d.out.metric("BenchmarkQueueOperations/publish-no-fsync", "ns/op")
	if ok1 && ok2 && ok3 {
		fmt.Fprintf(w, "- **A submit's own writes**: the record's create and the queue publish, each fsynced before it is "+
			"acknowledged, take %s ms together on this disk (a publish alone %s ms, %s ms without the fsync): even "+
			"with a warm pool, submit→start ≤ 1 ms needs the start not to wait for them, or a cheaper durability point.\n",
			fmtFloat(fsync/1e6, 2), fmtFloat(pub/1e6, 2), fmtFloat(noSync/1e6, 3))
	}
	if launch, ok := d.out.metric(benchScaling+"/1000", "launch-p50-ms"); ok {
		cpu, _ := d.out.metric(benchDaemon, "daemon-cpu-ms/task")
		fmt.Fprintf(w, "- **1,000 launches** took %s s: at %s ms of CPU per task through the daemon (%s), %d cores cannot "+
			"spawn 1,000 children in less than %s s (this run's daemon keeps a warm pool of 4).", fmtFloat(launch/1000, 1),
			fmtFloat(cpu, 1), benchDaemon, d.machine.cores, fmtFloat(cpu*1000/float64(d.machine.cores)/1000, 1))
		if pooled, ok := d.out.metric(benchScaling+"/1000-warm-pool", "launch-p50-ms"); ok {
			fmt.Fprintf(w, " With a pool as large as the burst, full before it, the launch takes %s s: the part of each "+
				"spawn the pool cannot do ahead (stage one's setup after the handoff, the exec into stage two and its Go "+
				"runtime, wazero's load, the daemon's fsynced records) still costs CPU per agent, and the pool's refill "+
				"competes with the burst for the same 2 cores.", fmtFloat(pooled/1000, 1))
		}
		fmt.Fprintln(w)
	}
	if rr, ok := d.out.metric("BenchmarkSchedulerOverhead/round-robin-1000-tenants", "ns/op"); ok {
		fmt.Fprintf(w, "- **The scheduler** is not a bottleneck at today's rates, but its round robin sorts the tenants on "+
			"every decision: %s µs with 1,000 tenants with queued work.\n", fmtFloat(rr/1e3, 1))
	}
	fmt.Fprintln(w)
}
