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
		cli, one, two := cliColumns[0], cliColumns[1], cliColumns[2]
		fmt.Fprintf(w, "- **The profile** puts %s ms of a cold run's CPU in the CLI (its cgroups %s, its runtime start %s, "+
			"the namespaces of the clone %s), %s in stage one (runtime start %s) and %s in stage two (runtime start %s, "+
			"wazero %s). Three Go runtime starts cost %s ms together. Through the daemon there is no CLI to start, and "+
			"its warm pool has the cgroup, the clone and stage one's start done before the task comes.\n",
			fmtFloat(p.cpuMS(cli, ""), 1), fmtFloat(p.cpuMS(cli, bucketCgroups), 1), fmtFloat(p.cpuMS(cli, bucketStart), 1),
			fmtFloat(p.cpuMS(cli, "new namespaces (net the dearest)"), 1),
			fmtFloat(p.cpuMS(one, ""), 1), fmtFloat(p.cpuMS(one, bucketStart), 1),
			fmtFloat(p.cpuMS(two, ""), 1), fmtFloat(p.cpuMS(two, bucketStart), 1),
			fmtFloat(p.cpuMS(two, bucketWazero), 1),
			fmtFloat(p.cpuMS(cli, bucketStart)+p.cpuMS(one, bucketStart)+p.cpuMS(two, bucketStart), 1))
	}
	if p := d.daemonProfile; p != nil {
		dm, one, two := daemonColumns[0], daemonColumns[1], daemonColumns[2]
		all := p.cpuMS(dm, "") + p.cpuMS(one, "") + p.cpuMS(two, "")
		fork := p.cpuMS(dm, bucketCOW) + p.cpuMS(dm, bucketClone)
		fmt.Fprintf(w, "- **The daemon's CPU per task** (its profile) is %s ms under perf: %s in agentboxd itself (its "+
			"forks before their exec included), %s in its children's stage one and %s in their stage two or hot stage. %d cores at 500 tasks/s leave %s ms a task. In agentboxd, "+
			"forking the children costs %s ms a task: Go's os/exec cannot vfork when the clone makes a user namespace "+
			"(its child waits for the parent's id maps), so every child copies the daemon's page tables, and each page "+
			"the daemon writes afterwards is copied once more (%s ms of copy-on-write faults). JetStream (the records, the "+
			"queue, the verdicts and their fsyncs) takes %s ms, the NATS client %s, the HTTP API %s, cgroups %s and the Go "+
			"runtime's background work %s. The children's Go runtime starts cost %s ms. A smaller parent to fork from (a "+
			"spawner process that stays small), or the user namespace made after a vfork, would cut the fork's share; "+
			"the runtime starts stay until stage two is no exec of its own.\n",
			fmtFloat(all, 1), fmtFloat(p.cpuMS(dm, ""), 1), fmtFloat(p.cpuMS(one, ""), 1), fmtFloat(p.cpuMS(two, ""), 1),
			d.machine.cores, fmtFloat(float64(d.machine.cores)*1000/500, 1), fmtFloat(fork, 1),
			fmtFloat(p.cpuMS(dm, bucketCOW), 1), fmtFloat(p.cpuMS(dm, bucketJetStream), 1),
			fmtFloat(p.cpuMS(dm, bucketNATSClient), 1), fmtFloat(p.cpuMS(dm, bucketHTTP), 1),
			fmtFloat(p.cpuMS(dm, bucketCgroups), 1), fmtFloat(p.cpuMS(dm, bucketBackground), 1),
			fmtFloat(p.cpuMS(one, bucketStart)+p.cpuMS(two, bucketStart), 1))
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
	writeDaemonPathGap(w, d)
	hv, ok1 := d.record(benchHotGo, "daemon-verdict")
	hg, ok2 := d.record(benchHotGo, "daemon-guest-start")
	pv, ok3 := d.record(benchHotGo, "daemon-nohot-verdict")
	if ok1 && ok2 && ok3 {
		fmt.Fprintf(w, "- **The cached Go agent through the daemon** takes p50 %s ms to its verdict with a hot child, "+
			"against %s ms with the warm pool alone: the hot child has the exec into stage two, its Go runtime start "+
			"and wazero's load of the 2.5 MB module's compiled code behind it. Of what is left, %s ms go before the "+
			"guest's first byte, and the rest is the guest's own: a Go program's runtime starting inside wazero.",
			fmtMS(q(hv.WallMS, 0.5)), fmtMS(q(pv.WallMS, 0.5)), fmtMS(q(hg.WallMS, 0.5)))
		if fl, ok := d.record(benchHotGo, "wazero-instantiate"); ok && len(fl.WallMS) > 0 {
			fmt.Fprintf(w, " The module alone on bare wazero, compiled beforehand, runs in %s ms: the daemon and the hot "+
				"child add %s ms to it", fmtMS(q(fl.WallMS, 0.5)), fmtMS(max(0, q(hv.WallMS, 0.5)-q(fl.WallMS, 0.5))))
			hello, ok1 := d.record(benchDaemon, "daemon-verdict")
			helloFl, ok2 := d.record(benchDaemon, "wazero-instantiate")
			if ok1 && ok2 && len(hello.WallMS) > 0 && len(helloFl.WallMS) > 0 {
				fmt.Fprintf(w, ", as they add %s ms to the hello module's %s (the daemon's path above)",
					fmtMS(max(0, q(hello.WallMS, 0.5)-q(helloFl.WallMS, 0.5))), fmtMS(q(helloFl.WallMS, 0.5)))
			}
			fmt.Fprintf(w, ".")
		}
		fmt.Fprintln(w)
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
	if ratio, ok := d.out.metric(benchCompute, "compute-ratio"); ok && ratio < 0.95 {
		rs := computeRatios(d)
		fmt.Fprintf(w, "- **Guest compute** is %s× here: the loop is the same module compiled by the same wazero in both; "+
			"what differs is the process around it (its cgroup's CPU quota, the speculation controls the task forces "+
			"on) and the load beside each round.", fmtFloat(ratio, 2))
		if len(rs) > 0 && q(rs, 0.75) >= 0.95 {
			fmt.Fprintf(w, " Round by round the ratio's upper quartile is %s: within this run's spread.", fmtFloat(q(rs, 0.75), 2))
		}
		fmt.Fprintln(w)
	}
	if rr, ok := d.out.metric("BenchmarkSchedulerOverhead/round-robin-1000-tenants", "ns/op"); ok {
		fmt.Fprintf(w, "- **The scheduler** is not a bottleneck at today's rates, but its round robin sorts the tenants on "+
			"every decision: %s µs with 1,000 tenants with queued work.\n", fmtFloat(rr/1e3, 1))
	}
	fmt.Fprintln(w)
}

// writeDaemonPathGap says where the hello module's submit→guest start and submit→verdict
// go through the daemon as it ships, from its stamps, against the same daemon with fsyncs
// relaxed and the hot child alone.
func writeDaemonPathGap(w io.Writer, d data) {
	step := func(prefix, key string) (float64, bool) {
		r, ok := d.record(benchDaemon, prefix+key)
		return q(r.WallMS, 0.5), ok && len(r.WallMS) > 0
	}
	accept, ok1 := step("daemon-", "step-accept")
	queue, ok2 := step("daemon-", "step-queue")
	spawn, ok3 := step("daemon-", "step-spawn")
	run, ok4 := step("daemon-", "step-run")
	final, ok5 := step("daemon-", "step-final")
	g, ok6 := step("daemon-", "guest-start")
	v, ok7 := step("daemon-", "verdict")
	gs, ok8 := step("daemon-nosync-", "guest-start")
	vs, ok9 := step("daemon-nosync-", "verdict")
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7 && ok8 && ok9) {
		return
	}
	fmt.Fprintf(w, "- **The daemon's path, step by step** (the step table above, p50): with a hot child the submit is "+
		"stamped %s ms after it is sent; the attempt starts %s ms later (the record and the queue message, each "+
		"fsynced, then the delivery); the guest's first byte comes %s ms after that (the start's compare-and-set, "+
		"fsynced, then the handoff); the attempt ends %s ms later (the guest, the sandbox's cleanup, the verdict "+
		"fsynced) and the client has the final record %s ms after (the final compare-and-set, fsynced, and the "+
		"watch). With JetStream's fsyncs relaxed (`--sync-interval 1s`) the same daemon takes %s ms to the guest and "+
		"%s ms to the verdict, against %s and %s",
		fmtMS(accept), fmtMS(queue), fmtMS(spawn), fmtMS(run), fmtMS(final), fmtMS(gs), fmtMS(vs), fmtMS(g), fmtMS(v))
	if g > gs && v > vs {
		fmt.Fprintf(w, ": the fsyncs before each acknowledgement cost %s and %s ms.", fmtMS(g-gs), fmtMS(v-vs))
	} else {
		fmt.Fprintf(w, ": in this run the fsyncs did not show above the noise.")
	}
	hot, okh := d.out.metric("BenchmarkWarmPool", "hot-guest-start-p50-ms")
	hotV, okv := d.out.metric("BenchmarkWarmPool", "hot-verdict-p50-ms")
	if okh && okv {
		fmt.Fprintf(w, " The hot child alone, with no daemon around it, takes %s ms from Run to the guest's first byte and "+
			"%s ms to its verdict (BenchmarkWarmPool).", fmtFloat(hot, 2), fmtFloat(hotV, 2))
		if hot >= 1 {
			fmt.Fprintf(w, " So submit→guest start ≤ 1 ms is below what the sandbox's own handoff and the guest's "+
				"instantiation take here, before any durable write: it needs a child that has done more before its task "+
				"comes (the guest instantiated, not only its code loaded).")
		}
		if hotV >= 3 {
			fmt.Fprintf(w, " Likewise submit→verdict ≤ 3 ms is below the hot child's own run to its verdict.")
		} else {
			fmt.Fprintf(w, " That leaves %s ms of the 3 ms verdict target for the daemon, whose path holds at least five "+
				"writes acknowledged by JetStream (the record, the queue message, the start, the verdict, the final "+
				"record): they would have to become fewer (the record and the queue message as one, the verdict in the "+
				"final record) or overlap the sandbox's work.", fmtFloat(3-hotV, 2))
		}
	}
	fmt.Fprintln(w)
}
