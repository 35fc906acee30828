package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

// The CPU profile of cold `agentbox run`s that scripts/bench.sh records with perf (every
// process of each run, kernel and user, sampled every periodMS of CPU), read from
// `perf script -F comm,ip,sym,dso`: a header line with the process's comm, then one line a
// frame, leaf first, then a blank line.

// profile is every sample of the profiled runs, by process.
type profile struct {
	runs     int
	periodMS float64
	procs    map[string]*procSamples // by comm
}

// procSamples are the samples of one comm: each one's stack as the set of its frames.
type procSamples struct {
	kernel int // samples whose leaf frame is the kernel's
	stacks []map[string]bool
}

// profileProcs names the comms of one run, in the order of the table: the CLI, then its
// sandbox child, which os/exec starts as /proc/self/fd/6 (stage one) and which then
// execveats the child binary by descriptor (stage two, named after the file on this
// kernel; older kernels name it "6" too, and the two columns are then one).
var profileProcs = []struct{ comm, label string }{
	{"agentbox", "the CLI (supervisor)"},
	{"6", "child, stage one"},
	{"agentbox-init", "child, stage two"},
}

// profileBuckets say where a sample's CPU went: the first bucket that one of its frames
// matches (a frame matches when it starts with one of the prefixes) takes the sample.
var profileBuckets = []struct {
	name     string
	prefixes []string
}{
	{"exit: address space and namespaces torn down", []string{"do_exit", "__x64_sys_exit_group", "exit_mmap", "cleanup_net", "free_nsproxy"}},
	{"new namespaces (net the dearest)", []string{"copy_namespaces", "create_new_namespaces", "unshare_nsproxy_namespaces", "copy_net_ns"}},
	{"exec: the kernel loading a program", []string{"__x64_sys_execve", "__x64_sys_execveat", "bprm_execve"}},
	{"the rest of clone (process copy)", []string{"copy_process", "kernel_clone"}},
	{"Go runtime start, package init, new threads", []string{"runtime.schedinit", "runtime.doInit1", "runtime.mallocinit", "runtime.newm"}},
	{"cgroups", []string{"github.com/agentbox/agentbox/cgroups.", "cgroup_mkdir", "cgroup_rmdir", "cgroup_procs_write", "__cgroup_procs_write", "cgroup_file_write"}},
	{"seccomp filters", []string{"github.com/agentbox/agentbox/seccomp.", "do_seccomp"}},
	{"Landlock", []string{"github.com/agentbox/agentbox/sandbox.enterLandlock", "__x64_sys_landlock"}},
	{"mounts and the empty root", []string{"github.com/agentbox/agentbox/sandbox.setupRoot", "github.com/agentbox/agentbox/sandbox.(*task).openBinds"}},
	{"wazero: compiled-code load, host modules, instantiate, the guest", []string{"github.com/tetratelabs/wazero"}},
	{"JSON: spec, result, verdict", []string{"encoding/json."}},
	{"page faults (fresh memory, the binary's pages)", []string{"asm_exc_page_fault"}},
	{"Go runtime background: sysmon, GC, idle scheduling", []string{"runtime.sysmon", "runtime.gcBgMarkWorker", "runtime.bgsweep", "runtime.bgscavenge", "runtime.schedule", "runtime.findRunnable", "runtime.gcStart"}},
}

const otherBucket = "everything else (pipes, waits, the rest of the Go code)"

func parseProfile(path string, runs int, periodMS float64) (*profile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	p := &profile{runs: runs, periodMS: periodMS, procs: map[string]*procSamples{}}
	var comm string
	var stack map[string]bool
	leaf := true
	flush := func() {
		if stack != nil {
			ps := p.procs[comm]
			if ps == nil {
				ps = &procSamples{}
				p.procs[comm] = ps
			}
			ps.stacks = append(ps.stacks, stack)
		}
		stack, leaf = nil, true
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			flush()
		case !strings.HasPrefix(line, "\t") && !strings.HasPrefix(line, " "):
			flush()
			comm, stack = strings.TrimSpace(line), map[string]bool{}
		case stack != nil:
			// "\t ffffffff813a2413 finish_task_switch.isra.0 ([kernel.kallsyms])"
			fields := strings.Fields(line)
			if len(fields) < 3 {
				continue
			}
			sym, dso := strings.Join(fields[1:len(fields)-1], " "), fields[len(fields)-1]
			if leaf && dso == "([kernel.kallsyms])" {
				ps := p.procs[comm]
				if ps == nil {
					ps = &procSamples{}
					p.procs[comm] = ps
				}
				ps.kernel++
			}
			leaf = false
			stack[sym] = true
		}
	}
	flush()
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(p.procs) == 0 {
		return nil, fmt.Errorf("%s holds no samples", path)
	}
	return p, nil
}

// bucketOf is the first bucket one of stack's frames matches.
func bucketOf(stack map[string]bool) string {
	for _, b := range profileBuckets {
		for sym := range stack {
			for _, pre := range b.prefixes {
				if strings.HasPrefix(sym, pre) {
					return b.name
				}
			}
		}
	}
	return otherBucket
}

// cpuMS is the CPU per run of comm's samples in bucket ("" for all of them).
func (p *profile) cpuMS(comm, bucket string) float64 {
	ps := p.procs[comm]
	if ps == nil {
		return 0
	}
	n := 0
	for _, st := range ps.stacks {
		if bucket == "" || bucketOf(st) == bucket {
			n++
		}
	}
	return float64(n) * p.periodMS / float64(p.runs)
}

// ms is n samples as CPU milliseconds per run.
func (p *profile) ms(n int) string { return fmtMS(float64(n) * p.periodMS / float64(p.runs)) }

func writeProfile(w io.Writer, p *profile) {
	if p == nil {
		return
	}
	fmt.Fprintf(w, "## Where one cold run's CPU goes (perf profile)\n\n")
	fmt.Fprintf(w, "`perf record -g` of %d cold `agentbox run --cache-dir DIR testdata/modules/hello.wasm` in a row "+
		"(compiled code cached), every process of each run, kernel and user, one sample every %s ms of CPU; each sample "+
		"goes to the first row one of its stack's frames matches (scripts/bench.sh, test/bench/report/profile.go). "+
		"CPU milliseconds per run:\n\n", p.runs, fmtFloat(p.periodMS, 2))
	counts := map[string]map[string]int{} // bucket → comm → samples
	total := map[string]int{}
	fmt.Fprintf(w, "| |")
	for _, pr := range profileProcs {
		fmt.Fprintf(w, " %s |", pr.label)
	}
	fmt.Fprintf(w, " all three |\n| ---")
	for range profileProcs {
		fmt.Fprintf(w, " | ---:")
	}
	fmt.Fprintf(w, " | ---: |\n")
	for _, pr := range profileProcs {
		ps := p.procs[pr.comm]
		if ps == nil {
			continue
		}
		for _, st := range ps.stacks {
			b := bucketOf(st)
			if counts[b] == nil {
				counts[b] = map[string]int{}
			}
			counts[b][pr.comm]++
			total[pr.comm]++
		}
	}
	row := func(name string, get func(comm string) int) {
		fmt.Fprintf(w, "| %s |", name)
		sum := 0
		for _, pr := range profileProcs {
			n := get(pr.comm)
			sum += n
			fmt.Fprintf(w, " %s |", p.ms(n))
		}
		fmt.Fprintf(w, " %s |\n", p.ms(sum))
	}
	row("**all CPU**", func(c string) int { return total[c] })
	row("of which in the kernel", func(c string) int {
		if ps := p.procs[c]; ps != nil {
			return ps.kernel
		}
		return 0
	})
	names := []string{}
	for _, b := range profileBuckets {
		names = append(names, b.name)
	}
	for _, name := range append(names, otherBucket) {
		if counts[name] == nil {
			continue
		}
		row(name, func(c string) int { return counts[name][c] })
	}
	fmt.Fprintln(w)
}
