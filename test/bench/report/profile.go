package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"
)

// The CPU profiles that scripts/bench.sh records with perf (every process, kernel and user,
// sampled every periodMS of CPU), read from `perf script -F comm,ip,sym,dso`: a header line
// with the process's comm, then one line a frame, leaf first, then a blank line. One is of
// cold `agentbox run`s, one of agentboxd and every child it started during a burst of tasks.

// profile is every sample of the profiled runs (or tasks), by process.
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

// profileColumn is one column of a profile's table: the processes of the comms given.
type profileColumn struct {
	label string
	comms []string
}

// cliColumns are the processes of one cold run: the CLI, then its sandbox child, which
// os/exec starts as /proc/self/fd/6 (stage one) and which then execveats the child binary
// by descriptor (stage two, named after the file on this kernel; older kernels name it "6"
// too, and the two columns are then one).
var cliColumns = []profileColumn{
	{"the CLI (supervisor)", []string{"agentbox"}},
	{"child, stage one", []string{"6"}},
	{"child, stage two", []string{"agentbox-init"}},
}

// daemonColumns are the daemon's: its own threads (and its forks before their exec), its
// children in stage one, and its children after their exec from the daemon's one sealed
// copy of agentbox-init (a memfd: stage two, or a hot child's stage).
var daemonColumns = []profileColumn{
	{"agentboxd", []string{"agentboxd"}},
	{"children, stage one", []string{"6"}},
	{"children, stage two or hot", []string{"memfd:agentbox-", "agentbox-init"}},
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
	{bucketCOW, []string{"do_wp_page", "wp_page_copy"}},
	{bucketClone, []string{"copy_process", "kernel_clone"}},
	{bucketStart, []string{"runtime.schedinit", "runtime.doInit1", "runtime.mallocinit", "runtime.newm"}},
	{bucketCgroups, []string{"github.com/agentbox/agentbox/cgroups.", "cgroup_mkdir", "cgroup_rmdir", "cgroup_procs_write", "__cgroup_procs_write", "cgroup_file_write"}},
	{"seccomp filters", []string{"github.com/agentbox/agentbox/seccomp.", "do_seccomp"}},
	{"Landlock", []string{"github.com/agentbox/agentbox/sandbox.enterLandlock", "__x64_sys_landlock"}},
	{"mounts and the empty root", []string{"github.com/agentbox/agentbox/sandbox.setupRoot", "github.com/agentbox/agentbox/sandbox.(*task).openBinds"}},
	{bucketWazero, []string{"github.com/tetratelabs/wazero"}},
	{bucketJetStream, []string{"github.com/nats-io/nats-server/", "do_fsync"}},
	{bucketNATSClient, []string{"github.com/nats-io/nats.go"}},
	{bucketHTTP, []string{"net/http.", "github.com/agentbox/agentbox/supervisor/api."}},
	{"JSON: spec, result, verdict, records", []string{"encoding/json."}},
	{"page faults (fresh memory, the binary's pages)", []string{"asm_exc_page_fault"}},
	{"the sandbox package's own code: spawn, handoff, supervision", []string{"github.com/agentbox/agentbox/sandbox."}},
	{"the daemon's task logic: dispatch, attempts, the store's records", []string{"github.com/agentbox/agentbox/supervisor"}},
	{bucketBackground, []string{"runtime.sysmon", "runtime.gcBgMarkWorker", "runtime.bgsweep", "runtime.bgscavenge", "runtime.schedule", "runtime.findRunnable", "runtime.gcStart"}},
}

// The buckets the gaps text names.
const (
	bucketCOW        = "copy-on-write faults: the parent's pages written again after a fork"
	bucketClone      = "the rest of clone (process copy: page tables)"
	bucketStart      = "Go runtime start, package init, new threads"
	bucketCgroups    = "cgroups"
	bucketWazero     = "wazero: compiled-code load, host modules, instantiate, the guest"
	bucketJetStream  = "JetStream (embedded nats-server): streams, key-value and object stores, their fsyncs"
	bucketNATSClient = "NATS client: requests, acks, watches"
	bucketHTTP       = "HTTP API: the socket, requests, long polls"
	bucketBackground = "Go runtime background: sysmon, GC, idle scheduling"
)

const otherBucket = "everything else (pipes, waits, the rest of the Go code)"

// parseProfile reads path's samples. child, if not nil, names the frames perf could not:
// those of the children executed from the daemon's sealed memfd copy of it.
func parseProfile(path string, runs int, periodMS float64, child *symbols) (*profile, error) {
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
			if child != nil && fields[1] == "[unknown]" && strings.Contains(line, childMemfd) {
				if name := child.name(fields[0]); name != "" {
					sym = name
				}
			}
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

// childMemfd is in the name perf gives the mapping of a child executed from the daemon's
// sealed copy of agentbox-init ("/memfd:agentbox-exe (deleted)").
const childMemfd = "memfd:agentbox-exe"

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

// cpuMS is the CPU per run (or task) of col's samples in bucket ("" for all of them).
func (p *profile) cpuMS(col profileColumn, bucket string) float64 {
	n := 0
	for _, comm := range col.comms {
		ps := p.procs[comm]
		if ps == nil {
			continue
		}
		for _, st := range ps.stacks {
			if bucket == "" || bucketOf(st) == bucket {
				n++
			}
		}
	}
	return float64(n) * p.periodMS / float64(p.runs)
}

// ms is n samples as CPU milliseconds per run (or task).
func (p *profile) ms(n int) string { return fmtMS(float64(n) * p.periodMS / float64(p.runs)) }

// writeProfileTable writes p's CPU per run (or task) by bucket, a column per cols entry and
// one for all of them.
func writeProfileTable(w io.Writer, p *profile, cols []profileColumn) {
	counts := map[string][]int{} // bucket → samples per column
	total, kernel := make([]int, len(cols)), make([]int, len(cols))
	fmt.Fprintf(w, "| |")
	for _, c := range cols {
		fmt.Fprintf(w, " %s |", c.label)
	}
	fmt.Fprintf(w, " all |\n| ---")
	for range cols {
		fmt.Fprintf(w, " | ---:")
	}
	fmt.Fprintf(w, " | ---: |\n")
	for i, c := range cols {
		for _, comm := range c.comms {
			ps := p.procs[comm]
			if ps == nil {
				continue
			}
			kernel[i] += ps.kernel
			for _, st := range ps.stacks {
				b := bucketOf(st)
				if counts[b] == nil {
					counts[b] = make([]int, len(cols))
				}
				counts[b][i]++
				total[i]++
			}
		}
	}
	row := func(name string, n []int) {
		fmt.Fprintf(w, "| %s |", name)
		sum := 0
		for _, v := range n {
			sum += v
			fmt.Fprintf(w, " %s |", p.ms(v))
		}
		fmt.Fprintf(w, " %s |\n", p.ms(sum))
	}
	row("**all CPU**", total)
	row("of which in the kernel", kernel)
	for _, b := range profileBuckets {
		if counts[b.name] != nil {
			row(b.name, counts[b.name])
		}
	}
	if counts[otherBucket] != nil {
		row(otherBucket, counts[otherBucket])
	}
	fmt.Fprintln(w)
}

func writeProfile(w io.Writer, p *profile) {
	if p == nil {
		return
	}
	fmt.Fprintf(w, "## Where one cold run's CPU goes (perf profile)\n\n")
	fmt.Fprintf(w, "`perf record -g` of %d cold `agentbox run --cache-dir DIR testdata/modules/hello.wasm` in a row "+
		"(compiled code cached), every process of each run, kernel and user, one sample every %s ms of CPU; each sample "+
		"goes to the first row one of its stack's frames matches (scripts/bench.sh, test/bench/report/profile.go). "+
		"CPU milliseconds per run:\n\n", p.runs, fmtFloat(p.periodMS, 2))
	writeProfileTable(w, p, cliColumns)
}

// daemonProfile is the daemon's profile with what the same window measured without perf's
// eyes: the daemon's rusage (its own and its reaped children's) and the wall time.
type daemonProfile struct {
	*profile
	slots       int
	rusageMS    float64 // CPU per task, from /proc/PID/stat over the window
	wallSeconds float64
}

func writeDaemonProfile(w io.Writer, p *daemonProfile) {
	if p == nil {
		return
	}
	fmt.Fprintf(w, "## Where the daemon's CPU goes (perf profile)\n\n")
	fmt.Fprintf(w, "`perf record -g -p` of a running agentboxd (%d slots, its warm pool and hot children as it ships; perf "+
		"follows every child it starts once perf is attached, not those already waiting then) while it runs a batch "+
		"of %d hello tasks (`agentbox submit --wait --batch`, the client outside the profile), after a warm-up; sampled and sorted as above. They took %s s (%s tasks/s); the "+
		"daemon's rusage over the same window is %s ms of CPU per task (perf's own sampling adds to what it measures). "+
		"CPU milliseconds per task:\n\n", p.slots, p.runs, fmtFloat(p.wallSeconds, 2),
		fmtFloat(float64(p.runs)/p.wallSeconds, 0), fmtFloat(p.rusageMS, 1))
	writeProfileTable(w, p.profile, daemonColumns)
}
